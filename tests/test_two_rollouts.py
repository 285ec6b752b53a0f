"""A bundle that holds two rollouts of the same canary (the demo scenario, ``rollback-error-rate``).

The earlier rollout (09:05:07) was promoted and left the canary's Traefik series behind —
its ``code="500"`` series at 1 — before Traefik dropped them; the later one (10:00:07) re-created
them and was rolled back.  Collected over a window that holds both, the later rollout's counts
must still be exact; collected over the earlier one's own window, the Canary's current status
(Failed, set by the later rollout) must not decide the earlier one's outcome.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evidence.bundle import read_bundle
from evidence.collect import CollectOptions, collect_rollout
from evidence.evaluate import Evaluation, evaluate_bundle
from evidence.model import CanaryRef
from evidence.render.evaluation import evaluation_to_json
from evidence.sources.dump import DumpSource
from evidence.sources.prometheus import PrometheusSource
from fixtures.prom import PrometheusServer

NAME = "rollback-error-rate"
UTC = dt.UTC
BOTH = (dt.datetime(2026, 11, 19, 12, 0, tzinfo=UTC), dt.datetime(2026, 11, 20, 10, 30, tzinfo=UTC))
FIRST = (dt.datetime(2026, 11, 20, 9, 0, tzinfo=UTC), dt.datetime(2026, 11, 20, 9, 40, tzinfo=UTC))

Evaluate = Callable[[bool, tuple[dt.datetime, dt.datetime]], Evaluation]


@pytest.fixture(scope="module")
def evaluate(
    simulated: Callable[[str], Path],
    prometheus_for: Callable[[str], PrometheusServer],
    truth_of: Callable[[str], dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Evaluate:
    """Return the evaluation of the demo scenario collected over a window, with or without Flagger's log."""
    truth = truth_of(NAME)
    snapshot = dt.datetime.fromtimestamp(truth["snapshot_at"], UTC)
    cache: dict[tuple[bool, tuple[dt.datetime, dt.datetime]], Evaluation] = {}

    def run(with_log: bool, window: tuple[dt.datetime, dt.datetime]) -> Evaluation:
        key = (with_log, window)
        if key not in cache:
            tmp = tmp_path_factory.mktemp("two-rollouts")
            dump = simulated(NAME) / "dump"
            if not with_log:
                dump = shutil.copytree(dump, tmp / "dump")
                (dump / "flagger.log").unlink()
            bundle = collect_rollout(
                CanaryRef("shop", "podinfo"),
                DumpSource(dump),
                PrometheusSource(prometheus_for(NAME).url),
                CollectOptions(out=tmp / "bundles", start=window[0], end=window[1]),
                clock=lambda: snapshot,
            )
            cache[key] = evaluate_bundle(read_bundle(bundle))
        return cache[key]

    return run


def test_the_scenario_has_a_promoted_rollout_then_a_rolled_back_one(truth_of: Callable[[str], dict[str, Any]]) -> None:
    first, later = truth_of(NAME)["rollouts"]
    assert (first["outcome"], later["outcome"]) == ("promoted", "rolled_back")
    assert first["canary_errors"] >= 1  # the earlier rollout leaves a 5xx series behind
    assert all(BOTH[0].timestamp() < r["start"] < BOTH[1].timestamp() for r in (first, later))


@pytest.mark.parametrize("with_log", [True, False], ids=["flagger-log", "kubernetes-events-only"])
def test_the_later_rollout_s_counts_are_exact_in_a_window_holding_both(
    with_log: bool, evaluate: Evaluate, truth_of: Callable[[str], dict[str, Any]]
) -> None:
    ev, ro = evaluate(with_log, BOTH), truth_of(NAME)["rollouts"][-1]
    assert abs(ev.rollout_start.timestamp() - ro["start"]) <= 1.0  # the later rollout is the one judged
    assert ev.outcome == "rolled_back"
    assert (ev.blast.canary_requests, ev.blast.canary_errors) == (ro["canary_requests"], ro["canary_errors"])
    assert any("re-created" in n for n in ev.notes)


@pytest.mark.parametrize("with_log", [True, False], ids=["flagger-log", "kubernetes-events-only"])
def test_the_earlier_rollout_alone_counts_exactly(
    with_log: bool, evaluate: Evaluate, truth_of: Callable[[str], dict[str, Any]]
) -> None:
    ev, ro = evaluate(with_log, FIRST), truth_of(NAME)["rollouts"][0]
    assert (ev.blast.canary_requests, ev.blast.canary_errors) == (ro["canary_requests"], ro["canary_errors"])
    assert ev.timeline.max_weight == ro["max_weight"]


def test_the_earlier_rollout_with_flagger_s_log_was_promoted(
    evaluate: Evaluate, truth_of: Callable[[str], dict[str, Any]]
) -> None:
    ev, ro = evaluate(True, FIRST), truth_of(NAME)["rollouts"][0]
    assert ev.outcome == "promoted" and ev.timeline.outcome_source == "events"
    assert ev.timeline.promoted_at is not None and abs(ev.timeline.promoted_at.timestamp() - ro["promoted_at"]) < 0.01
    assert ev.timeline.rollback_at is None


def test_the_later_rollout_s_status_does_not_roll_the_earlier_one_back(evaluate: Evaluate) -> None:
    """Kubernetes Events only: no terminal event of the earlier rollout survived, and the Canary says Failed since 10:08.

    That status is the later rollout's. The weight gauge shows the canary back at 0, which a
    promotion and a rollback both do, so the honest outcome is unknown, with no rollback time.
    """
    ev = evaluate(False, FIRST)
    js = evaluation_to_json(ev)
    assert ev.outcome == "unknown" and js["flagger"]["outcome_source"] == "none"
    assert js["flagger"]["rollback_at"] is None and js["flagger"]["rollback_inferred"] is False
    assert js["detection_lag_seconds"] is None
    assert any("set after the evaluated span" in n for n in ev.notes)
    assert not ev.blast.exposure_open  # the gauge still dates the canary's return to 0
