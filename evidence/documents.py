"""Machine output: every JSON or YAML document evidence prints carries ``apiVersion`` and ``kind``.

Each kind has a JSON Schema under ``schemas/`` (``schemas/<kind lower-case>.schema.json``) that
the tests validate real output against.  ``dumps`` renders a document as JSON or YAML text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

API_VERSION = "evidence/v1"
KINDS = ("Evaluation", "Verification", "ArchiveVerification", "BundleSummary", "CanaryList", "Version")
FORMATS = ("json", "yaml")


def document(kind: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``body`` headed by apiVersion and kind (a body's own apiVersion/kind are replaced)."""
    return {"apiVersion": API_VERSION, "kind": kind, **{k: v for k, v in body.items() if k not in ("apiVersion", "kind")}}


def dumps(doc: Mapping[str, Any], fmt: str) -> str:
    """Return ``doc`` as ``json`` (indented, ASCII) or ``yaml`` text, ending in a newline."""
    if fmt == "yaml":
        import yaml

        # Through JSON values first, so YAML says exactly what JSON says (enums are their strings).
        plain = json.loads(json.dumps(doc))
        return str(yaml.safe_dump(plain, sort_keys=False, allow_unicode=False, width=1000))
    if fmt == "json":
        return json.dumps(doc, indent=2, ensure_ascii=True) + "\n"
    raise ValueError(f"unknown output format {fmt!r}; use one of {', '.join(FORMATS)}")
