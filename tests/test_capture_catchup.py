"""`evidence watch` after trouble: captures retried on a timer, and rollouts that ended while it was down.

Against the loopback Kubernetes API server and the real Prometheus holding the demo scenario
(two rollouts of shop/podinfo: 09:05 promoted, 10:00 rolled back).  A Prometheus behind a
fault proxy fails the first attempt and then answers; a watcher that was down since 09:00 finds
both rollouts from the Canary status and Flagger's metrics, although the status shows only the
second one.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evidence.bundle import read_bundle
from evidence.capture.catchup import _status_runs, ended_runs
from evidence.capture.options import WatchArgs, options_from_cli
from evidence.capture.watch import Watcher
from evidence.sources.prometheus import PrometheusSource
from fixtures.prom import PrometheusServer

from .faultproxy import FaultProxy, Rule
from .kubeapi import FLAGGER_NAMESPACE, KubeApiServer
from .test_capture_watch import (
    NAME,
    api,
    options,
    progressing,
    prom,
    server,
    sim,
    stored,
    terminal_canary,
    wait_for,
)

__all__ = ["api", "prom", "server", "sim"]  # the fixtures of the watcher tests

UTC = dt.UTC


def test_a_failed_capture_is_retried_on_a_timer_and_stored_once(
    api: KubeApiServer, prom: PrometheusServer, truth_of: Callable[[str], dict[str, Any]], tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    store = tmp_path / "store"
    final = terminal_canary(api)
    api.put("canaries", progressing(final), group="flagger.app")
    with FaultProxy(prom.url, [Rule("", "drop")]) as proxy:  # Prometheus is unreachable at first
        opts = options(store, api, prom, truth_of(NAME), prometheus=PrometheusSource(proxy.url), listen=None,
                       attempts=4, retry_backoff_s=0.5)  # fmt: skip
        w = Watcher(opts).start()
        try:
            with caplog.at_level(logging.INFO, logger="evidence.capture"):
                wait_for(w.ready)
                api.put("canaries", final, group="flagger.app")  # the only trigger: no later event comes
                wait_for(lambda: len(w.results) >= 1)
                proxy.rules.clear()  # Prometheus is back
                wait_for(lambda: any(r["outcome"] == "stored" for r in w.results))
        finally:
            w.stop()
    outcomes = [r["outcome"] for r in w.results]
    assert outcomes[0] == "retrying" and outcomes[-1] == "stored" and set(outcomes[1:-1]) <= {"retrying"}
    assert [r["attempt"] for r in w.results] == list(range(1, len(outcomes) + 1))
    assert w.results[0]["retry_in_s"] == 0.5 and "127.0.0.1" in w.results[0]["error"]
    assert len(stored(store)) == 1
    metrics = w.metrics.render().decode()
    assert f'evidence_captures_total{{outcome="retrying"}} {len(outcomes) - 1}' in metrics
    assert 'evidence_captures_total{outcome="stored"} 1' in metrics
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.getMessage().startswith('{"msg": "capture"')]
    assert [ln["outcome"] for ln in lines] == outcomes


def test_a_capture_that_keeps_failing_gives_up_after_its_attempts(
    api: KubeApiServer, prom: PrometheusServer, truth_of: Callable[[str], dict[str, Any]], tmp_path: Path
) -> None:
    final = terminal_canary(api)
    api.put("canaries", final, group="flagger.app")
    dead = PrometheusSource("http://127.0.0.1:9")
    w = Watcher(options(tmp_path / "store", api, prom, truth_of(NAME), prometheus=dead, listen=None, attempts=3,
                        retry_backoff_s=0.1)).start()  # fmt: skip
    try:
        wait_for(lambda: len(w.results) >= 3)
    finally:
        w.stop()
    assert [r["outcome"] for r in w.results] == ["retrying", "retrying", "failed"]
    assert [r["retry_in_s"] for r in w.results[:2]] == [0.1, 0.2]  # backoff doubles
    assert 'evidence_captures_total{outcome="failed"} 1' in w.metrics.render().decode()


def _down_since(store: Path, at: dt.datetime) -> None:
    """Leave the state of a watcher that stopped at ``at`` (what the tracker writes on stop)."""
    (store / "journal").mkdir(parents=True)
    (store / "journal" / "state.json").write_text(json.dumps({"done": {}, "last_seen": at.timestamp()}))


def test_rollouts_that_ended_while_down_are_found_in_flaggers_metrics(
    api: KubeApiServer, prom: PrometheusServer, truth_of: Callable[[str], dict[str, Any]], tmp_path: Path
) -> None:
    store = tmp_path / "store"
    _down_since(store, dt.datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    truth = truth_of(NAME)
    w = Watcher(options(store, api, prom, truth, listen=None)).start()  # the Canary shows only the 10:00 rollout
    try:
        wait_for(lambda: len(w.results) >= 2)
    finally:
        w.stop()
    assert sorted(r["outcome"] for r in w.results) == ["stored", "stored"]
    assert sorted(r["flagger_outcome"] for r in w.results) == ["promoted", "rolled_back"]
    bundles = [read_bundle(b.location) for b in stored(store)]
    assert len(bundles) == 2
    by_start = sorted(bundles, key=lambda b: b.manifest["rollout"]["start"])
    starts = [dt.datetime.fromisoformat(b.manifest["rollout"]["start"].replace("Z", "+00:00")).timestamp() for b in by_start]
    assert starts == [ro["start"] for ro in truth["rollouts"]]  # each bundle holds its own rollout
    for b in by_start:
        notes = [x for x in b.manifest["warnings"] if "from Flagger's metrics" in x]
        assert len(notes) == 1 and "evidence already lost" in notes[0] and "webhook deliveries" in notes[0]
    assert "flagger_canary_status shows podinfo in shop ended (Succeeded) at 2026-11-20T09:11:15Z" in str(
        by_start[0].manifest["warnings"]
    )
    # The later rollout is the Canary's current status too: one capture, with both start-up notes.
    assert any("captured on start-up, after the rollout ended" in x for x in by_start[1].manifest["warnings"])
    again = Watcher(options(store, api, prom, truth, listen=None)).start()  # nothing is captured twice
    try:
        wait_for(again.ready)
        wait_for(lambda: again._caught_up)
    finally:
        again.stop()
    assert again.results == [] and len(stored(store)) == 2


def test_ended_runs_reads_flaggers_status_gauge(prom: PrometheusServer, truth_of: Callable[[str], dict[str, Any]]) -> None:
    now = dt.datetime.fromtimestamp(truth_of(NAME)["snapshot_at"], UTC)
    runs = ended_runs(PrometheusSource(prom.url), dt.datetime(2026, 11, 20, 9, 30, tzinfo=UTC), now)
    assert [(r.target, r.phase, r.source) for r in runs] == [("podinfo", "Failed", "flagger_canary_status")]
    assert runs[0].started == dt.datetime(2026, 11, 20, 10, 0, 15, tzinfo=UTC)
    assert ended_runs(PrometheusSource(prom.url), now, now) == []
    assert ended_runs(PrometheusSource(prom.url), dt.datetime(2026, 11, 20, 9, 30, tzinfo=UTC), now, ("web",)) == []


@pytest.mark.parametrize(
    ("values", "runs"),
    [
        ([1, 0, 0, 1, 1], [(3, 1, "Succeeded")]),
        ([1, 0, 0, 2], [(3, 1, "Failed")]),
        ([1, 0, 1, 2, 1, 0, 1], [(2, 1, "Failed"), (6, 5, "Succeeded")]),  # a failed promotion, then a run that promoted
        ([0, 0, 2], [(2, None, "Failed")]),  # began before the first sample
        ([1, 1, 1], []),
    ],
)
def test_a_run_is_a_streak_of_progressing(values: list[int], runs: list[tuple[int, int | None, str]]) -> None:
    # flagger_canary_status is 0 only while Progressing, 2 for Failed, 1 for every other phase.
    assert _status_runs([(float(t), float(v)) for t, v in enumerate(values)], -1.0) == [
        (float(e), None if s is None else float(s), p) for e, s, p in runs
    ]


def test_flagger_namespace_is_where_the_capture_reads_flaggers_pods(
    api: KubeApiServer, prom: PrometheusServer, truth_of: Callable[[str], dict[str, Any]], tmp_path: Path
) -> None:
    args = WatchArgs(store=str(tmp_path / "s"), prometheus_url=prom.url, flagger_namespace="delivery")
    assert options_from_cli(args).flagger_namespace == "delivery"
    assert options_from_cli(WatchArgs(store="s", prometheus_url=prom.url)).flagger_namespace == FLAGGER_NAMESPACE
    api.put("canaries", terminal_canary(api), group="flagger.app")
    w = Watcher(options(tmp_path / "store", api, prom, truth_of(NAME), listen=None, flagger_namespace="delivery")).start()
    try:
        wait_for(lambda: len(w.results) >= 1)
    finally:
        w.stop()
    pods = [r[1] for r in api.requests if r[1].endswith("/pods") or "/pods/" in r[1]]
    assert pods and all("/namespaces/delivery/" in p for p in pods), pods
