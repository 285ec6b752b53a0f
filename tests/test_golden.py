"""``evaluate --json`` of every small scenario against the copy kept before the vocabulary refactor (issue 9).

The copies under ``tests/golden/`` were written by this test (``EVIDENCE_GOLDEN_WRITE=1``) on the
commit before any refactor.  Each field is compared on its own so a failure names the path of
the field that moved; the only differences allowed are bugs fixed since, each listed in
``FIXED`` with the test that proves the fix.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from evidence.cli import cli
from fixtures.prom import PrometheusServer
from tests.conftest import SMALL_SCENARIOS

GOLDEN = Path(__file__).parent / "golden"
WRITE = os.environ.get("EVIDENCE_GOLDEN_WRITE") == "1"

# (scenario, field path) -> the test that proves why the golden value was a bug.
FIXED: dict[tuple[str, str], str] = {}


def differences(old: Any, new: Any, path: str = "$") -> Iterator[str]:
    """Yield the path of every field that differs between two JSON documents."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if key not in new:
                yield f"{path}.{key} (removed)"
            elif key not in old:
                yield f"{path}.{key} (added)"
            else:
                yield from differences(old[key], new[key], f"{path}.{key}")
    elif isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            yield f"{path} (length {len(old)} → {len(new)})"
        for i, (a, b) in enumerate(zip(old, new)):
            yield from differences(a, b, f"{path}[{i}]")
    elif type(old) is not type(new) or old != new:
        yield f"{path}: {old!r} → {new!r}"


def test_differences_names_each_field() -> None:
    old = {"a": 1, "b": [1, {"c": "x"}], "d": None}
    new = {"a": 1.0, "b": [1, {"c": "y"}], "e": 2}
    assert list(differences(old, new)) == ["$.a: 1 → 1.0", "$.b[1].c: 'x' → 'y'", "$.d (removed)", "$.e (added)"]


def check_golden(name: str, bundle: Path) -> None:
    """Assert ``evaluate BUNDLE --json`` equals ``tests/golden/NAME.json`` field by field (or write it)."""
    res = CliRunner().invoke(cli, ["evaluate", str(bundle), "--json"])
    assert res.exit_code in (0, 3), res.output
    new = json.loads(res.stdout)
    path = GOLDEN / f"{name}.json"
    if WRITE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(json.dumps(new, indent=1, sort_keys=True) + "\n")
    old = json.loads(path.read_text())
    moved = [d for d in differences(old, new) if (name, d.split(":")[0].split(" ")[0]) not in FIXED]
    assert not moved, f"{name}: evaluate --json moved from {path.name}:\n" + "\n".join(moved)


@pytest.mark.parametrize("name", SMALL_SCENARIOS)
def test_evaluate_json_matches_the_golden_copy(name: str, bundle_for: Callable[[str], Path]) -> None:
    check_golden(name, bundle_for(name))


def test_the_demo_evaluation_matches_the_golden_copy(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    """The demo's pipeline (``fixtures.demo.run_pipeline``: the dump with the webhook journal beside it, collected by the CLI)."""
    sim = simulated("rollback-error-rate")
    dump = tmp_path / "dump"
    shutil.copytree(sim / "dump", dump)
    shutil.copy(sim / "webhook-events.jsonl", dump / "webhook-events.jsonl")
    canary = json.loads((sim / "truth.json").read_text())["canary"]
    url = prometheus_for("rollback-error-rate").url
    res = CliRunner().invoke(
        cli, ["collect", canary, "--from-dump", str(dump), "--prometheus", url, "--out", str(tmp_path / "b")]
    )
    assert res.exit_code == 0, res.output
    check_golden("demo", Path(res.stdout.strip().splitlines()[-1]))
