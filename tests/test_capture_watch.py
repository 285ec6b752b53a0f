"""`evidence watch` against the loopback Kubernetes API server and a real Prometheus.

A simulator scenario is played in sped-up real time: the Canary's status changes arrive as
watch events, Flagger's event webhooks go to the receiver over HTTP, and the terminal phase
ends it.  Each test checks the store: exactly one stored, signed, verified bundle per rollout.
"""

from __future__ import annotations

import copy
import datetime as dt
import http.client
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from evidence.archive.check import check_bundle
from evidence.archive.sign import generate_keypair
from evidence.archive.store import open_store
from evidence.bundle import read_bundle
from evidence.capture.watch import Watcher, WatchOptions
from evidence.sources.prometheus import PrometheusSource
from fixtures.prom import PrometheusServer

from .kubeapi import KubeApiServer

NAME = "rollback-error-rate"
CANARIES = ("flagger.app", "canaries")


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def sim(simulated: Callable[[str], Path]) -> Path:
    return simulated(NAME)


@pytest.fixture(scope="module")
def server(sim: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    with KubeApiServer(sim / "dump", tmp_path_factory.mktemp("kubeapi")) as s:
        yield s


@pytest.fixture
def api(server: KubeApiServer) -> KubeApiServer:
    server.reset()
    return server


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return generate_keypair(tmp_path_factory.mktemp("keys") / "capture")


@pytest.fixture(scope="module")
def prom(prometheus_for: Callable[[str], PrometheusServer]) -> PrometheusServer:
    return prometheus_for(NAME)


def terminal_canary(api: KubeApiServer) -> dict[str, Any]:
    return copy.deepcopy(api._pristine[CANARIES][0])


def progressing(canary: dict[str, Any], weight: int = 10) -> dict[str, Any]:
    c = copy.deepcopy(canary)
    c["status"] = dict(c["status"], phase="Progressing", canaryWeight=weight, lastTransitionTime="2026-11-20T09:58:00Z")
    return c


def options(store: Path, api: KubeApiServer, prom: PrometheusServer, truth: dict[str, Any], **kw: Any) -> WatchOptions:
    snapshot = dt.datetime.fromtimestamp(truth["snapshot_at"], dt.UTC)
    base: dict[str, Any] = {
        "store": str(store),
        "prometheus": PrometheusSource(prom.url),
        "listen": "127.0.0.1:0",
        "kubeconfig": str(api.kubeconfig),
        "context": "test",
        "tail": dt.timedelta(seconds=0.3),
        "clock": lambda: snapshot,
        "watch_timeout_s": 3,
        "read_timeout_s": 6.0,
        "backoff_s": 0.05,
    }
    base.update(kw)
    return WatchOptions(**base)


def post(port: int, path: str, body: bytes) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status


def play_webhooks(w: Watcher, sim: Path) -> int:
    lines = (sim / "webhook-events.jsonl").read_text().splitlines()
    for ln in lines:
        assert post(w.receiver.port, "/flagger/event", ln.encode()) == 202
    return len(lines)


def wait_for(cond: Callable[[], bool], seconds: float = 60.0) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def stored(store: Path) -> list[Any]:
    return list(open_store(store).bundles())


def test_a_rollout_played_through_watch_and_webhooks_ends_in_one_signed_bundle(
    api: KubeApiServer,
    sim: Path,
    prom: PrometheusServer,
    truth_of: Callable[[str], dict[str, Any]],
    keys: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    final = terminal_canary(api)
    api.put("canaries", progressing(final), group="flagger.app")
    w = Watcher(options(store, api, prom, truth_of(NAME), sign_key=keys[0], render=("html",))).start()
    try:
        wait_for(w.ready)
        play_webhooks(w, sim)
        api.put("canaries", progressing(final, 20), group="flagger.app")
        api.put("canaries", final, group="flagger.app")  # the terminal phase, seen through the watch
        assert (
            post(
                w.receiver.port,
                "/flagger/post-rollout",
                json.dumps({"name": "podinfo", "namespace": "shop", "phase": "Failed", "checksum": "x"}).encode(),
            )
            == 202
        )
        wait_for(lambda: len(w.results) >= 1)
        # Repeats of the terminal event and of the webhook change nothing.
        api.put("canaries", final, group="flagger.app")
        assert (
            post(
                w.receiver.port,
                "/flagger/post-rollout",
                json.dumps({"name": "podinfo", "namespace": "shop", "phase": "Failed", "checksum": "x"}).encode(),
            )
            == 202
        )
        time.sleep(1.0)
        assert len(w.results) == 1  # the tracker knew both
        # A post-rollout it cannot match (another checksum) is captured again: the store refuses a second copy.
        other = json.dumps({"name": "podinfo", "namespace": "shop", "phase": "Failed", "checksum": "y"}).encode()
        assert post(w.receiver.port, "/flagger/post-rollout", other) == 202
        wait_for(lambda: len(w.results) >= 2)
    finally:
        w.stop()
    assert [r["outcome"] for r in w.results] == ["stored", "duplicate"]
    bundles = stored(store)
    assert len(bundles) == 1
    result = check_bundle(bundles[0].location, keys[1])
    assert result.ok, result.problems
    manifest = read_bundle(bundles[0].location).manifest
    assert manifest["sources"]["events"]["webhook"] == len((sim / "webhook-events.jsonl").read_text().splitlines())
    reports = w.results[0]["reports"]
    assert len(reports) == 1 and reports[0].endswith(".decision-record.html") and Path(reports[0]).stat().st_size > 10_000
    assert w.results[0]["verdict"] == "abort" and w.results[0]["breached"]
    metrics = w.metrics.render().decode()
    assert (
        'evidence_captures_total{outcome="stored"} 1' in metrics and 'evidence_captures_total{outcome="duplicate"} 1' in metrics
    )


def test_restart_mid_rollout_and_after_it_still_one_bundle(
    api: KubeApiServer, sim: Path, prom: PrometheusServer, truth_of: Callable[[str], dict[str, Any]], tmp_path: Path
) -> None:
    store = tmp_path / "store"
    final = terminal_canary(api)
    api.put("canaries", progressing(final), group="flagger.app")
    w1 = Watcher(options(store, api, prom, truth_of(NAME))).start()
    try:
        wait_for(w1.ready)
        play_webhooks(w1, sim)
    finally:
        w1.stop()  # down while the rollout ends
    api.put("canaries", final, group="flagger.app")
    w2 = Watcher(options(store, api, prom, truth_of(NAME))).start()
    try:
        wait_for(lambda: len(w2.results) >= 1)
    finally:
        w2.stop()
    assert [r["outcome"] for r in w2.results] == ["stored"]
    bundles = stored(store)
    assert len(bundles) == 1
    warnings = read_bundle(bundles[0].location).manifest["warnings"]
    assert any("captured on start-up" in x for x in warnings)
    # Webhooks journalled before the restart are in the bundle.
    assert read_bundle(bundles[0].location).manifest["sources"]["events"]["webhook"] > 0
    w3 = Watcher(options(store, api, prom, truth_of(NAME))).start()
    try:
        wait_for(w3.ready)
        api.put("canaries", final, group="flagger.app")
        time.sleep(1.0)
    finally:
        w3.stop()
    assert w3.results == [] and len(stored(store)) == 1


def test_a_post_rollout_journalled_before_a_crash_is_captured_on_restart(
    api: KubeApiServer, sim: Path, prom: PrometheusServer, truth_of: Callable[[str], dict[str, Any]], tmp_path: Path
) -> None:
    store = tmp_path / "store"
    replay = {"kubeconfig": None, "context": None, "dump": sim / "dump"}
    w1 = Watcher(options(store, api, prom, truth_of(NAME), tail=dt.timedelta(minutes=10), **replay)).start()
    try:
        play_webhooks(w1, sim)
        end = json.dumps({"name": "podinfo", "namespace": "shop", "phase": "Failed", "checksum": "294b764dc"}).encode()
        assert post(w1.receiver.port, "/flagger/post-rollout", end) == 202
    finally:
        w1.stop()  # gone before the tail ended, as after a crash right after the 202
    assert w1.results == [] and not (store / "cluster=unknown").exists()
    w2 = Watcher(options(store, api, prom, truth_of(NAME), **replay)).start()
    try:
        wait_for(lambda: len(w2.results) >= 1)
    finally:
        w2.stop()
    assert [r["outcome"] for r in w2.results] == ["stored"] and w2.results[0]["trigger"] == "journal on start-up"
    (bundle,) = stored(store)
    assert any("from the journal" in x for x in read_bundle(bundle.location).manifest["warnings"])
    w3 = Watcher(options(store, api, prom, truth_of(NAME), **replay)).start()
    time.sleep(0.8)
    w3.stop()
    assert w3.results == [] and len(stored(store)) == 1


def test_a_dropped_watch_and_410_gone_recover(
    api: KubeApiServer, prom: PrometheusServer, truth_of: Callable[[str], dict[str, Any]], tmp_path: Path
) -> None:
    store = tmp_path / "store"
    final = terminal_canary(api)
    api.put("canaries", progressing(final), group="flagger.app")
    w = Watcher(options(store, api, prom, truth_of(NAME), listen=None)).start()
    try:
        wait_for(w.ready)
        api.bookmark()
        api.compact()  # every version the watcher knows is now too old
        api.drop_watches()
        wait_for(
            lambda: "410" in json.dumps(api.requests) or len([r for r in api.requests if r[2].get("watch") == "true"]) >= 4, 10
        )
        api.put("canaries", final, group="flagger.app")
        wait_for(lambda: len(w.results) >= 1)
    finally:
        w.stop()
    assert [r["outcome"] for r in w.results] == ["stored"] and len(stored(store)) == 1
    lists = [r for r in api.requests_for("/apis/flagger.app/v1beta1/canaries") if r[2].get("watch") != "true"]
    assert len(lists) >= 2  # listed again after the 410
    assert "evidence_watch_restarts_total" in w.metrics.render().decode()


def test_expired_events_the_journal_still_has_every_halt(
    api: KubeApiServer, sim: Path, prom: PrometheusServer, truth_of: Callable[[str], dict[str, Any]], tmp_path: Path
) -> None:
    store = tmp_path / "store"
    final = terminal_canary(api)
    api.put("canaries", progressing(final), group="flagger.app")
    w = Watcher(options(store, api, prom, truth_of(NAME))).start()
    try:
        wait_for(w.ready)
        play_webhooks(w, sim)
        with api._lock:  # the API server aggregated and expired the Events, Flagger's pod restarted
            api.store[("", "events")].clear()
            api.log_lines = []
        api.put("canaries", final, group="flagger.app")
        wait_for(lambda: len(w.results) >= 1)
    finally:
        w.stop()
    bundles = stored(store)
    assert len(bundles) == 1
    b = read_bundle(bundles[0].location)
    events = b.table("events")
    start, end = (dt.datetime.fromisoformat(b.manifest["window"][k].replace("Z", "+00:00")).timestamp() for k in ("start", "end"))
    truth = [e for e in truth_of(NAME)["events"] if start <= e["ts"] <= end]
    assert len(events) == len(truth)
    for e in truth:
        hits = events[
            (events["message"] == e["message"]) & ((events["time"].map(lambda t: t.timestamp()) - e["ts"]).abs() < 0.002)
        ]
        assert len(hits) == 1 and "webhook" in hits.iloc[0]["sources"] and "log" not in hits.iloc[0]["sources"], e
    halts = events[events["action"] == "halt"]
    ro = truth_of(NAME)["rollouts"][-1]
    assert len(halts) == len(ro["halts"]) == 3
    api.log_lines = api._read_log()


def test_two_watcher_processes_on_one_store_make_one_bundle(api: KubeApiServer, prom: PrometheusServer, tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    final = terminal_canary(api)
    api.put("canaries", progressing(final), group="flagger.app")
    procs = []
    for i in range(2):
        cmd = [
            sys.executable,
            "-m",
            "evidence",
            "watch",
            "--store",
            str(store),
            "--prometheus",
            prom.url,
            "--kubeconfig",
            str(api.kubeconfig),
            "--context",
            "test",
            "--tail",
            "1s",
            "--journal",
            str(tmp_path / f"journal-{i}"),
        ]
        procs.append(
            subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env={**__import__("os").environ, "NO_PROXY": "127.0.0.1"})
        )
    try:
        wait_for(lambda: len([r for r in api.requests if r[2].get("watch") == "true" and "canaries" in r[1]]) >= 2, 30)
        api.put("canaries", final, group="flagger.app")

        def finished(i: int) -> bool:
            state = tmp_path / f"journal-{i}" / "state.json"
            return state.is_file() and bool(json.loads(state.read_text())["done"])

        wait_for(lambda: finished(0) and finished(1), 60)
    finally:
        outs = []
        for p in procs:
            p.terminate()
        for p in procs:
            outs.append(p.communicate(timeout=30)[1])
    captures = [json.loads(ln) for out in outs for ln in out.splitlines() if ln.startswith("{") and '"capture"' in ln]
    assert sorted(c["outcome"] for c in captures) == ["duplicate", "stored"], outs
    assert len(stored(store)) == 1


def test_with_a_lease_only_the_leader_captures_and_a_follower_takes_over(
    api: KubeApiServer, prom: PrometheusServer, truth_of: Callable[[str], dict[str, Any]], tmp_path: Path
) -> None:
    store = tmp_path / "store"
    final = terminal_canary(api)
    api.put("canaries", progressing(final), group="flagger.app")
    lease = {"lease": "evidence/evidence-watch", "lease_duration_s": 1, "lease_renew_s": 0.1, "listen": None}
    a = Watcher(options(store, api, prom, truth_of(NAME), identity="a", journal=tmp_path / "ja", **lease)).start()
    wait_for(a.ready)
    b = Watcher(options(store, api, prom, truth_of(NAME), identity="b", journal=tmp_path / "jb", **lease)).start()
    try:
        time.sleep(0.5)
        assert a.ready() and not b.ready()  # the Service sends webhooks to the leader only
        a.stop()  # the leader goes away before the rollout ends
        api.put("canaries", final, group="flagger.app")
        wait_for(lambda: len(b.results) >= 1)  # b takes the Lease over once a's has expired
        assert b.ready()
    finally:
        a.stop()
        b.stop()
    assert a.results == [] and [r["outcome"] for r in b.results] == ["stored"] and len(stored(store)) == 1
    holder = next(o for o in api.store[("coordination.k8s.io", "leases")] if o["metadata"]["name"] == "evidence-watch")
    assert holder["spec"]["holderIdentity"] == "b" and holder["spec"]["leaseTransitions"] == 1


def test_a_failed_capture_is_logged_counted_and_the_worker_carries_on(
    api: KubeApiServer, sim: Path, prom: PrometheusServer, truth_of: Callable[[str], dict[str, Any]], tmp_path: Path
) -> None:
    dead = PrometheusSource("http://127.0.0.1:9")  # nothing listens there
    opts = options(
        tmp_path / "store", api, prom, truth_of(NAME), kubeconfig=None, context=None, dump=sim / "dump", prometheus=dead,
        attempts=1,
    )  # fmt: skip
    w = Watcher(opts).start()
    try:
        for n, checksum in enumerate(("a", "b"), start=1):
            end = json.dumps({"name": "podinfo", "namespace": "shop", "phase": "Failed", "checksum": checksum}).encode()
            assert post(w.receiver.port, "/flagger/post-rollout", end) == 202
            wait_for(lambda n=n: len(w.results) >= n, 30)
    finally:
        w.stop()
    assert [r["outcome"] for r in w.results] == ["failed", "failed"]
    assert "127.0.0.1:9" in w.results[0]["error"]
    assert 'evidence_captures_total{outcome="failed"} 2' in w.metrics.render().decode()
    assert stored(tmp_path / "store") == []
