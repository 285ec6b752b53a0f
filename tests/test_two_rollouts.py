"""A bundle that holds two rollouts of the same canary (the demo scenario, ``rollback-error-rate``).

The earlier rollout (09:05:07) was promoted and left the canary's Traefik series behind —
its ``code="500"`` series at 1 — before Traefik dropped them; the later one (10:00:07) re-created
them and was rolled back.  Collected over a window that holds both, the later rollout's counts
must still be exact; collected over the earlier one's own window, the Canary's current status
(Failed, set by the later rollout) must not decide the earlier one's outcome — Flagger's status
gauge does, when no event of it is left.
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
from tests.test_show import assert_show_agrees_with_evaluate

NAME = "rollback-error-rate"
UTC = dt.UTC
BOTH = (dt.datetime(2026, 11, 19, 12, 0, tzinfo=UTC), dt.datetime(2026, 11, 20, 10, 30, tzinfo=UTC))
FIRST = (dt.datetime(2026, 11, 20, 9, 0, tzinfo=UTC), dt.datetime(2026, 11, 20, 9, 40, tzinfo=UTC))

Collect = Callable[[bool, tuple[dt.datetime, dt.datetime]], Path]
Evaluate = Callable[[bool, tuple[dt.datetime, dt.datetime]], Evaluation]


@pytest.fixture(scope="module")
def collect(
    simulated: Callable[[str], Path],
    prometheus_for: Callable[[str], PrometheusServer],
    truth_of: Callable[[str], dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Collect:
    """Return the bundle of the demo scenario collected over a window, with or without Flagger's log."""
    truth = truth_of(NAME)
    snapshot = dt.datetime.fromtimestamp(truth["snapshot_at"], UTC)
    cache: dict[tuple[bool, tuple[dt.datetime, dt.datetime]], Path] = {}

    def run(with_log: bool, window: tuple[dt.datetime, dt.datetime]) -> Path:
        key = (with_log, window)
        if key not in cache:
            tmp = tmp_path_factory.mktemp("two-rollouts")
            dump = simulated(NAME) / "dump"
            if not with_log:
                dump = shutil.copytree(dump, tmp / "dump")
                (dump / "flagger.log").unlink()
            cache[key] = collect_rollout(
                CanaryRef("shop", "podinfo"),
                DumpSource(dump),
                PrometheusSource(prometheus_for(NAME).url),
                CollectOptions(out=tmp / "bundles", start=window[0], end=window[1]),
                clock=lambda: snapshot,
            )
        return cache[key]

    return run


@pytest.fixture(scope="module")
def evaluate(collect: Collect) -> Evaluate:
    """Return the evaluation of the demo scenario collected over a window, with or without Flagger's log."""
    cache: dict[tuple[bool, tuple[dt.datetime, dt.datetime]], Evaluation] = {}

    def run(with_log: bool, window: tuple[dt.datetime, dt.datetime]) -> Evaluation:
        key = (with_log, window)
        if key not in cache:
            cache[key] = evaluate_bundle(read_bundle(collect(with_log, window)))
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


def test_the_later_rollout_s_status_does_not_roll_the_earlier_one_back(
    evaluate: Evaluate, collect: Collect, truth_of: Callable[[str], dict[str, Any]]
) -> None:
    """Kubernetes Events only: no terminal event of the earlier rollout survived, and the Canary says Failed since 10:08.

    That status is the later rollout's and decides nothing.  The weight gauge alone shows the
    canary back at 0, which a promotion and a rollback both do; Flagger's status gauge tells
    them apart: 0 (Progressing) → 1 at 09:11:15 (Promoting), never 2, with the weight at the
    last step (maxWeight 50) and back at 0 — promoted, with low confidence and no promotion time.
    """
    ev, ro = evaluate(False, FIRST), truth_of(NAME)["rollouts"][0]
    js = evaluation_to_json(ev)
    assert ev.outcome == "promoted" and js["flagger"]["outcome_source"] == "status-gauge"
    assert js["flagger"]["confidence"] == "low"
    assert "from flagger_canary_status" in js["flagger"]["outcome_reason"]
    assert any("the outcome comes from Flagger's flagger_canary_status gauge" in n for n in ev.notes)
    # promoted_at is a "Promotion completed!" event: none survived, and the gauge's scrape time is not one.
    assert js["flagger"]["promoted_at"] is None
    assert js["flagger"]["rollback_at"] is None and js["flagger"]["rollback_inferred"] is False
    assert js["detection_lag_seconds"] is None
    assert any("set after the evaluated span" in n for n in ev.notes)
    assert not ev.blast.exposure_open  # the gauge still dates the canary's return to 0
    # The canary's weight went back to 0 at the first scrape after Flagger routed all traffic to the primary.
    zero = ev.timeline.traffic_to_primary_at
    assert zero is not None and 0 <= zero.timestamp() - ro["canary_traffic_zero_at"] <= truth_of(NAME)["scrape_interval"]
    # `evidence show` reads the same gauges and says the same.
    text = assert_show_agrees_with_evaluate(collect(False, FIRST))
    assert "promoted: from flagger_canary_status" in text
