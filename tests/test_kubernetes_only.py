"""Evaluation when Flagger's events come only from the Kubernetes Events API (no log, no webhook).

Every scenario's dump is collected without ``flagger.log``, so the events are what the API
server holds after client-go's dedup, aggregation (``(combined from similar events): …``),
spam filter and the 1 h TTL (``fixtures/eventsapi.py``), with times to the second.  The
assertions are what those events, the Canary object and Prometheus can support; where a
scenario cannot support more, a comment says why.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evidence.bundle import read_bundle
from evidence.collect import CollectOptions, collect_rollout
from evidence.evaluate import Evaluation, evaluate_bundle
from evidence.model import CanaryRef
from evidence.render.evaluation import format_evaluation
from evidence.sources.dump import DumpSource
from evidence.sources.prometheus import PrometheusSource
from fixtures.prom import PrometheusServer
from tests.conftest import SMALL_SCENARIOS
from tests.test_show import assert_show_agrees_with_evaluate

UTC = dt.UTC
EVENT_RESOLUTION = 1.0  # Kubernetes Event times are whole seconds
K8S_ONLY_NOTE = "the events come only from the Kubernetes Events API"


def ts(x: float | None) -> dt.datetime | None:
    return None if x is None else dt.datetime.fromtimestamp(x, UTC)


def close(a: dt.datetime | None, b: dt.datetime | None, seconds: float) -> bool:
    if a is None or b is None:
        return a is b
    return abs((a - b).total_seconds()) <= seconds


def collect(
    name: str,
    dump: Path,
    out: Path,
    truth: dict[str, Any],
    prometheus: PrometheusServer,
    options: dict[str, Any] | None = None,
) -> Path:
    now = dt.datetime.fromtimestamp(truth["snapshot_at"], UTC)
    return collect_rollout(
        CanaryRef.parse(truth["canary"]),
        DumpSource(dump),
        PrometheusSource(prometheus.url),
        CollectOptions(out=out, **(options or {})),
        clock=lambda: now,
    )


@pytest.fixture(scope="module")
def k8s_only(
    simulated: Callable[[str], Path],
    prometheus_for: Callable[[str], PrometheusServer],
    truth_of: Callable[[str], dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str], Evaluation]:
    cache: dict[str, Evaluation] = {}

    def get(name: str) -> Evaluation:
        if name not in cache:
            work = tmp_path_factory.mktemp(f"k8s-only-{name}")
            dump = work / "dump"
            shutil.copytree(simulated(name) / "dump", dump)
            (dump / "flagger.log").unlink()
            assert not list(dump.glob("*.jsonl"))  # no webhook journal either: Kubernetes is the only event source
            bundle = collect(name, dump, work / "bundles", truth_of(name), prometheus_for(name))
            cache[name] = evaluate_bundle(read_bundle(bundle))
        return cache[name]

    return get


@pytest.mark.parametrize("name", SMALL_SCENARIOS)
def test_outcome_weight_and_terminal_times(
    name: str, k8s_only: Callable[[str], Evaluation], truth_of: Callable[[str], dict[str, Any]]
) -> None:
    ev, ro = k8s_only(name), truth_of(name)["rollouts"][-1]
    tl = ev.timeline
    assert ev.outcome == ro["outcome"]
    assert tl.max_weight == ro["max_weight"] == ev.blast.max_weight
    # rollback_at is the first "Rolling back …" or "Canary failed! …" (the truth keeps the latter as failed_at).
    assert close(tl.rollback_at, ts(ro["rollback_at"] or ro["failed_at"]), EVENT_RESOLUTION)
    assert close(tl.promoted_at, ts(ro["promoted_at"]), EVENT_RESOLUTION)
    assert close(tl.started_at, ts(ro["start"]), EVENT_RESOLUTION)
    # Halts: client-go deduplicates identical halts into one Event dated by its first occurrence
    # (no-traffic's three "no values found" halts are one Event with count 3), so the timeline's
    # halts are a subset of the true ones and the first halt is exact; the count is a lower bound.
    truth_halts = [h["at"] for h in ro["halts"]]
    assert all(any(abs(h.time.timestamp() - t) <= EVENT_RESOLUTION for t in truth_halts) for h in tl.halts)
    assert sum(h.occurrences for h in tl.halts) <= len(truth_halts)
    assert close(tl.first_halt_at, ts(ro["first_halt_at"]), EVENT_RESOLUTION)


@pytest.mark.parametrize("name", SMALL_SCENARIOS)
def test_requests_and_errors_from_prometheus_are_exact(
    name: str, k8s_only: Callable[[str], Evaluation], truth_of: Callable[[str], dict[str, Any]]
) -> None:
    ev, ro = k8s_only(name), truth_of(name)["rollouts"][-1]
    assert (ev.blast.canary_requests, ev.blast.canary_errors) == (ro["canary_requests"], ro["canary_errors"])


@pytest.mark.parametrize("name", SMALL_SCENARIOS)
def test_exposure_is_closed_and_within_one_analysis_interval(
    name: str, k8s_only: Callable[[str], Evaluation], truth_of: Callable[[str], dict[str, Any]]
) -> None:
    ev, truth = k8s_only(name), truth_of(name)
    ro = truth["rollouts"][-1]
    b = ev.blast
    # Every scenario's rollout ended before the snapshot: nothing is open.
    assert not b.exposure_open
    codes = {f.code for f in ev.findings}
    assert "exposure-open" not in codes
    if not ro["weights"]:
        assert b.exposure_seconds == 0
    else:
        first_weight_at = ro["weights"][0]["at"]
        true_exposure = ro["canary_traffic_zero_at"] - first_weight_at
        assert b.exposure_seconds == pytest.approx(true_exposure, abs=truth["interval"])
        assert close(b.exposure_start, ts(first_weight_at), truth["interval"])
        assert close(b.exposure_end, ts(ro["canary_traffic_zero_at"]), truth["interval"])
    # A share mismatch is true only where the canary was weighted and served nothing (no-traffic).
    really_mismatched = ro["max_weight"] > 0 and ro["canary_requests"] == 0
    assert ("traffic-share-mismatch" in codes) == really_mismatched


@pytest.mark.parametrize("name", SMALL_SCENARIOS)
def test_confidence_is_lowered_and_says_why(name: str, k8s_only: Callable[[str], Evaluation]) -> None:
    ev = k8s_only(name)
    assert ev.timeline.confidence in ("medium", "low")
    assert any(K8S_ONLY_NOTE in n for n in ev.notes)
    assert all(e.lossy for e in ev.timeline.entries)


def test_a_promotion_folded_into_promotion_completed_is_no_open_exposure(k8s_only: Callable[[str], Evaluation]) -> None:
    """healthy-promotion: client-go combined "Routing all traffic to primary" into "Promotion completed!"."""
    ev = k8s_only("healthy-promotion")
    assert not any(e.action == "route-primary" for e in ev.timeline.entries)
    assert any(e.aggregated and e.action == "promoted" for e in ev.timeline.entries)
    assert ev.timeline.traffic_to_primary_at is not None
    assert ev.timeline.traffic_to_primary_at < (ev.timeline.promoted_at or ev.rollout_end)
    assert "still open" not in format_evaluation(ev)


def test_only_the_canary_object_and_prometheus(
    simulated: Callable[[str], Path],
    prometheus_for: Callable[[str], PrometheusServer],
    truth_of: Callable[[str], dict[str, Any]],
    tmp_path: Path,
) -> None:
    """No event at all (they expired): the Canary's phase Failed and the weight gauge's drop are the rollback."""
    name = "rollback-error-rate"
    truth = truth_of(name)
    ro = truth["rollouts"][-1]
    dump = tmp_path / "dump"
    dump.mkdir()
    shutil.copy(simulated(name) / "dump" / "canary.json", dump)
    window = {"start": dt.datetime(2026, 11, 20, 9, 55, tzinfo=UTC), "end": dt.datetime(2026, 11, 20, 10, 20, tzinfo=UTC)}
    bundle = collect(name, dump, tmp_path / "bundles", truth, prometheus_for(name), window)
    ev = evaluate_bundle(read_bundle(bundle))
    tl = ev.timeline
    assert ev.outcome == "rolled_back" and tl.outcome_source == "canary-status" and tl.confidence == "low"
    # The gauge is scraped every scrape_interval: the drop shows at the first scrape after the rollback.
    assert tl.rollback_at is not None and ro["rollback_at"] is not None
    assert 0 <= tl.rollback_at.timestamp() - ro["rollback_at"] <= truth["scrape_interval"]
    assert tl.max_weight == ro["max_weight"]
    assert any("the rollback is inferred" in n for n in ev.notes)
    assert not any("did not roll back" in f.message for f in ev.findings)
    assert (ev.blast.canary_requests, ev.blast.canary_errors) == (ro["canary_requests"], ro["canary_errors"])


@pytest.mark.parametrize("status", ["set-after-the-window", "absent"])
@pytest.mark.parametrize("name", ["never-ready", "no-traffic"])
def test_flagger_s_status_gauge_decides_when_no_event_and_no_canary_status_do(
    name: str,
    status: str,
    simulated: Callable[[str], Path],
    prometheus_for: Callable[[str], PrometheusServer],
    truth_of: Callable[[str], dict[str, Any]],
    tmp_path: Path,
) -> None:
    """No event at all (no flagger.log, no events.json) and a Canary whose status says nothing of the rollout.

    Either a later rollout set it after the window ("Progressing" since then), or the Canary was
    saved without a status (its manifest from Git).  Flagger's flagger_canary_status went
    0 (Progressing) → 2 (Failed) at the first scrape after the failure: never-ready never took
    weight, so it failed; no-traffic had weight 10 %, so it was rolled back.
    """
    truth = truth_of(name)
    ro = truth["rollouts"][-1]
    dump = tmp_path / "dump"
    shutil.copytree(simulated(name) / "dump", dump)
    (dump / "flagger.log").unlink()
    (dump / "events.json").unlink()
    assert not list(dump.glob("*.jsonl"))
    end = ts(ro["end"] + 180)
    assert end is not None
    canary = json.loads((dump / "canary.json").read_text())
    if status == "absent":
        del canary["status"]
    else:
        later = (end + dt.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert later < dt.datetime.fromtimestamp(truth["snapshot_at"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        canary["status"] = {**canary["status"], "phase": "Progressing", "lastTransitionTime": later}
    (dump / "canary.json").write_text(json.dumps(canary))
    window = {"start": ts(ro["start"] - 600), "end": end}
    bundle = collect(name, dump, tmp_path / "bundles", truth, prometheus_for(name), window)
    ev = evaluate_bundle(read_bundle(bundle))
    tl = ev.timeline
    assert tl.entries == ()
    assert (ev.outcome, tl.outcome_source, tl.confidence) == (ro["outcome"], "status-gauge", "low")
    assert ev.outcome == ("failed" if ro["max_weight"] == 0 else "rolled_back")
    assert tl.outcome_reason.startswith("from flagger_canary_status: 0 (Progressing) → 2 (Failed)")
    assert any("the outcome comes from Flagger's flagger_canary_status gauge" in n for n in ev.notes)
    if status != "absent":
        assert any("set after the evaluated span" in n for n in ev.notes)
    # The rollback (or failure) is the first scrape that shows the 2: within one scrape interval after it.
    failed_at = ro["rollback_at"] or ro["failed_at"]
    assert tl.rollback_inferred and tl.rollback_at is not None and tl.rollback_at == tl.failed_at
    assert 0 <= tl.rollback_at.timestamp() - failed_at <= truth["scrape_interval"]
    assert tl.promoted_at is None and tl.max_weight == ro["max_weight"]
    # `evidence show` reads the status gauge too, and says the same.
    assert_show_agrees_with_evaluate(bundle)
