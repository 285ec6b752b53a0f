"""`evidence evaluate` as a user runs it: exit codes, the JSON contract, bad input."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from .test_collect import run


def parse(ts: str | None) -> float | None:
    return None if ts is None else dt.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize(
    ("name", "code", "verdict", "outcome"),
    [
        ("rollback-error-rate", 3, "abort", "rolled_back"),
        ("healthy-promotion", 0, "pass", "promoted"),
        ("promoted-despite-breach", 3, "abort", "promoted"),
        ("never-ready", 0, "pass", "failed"),
    ],
)
def test_exit_code_and_json_contract(
    name: str, code: int, verdict: str, outcome: str, bundle_for: Callable[[str], Path], truth_of: Callable[[str], dict[str, Any]]
) -> None:
    res = run("evaluate", str(bundle_for(name)), "--json")
    assert res.returncode == code, res.stderr
    out = json.loads(res.stdout)
    assert out["canary"] == truth_of(name)["canary"]
    assert out["verdict"] == verdict and out["outcome"] == outcome
    assert [c["name"] for c in out["criteria"]][:3] == ["error_rate_ratio", "p95_latency_increase", "success_rate"]
    for c in out["criteria"]:
        assert set(c) >= {"name", "threshold", "breached", "first_breach_at", "worst_value"}
    assert set(out["flagger"]) >= {"first_halt_at", "rollback_at", "promoted_at", "max_weight"}
    assert set(out["blast_radius"]) >= {"max_weight", "canary_requests", "canary_errors", "exposure_seconds"}
    assert out["flagger"]["max_weight"] == out["blast_radius"]["max_weight"] == truth_of(name)["rollouts"][-1]["max_weight"]
    assert "detection_lag_seconds" in out
    ro = truth_of(name)["rollouts"][-1]
    assert out["blast_radius"]["canary_requests"] == ro["canary_requests"]
    assert out["blast_radius"]["canary_errors"] == ro["canary_errors"]


def test_detection_lag_is_rollback_minus_first_breach(bundle_for: Callable[[str], Path]) -> None:
    out = json.loads(run("evaluate", str(bundle_for("rollback-error-rate")), "--json").stdout)
    first = min(t for c in out["criteria"] if (t := parse(c["first_breach_at"])) is not None)
    rollback = parse(out["flagger"]["rollback_at"])
    assert rollback is not None
    assert out["detection_lag_seconds"] == pytest.approx(rollback - first, abs=0.01)


def test_readable_summary(bundle_for: Callable[[str], Path]) -> None:
    res = run("evaluate", str(bundle_for("rollback-error-rate")))
    assert res.returncode == 3
    assert "VERDICT   ABORT" in res.stdout and "Detection lag" in res.stdout and "Blast radius" in res.stdout
    assert res.stdout.endswith("\n") and not res.stdout.endswith("\n\n")


def test_a_newer_bundle_schema_is_refused(bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    copy = tmp_path / "b"
    shutil.copytree(bundle_for("healthy-promotion"), copy)
    m = json.loads((copy / "manifest.json").read_text())
    m["schema_version"] = 99
    (copy / "manifest.json").write_text(json.dumps(m))
    res = run("evaluate", str(copy))
    assert res.returncode == 1 and "schema_version 99 is newer" in res.stderr and "upgrade evidence" in res.stderr


def test_a_missing_table_is_named(bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    copy = tmp_path / "b"
    shutil.copytree(bundle_for("healthy-promotion"), copy)
    (copy / "samples.parquet").unlink()
    res = run("evaluate", str(copy))
    assert res.returncode == 1 and "samples.parquet is missing" in res.stderr


def test_a_bad_policy_names_file_and_field(bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("criteria:\n  error_rate_ratio: {threshold: lots}\n")
    res = run("evaluate", str(bundle_for("healthy-promotion")), "--policy", str(policy))
    assert res.returncode == 1
    assert str(policy) in res.stderr and "criteria.error_rate_ratio.threshold" in res.stderr
    policy.write_text("criteria:\n  latency_p42: {threshold: 1}\n")
    res = run("evaluate", str(bundle_for("healthy-promotion")), "--policy", str(policy))
    assert res.returncode == 1 and "latency_p42" in res.stderr


def test_not_a_bundle_and_usage(tmp_path: Path) -> None:
    res = run("evaluate", str(tmp_path))
    assert res.returncode == 1 and "no manifest.json" in res.stderr
    res = run("evaluate")
    assert res.returncode == 2


@pytest.mark.parametrize(
    ("name", "fail_on", "code", "named"),
    [
        ("never-ready", "breach", 0, ""),
        ("never-ready", "breach,silent-failure", 3, "silent-failure"),
        ("no-traffic", "no-data", 3, "no-data"),
        ("healthy-promotion", "no-data,silent-failure,promoted-despite-breach,low-confidence,unverified", 0, ""),
        ("promoted-despite-breach", "promoted-despite-breach", 3, "promoted-despite-breach"),
        ("metrics-outage", "breach", 0, ""),
    ],
)
def test_fail_on_turns_findings_into_exit_3(
    name: str, fail_on: str, code: int, named: str, bundle_for: Callable[[str], Path]
) -> None:
    res = run("evaluate", str(bundle_for(name)), "--json", "--fail-on", fail_on)
    assert res.returncode == code, res.stderr
    out = json.loads(res.stdout)
    if named and named != "breach":
        assert f"failing on {named}" in res.stderr
    if named in ("silent-failure", "promoted-despite-breach"):
        assert named in {f["code"] for f in out["findings"]}
    if name == "metrics-outage":
        # Flagger rolled back, but only because its queries failed: no breach, explained by cause.
        assert out["outcome"] == "rolled_back" and out["verdict"] == "pass"
        assert out["flagger"]["failed_checks"] == out["flagger"]["failed_checks_reported"] == 3
        assert "metrics-unavailable" in {f["code"] for f in out["findings"]}


def test_fail_on_unverified_and_unknown_conditions(bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    b = tmp_path / "b"
    shutil.copytree(bundle_for("healthy-promotion"), b)
    (b / "manifest.json").write_text((b / "manifest.json").read_text().replace('"healthy-promotion"', '"tampered"', 1) + " ")
    assert run("evaluate", str(b), "--allow-unverified", "--fail-on", "breach").returncode == 0
    res = run("evaluate", str(b), "--allow-unverified", "--fail-on", "breach,unverified")
    assert res.returncode == 3 and "failing on unverified" in res.stderr
    bad = run("evaluate", str(b), "--fail-on", "breach,typo")
    assert bad.returncode == 2 and "typo" in bad.stderr and "silent-failure" in bad.stderr


def test_readme_documents_every_finding_code() -> None:
    import re

    root = Path(__file__).resolve().parent.parent
    source = "\n".join(p.read_text() for p in (root / "evidence").rglob("*.py"))
    codes = set(re.findall(r'Finding\(\s*"([a-z][a-z-]+)"', source))
    assert len(codes) >= 15
    readme = (root / "README.md").read_text()
    assert [c for c in sorted(codes) if f"| `{c}` |" not in readme] == []
