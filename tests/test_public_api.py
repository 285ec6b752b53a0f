"""The public API: ``from evidence import X`` gives the real, typed object, both at run time and to mypy."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import evidence
from tests.conftest import ROOT

SNIPPET = """
from pathlib import Path
from evidence import CanaryRef, CanarySpec, Outcome, evaluate_bundle, evaluation_to_json, read_bundle, verify_bundle

bundle = read_bundle(Path("b"))
ev = evaluate_bundle(bundle)
verdict: str = ev.verdict
ref = CanaryRef.parse("shop/podinfo")
spec = CanarySpec.from_object({}, ref)
reveal_type(read_bundle)
reveal_type(verify_bundle)
reveal_type(evaluate_bundle)
reveal_type(evaluation_to_json)
reveal_type(ev.timeline.outcome_cause)
reveal_type(spec.interval_s)
reveal_type(Outcome.PROMOTED)
"""


def test_every_export_is_real_and_listed() -> None:
    assert evidence.__all__ == sorted([*evidence._EXPORTS, "__version__"])
    assert set(dir(evidence)) == set(evidence.__all__)
    for name in evidence.__all__:
        obj = getattr(evidence, name)
        assert name == "__version__" or getattr(obj, "__name__", name) == name, name


def test_the_public_api_type_checks_without_any(tmp_path: Path) -> None:
    snippet = tmp_path / "use_api.py"
    snippet.write_text(SNIPPET)
    res = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--config-file", "/dev/null", str(snippet)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    revealed = re.findall(r'Revealed type is "(.*)"', res.stdout)
    assert len(revealed) == SNIPPET.count("reveal_type"), res.stdout + res.stderr
    # A name the lazy ``__getattr__`` answers without the TYPE_CHECKING imports is a bare Any to mypy.
    assert not [r for r in revealed if r == "Any" or r.endswith("-> Any")], revealed
    assert "def (path: " in revealed[0] and revealed[0].endswith("-> evidence.bundle.reader.Bundle"), revealed[0]
    assert "evidence.model.OutcomeCause" in revealed[4]
    errors = [ln for ln in res.stdout.splitlines() if ": error:" in ln]
    assert not errors, errors
