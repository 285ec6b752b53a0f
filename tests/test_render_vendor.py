"""The vendored plotly.js: the pinned version, its sha256 and licence, and what the HTML inlines."""

from __future__ import annotations

import hashlib
import re

from evidence.render.html import VENDOR, plotly_bundle, plotly_js

from .conftest import ROOT


def test_vendored_plotly_matches_its_record_and_the_pin() -> None:
    meta = plotly_bundle()
    data = (VENDOR / meta["file"]).read_bytes()
    assert hashlib.sha256(data).hexdigest() == meta["sha256"]
    header = data[:200].decode()
    assert f"plotly.js (basic - minified) v{meta['version']}" in header
    assert meta["package"] == "plotly.js-basic-dist-min" and meta["license"] == "MIT"
    assert "MIT License" in (VENDOR / meta["license_file"]).read_text()
    # The re-fetch script pins the same version.
    script = (ROOT / "scripts" / "vendor-plotly.sh").read_text()
    pin = re.search(r"VERSION=\$\{1:-([0-9.]+)\}", script)
    assert pin and pin.group(1) == meta["version"]
    assert "scatter" in meta["traces"]


def test_inlined_plotly_is_the_vendored_file_and_cannot_close_its_script() -> None:
    meta = plotly_bundle()
    js = plotly_js()
    assert "</script" not in js
    assert js.replace("<\\/script", "</script") == (VENDOR / meta["file"]).read_text(encoding="utf-8")
