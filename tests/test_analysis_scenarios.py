"""evaluate_bundle on every simulated scenario, collected from a real Prometheus, against the simulator's truth.

The policy's first breaches come from ``fixtures.groundtruth``, which computes the default
policy on what the simulator really served (no Prometheus, no shared code with the analysis).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from evidence.cli import cli
from evidence.evaluate import Evaluation
from evidence.model import Action, OutcomeCause
from evidence.render.evaluation import evaluation_to_json
from fixtures.groundtruth import policy_first_breaches
from fixtures.scenario import load_scenario
from tests.conftest import SCENARIOS, SMALL_SCENARIOS

# What the default policy says of each scenario, as the scenarios describe them.
VERDICTS = {
    "healthy-promotion": "pass",
    "never-ready": "pass",
    "no-traffic": "pass",
    "promoted-despite-breach": "abort",
    "rollback-error-rate": "abort",
    "rollback-latency": "abort",
    "metrics-outage": "pass",
    "tutorial-404s": "abort",
    "datadog-template": "pass",
    "inf-and-query-errors": "abort",
}


def ts(x: float | None) -> dt.datetime | None:
    return None if x is None else dt.datetime.fromtimestamp(x, dt.UTC)


def close(a: dt.datetime | None, b: dt.datetime | None, seconds: float) -> bool:
    if a is None or b is None:
        return a is b
    return abs((a - b).total_seconds()) <= seconds


@pytest.mark.parametrize("name", SMALL_SCENARIOS)
def test_flagger_side_matches_the_truth(
    name: str, evaluated: Callable[[str], Evaluation], truth_of: Callable[[str], dict[str, Any]]
) -> None:
    ev, truth = evaluated(name), truth_of(name)
    ro = truth["rollouts"][-1]
    tl = ev.timeline
    assert ev.outcome == ro["outcome"]
    assert tl.max_weight == ro["max_weight"] == ev.blast.max_weight
    assert [h["at"] for h in ro["halts"]] == pytest.approx([h.time.timestamp() for h in tl.halts], abs=1)
    assert close(tl.first_halt_at, ts(ro["first_halt_at"]), 1)
    assert close(tl.promoted_at, ts(ro["promoted_at"]), 1)
    # rollback_at is the first "Rolling back …" or "Canary failed! …"; the truth records only the
    # former as rollback_at and the latter as failed_at.
    assert close(tl.rollback_at, ts(ro["rollback_at"] or ro["failed_at"]), 1)
    assert tl.confidence == "high"


@pytest.mark.parametrize("name", SMALL_SCENARIOS)
def test_blast_radius_matches_the_exact_counts(
    name: str, evaluated: Callable[[str], Evaluation], truth_of: Callable[[str], dict[str, Any]]
) -> None:
    ev, truth = evaluated(name), truth_of(name)
    ro = truth["rollouts"][-1]
    b = ev.blast
    assert (b.canary_requests, b.canary_errors) == (ro["canary_requests"], ro["canary_errors"])
    if ro["max_weight"] > 0:
        assert close(b.exposure_start, ts(ro["first_weight_at"]), 1)
        assert close(b.exposure_end, ts(ro["canary_traffic_zero_at"]), 1)
        assert b.exposure_seconds == pytest.approx(ro["canary_traffic_zero_at"] - ro["first_weight_at"], abs=1)
    else:
        assert b.exposure_seconds == 0


@pytest.mark.parametrize("name", SMALL_SCENARIOS)
def test_criteria_match_the_ground_truth(
    name: str, evaluated: Callable[[str], Evaluation], truth_of: Callable[[str], dict[str, Any]]
) -> None:
    ev, truth = evaluated(name), truth_of(name)
    ref = policy_first_breaches(truth, list(load_scenario(SCENARIOS / f"{name}.yaml").buckets))
    scrape = truth["scrape_interval"]
    for c in ev.criteria:
        assert close(c.first_breach_at, ts(ref[c.name]), scrape), c.name
    assert ev.verdict == ("abort" if any(ref.values()) else "pass") == VERDICTS[name]


@pytest.mark.parametrize("name", ["rollback-error-rate", "rollback-latency", "no-traffic"])
def test_replaying_flaggers_checks_gives_its_rollback(
    name: str, evaluated: Callable[[str], Evaluation], truth_of: Callable[[str], dict[str, Any]]
) -> None:
    ev, truth = evaluated(name), truth_of(name)
    ro = truth["rollouts"][-1]
    rf = ev.replay_flagger
    assert rf.failed_checks == len(ro["halts"])
    assert close(rf.rollback_at, ts(ro["rollback_at"]), 1)


def test_the_demo_rollout(evaluated: Callable[[str], Evaluation]) -> None:
    js = evaluation_to_json(evaluated("rollback-error-rate"))
    by = {c["name"]: c for c in js["criteria"]}
    assert by["success_rate"]["breached"] and by["error_rate_ratio"]["breached"]
    assert not by["p95_latency_increase"]["breached"]
    assert js["detection_lag_seconds"] is not None and js["detection_lag_seconds"] > 0
    policy_rollback = dt.datetime.fromisoformat(js["replay"]["policy"]["rollback_at"])
    assert policy_rollback <= dt.datetime.fromisoformat(js["flagger"]["rollback_at"])


def test_silent_and_no_traffic_cases(evaluated: Callable[[str], Evaluation]) -> None:
    nr = evaluation_to_json(evaluated("never-ready"))
    assert {"silent-failure", "no-evidence"} <= {f["code"] for f in nr["findings"]}
    nt = evaluation_to_json(evaluated("no-traffic"))
    assert any(f["code"] == "traffic-share-mismatch" for f in nt["findings"])
    assert all(c["status"] == "no_data" for c in nt["criteria"])
    pd_ = evaluation_to_json(evaluated("promoted-despite-breach"))
    assert any(f["code"] == "promoted-despite-breach" for f in pd_["findings"])


@pytest.mark.parametrize("name", SMALL_SCENARIOS)
def test_failed_checks_are_counted_as_flagger_counts_them(
    name: str, evaluated: Callable[[str], Evaluation], truth_of: Callable[[str], dict[str, Any]]
) -> None:
    ev, truth = evaluated(name), truth_of(name)
    ro = truth["rollouts"][-1]
    # The simulator's halts are its failed checks (Halt messages and query failures alike).
    assert ev.timeline.failed_checks == len(ro["halts"])
    assert [h.time.timestamp() for h in ev.timeline.halts] == pytest.approx([h["at"] for h in ro["halts"]], abs=0.01)


def test_a_rollback_during_a_metrics_outage_is_explained_as_one(evaluated: Callable[[str], Evaluation]) -> None:
    ev = evaluated("metrics-outage")
    assert ev.timeline.outcome_cause is OutcomeCause.METRICS_UNAVAILABLE
    assert {h.kind for h in ev.timeline.halts} == {Action.QUERY_FAILED}
    assert "metrics-unavailable" in {f.code for f in ev.findings}
    # A measured breach is not an outage.
    other = evaluated("tutorial-404s")
    assert other.timeline.outcome_cause is OutcomeCause.THRESHOLD_REACHED
    assert {h.metric for h in other.timeline.halts} == {"404s percentage"}
    assert "metrics-unavailable" not in {f.code for f in other.findings}


def test_inf_halts_and_query_errors_end_to_end(
    bundle_for: Callable[[str], Path], evaluated: Callable[[str], Evaluation], truth_of: Callable[[str], dict[str, Any]]
) -> None:
    """``Metric query failed for …`` and ``… +Inf > 5`` failed checks: collected, then ``evaluate --json``, equal the truth."""
    name = "inf-and-query-errors"
    ro = truth_of(name)["rollouts"][-1]
    res = CliRunner().invoke(cli, ["evaluate", str(bundle_for(name)), "--json"])
    assert res.exit_code == 3, res.output  # the default --fail-on breach: the canary served only errors
    out = json.loads(res.stdout)
    assert out["outcome"] == ro["outcome"] == "rolled_back"
    assert out["flagger"]["failed_checks"] == len(ro["halts"]) == 3
    want_kinds = ["query-failed" if h["message"].startswith("Metric query failed for ") else "halt" for h in ro["halts"]]
    assert [h["kind"] for h in out["flagger"]["halts"]] == want_kinds == ["query-failed", "halt", "halt"]
    assert [h["message"] for h in out["flagger"]["halts"]] == [h["message"] for h in ro["halts"]]
    infinite = [h for h in out["flagger"]["halts"] if h["kind"] == "halt"]
    assert {h["metric"] for h in infinite} == {"5xx per 2xx"} and all(h["message"].endswith(" +Inf > 5") for h in infinite)
    # JSON has no infinity: the value is null there, +Inf in the evaluation itself.
    assert {h["value"] for h in infinite} == {None}
    assert [h.value for h in evaluated(name).timeline.halts][1:] == [math.inf, math.inf]
    assert out["verdict"] == VERDICTS[name]
    # The real Prometheus re-runs the template to +Inf too: the replay halts where Flagger did.
    assert "+Inf > 5" in {f["reason"] for f in out["replay"]["flagger"]["failures"]}  # as Flagger prints it (Go)
