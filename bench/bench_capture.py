"""Capture benchmarks: terminal state to stored bundle, receiver throughput and p99, watcher memory with 200 canaries.

* ``terminal_to_stored_seconds``: a Canary's status turns ``Failed`` on the loopback Kubernetes
  API server (``tests/kubeapi.py``); the in-process watcher (tail 0) sees it through its watch,
  collects from the API server and a real Prometheus, evaluates, renders HTML, signs and stores.
  Best of three rollouts (each a fresh store).
* ``receiver_*``: 5,000 ``event`` webhooks from 8 keep-alive clients at once; every one is
  fsynced to the journal before its 202.  Baseline: the same clients against a stdlib server
  that answers 202 without journalling (``receiver_vs_no_journal`` is the ratio of throughputs).
* ``watcher_rss_mib_200_canaries``: ``evidence watch`` as its own process over 200 Canaries,
  resident memory after listing them and after 200 status changes.
"""

from __future__ import annotations

import copy
import datetime as dt
import http.client
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from evidence.archive.sign import generate_keypair
from evidence.capture.journal import Journal
from evidence.capture.metrics import Metrics
from evidence.capture.receiver import Receiver
from evidence.capture.watch import Watcher, WatchOptions
from evidence.sources.prometheus import PrometheusSource
from fixtures.prom import PrometheusServer, backfill
from fixtures.scenario import load_scenario
from fixtures.simulator import write_outputs
from tests.kubeapi import KubeApiServer

ROOT = Path(__file__).resolve().parent.parent
NAME = "rollback-error-rate"
EVENTS, CLIENTS = 5000, 8


def _burst(port: int) -> tuple[float, list[float]]:
    lat: list[float] = []
    lock = threading.Lock()
    body = json.dumps(
        {"name": "podinfo", "namespace": "shop", "phase": "Progressing", "checksum": "x",
         "metadata": {"eventMessage": "Advance podinfo.shop canary weight 10", "eventType": "Normal", "timestamp": "1"}}
    ).encode()  # fmt: skip

    def client(n: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine = []
        for _ in range(n):
            t0 = time.perf_counter()
            conn.request("POST", "/flagger/event", body=body)
            r = conn.getresponse()
            r.read()
            mine.append(time.perf_counter() - t0)
        conn.close()
        with lock:
            lat.extend(mine)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(EVENTS // CLIENTS,)) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, sorted(lat)


class _NoJournal(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()


def receiver(work: Path) -> dict[str, Any]:
    shutil.rmtree(work / "journal", ignore_errors=True)
    journal = Journal(work / "journal")
    r = Receiver(journal, Metrics(), lambda *a: None, "127.0.0.1:0").start()
    seconds, lat = _burst(r.port)
    r.stop()
    journal.close()
    base = ThreadingHTTPServer(("127.0.0.1", 0), _NoJournal)
    base.daemon_threads = True
    threading.Thread(target=base.serve_forever, daemon=True).start()
    base_seconds, _ = _burst(int(base.server_address[1]))
    base.shutdown()
    base.server_close()
    n = len(lat)
    return {
        "receiver_events_per_second": round(n / seconds),
        "receiver_p50_ms": round(lat[n // 2] * 1000, 2),
        "receiver_p99_ms": round(lat[int(n * 0.99)] * 1000, 2),
        "receiver_vs_no_journal": round(base_seconds / seconds, 2),
    }


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def run(work: Path) -> dict[str, Any]:
    sim = work / "capture-sim"
    shutil.rmtree(sim, ignore_errors=True)
    write_outputs(load_scenario(ROOT / "fixtures" / "scenarios" / f"{NAME}.yaml"), sim)
    backfill(sim / "openmetrics.txt", sim / "tsdb")
    truth = json.loads((sim / "truth.json").read_text())
    snapshot = dt.datetime.fromtimestamp(truth["snapshot_at"], dt.UTC)
    out = receiver(work)
    os.environ["NO_PROXY"] = "127.0.0.1"
    keys = work / "capture-keys"
    shutil.rmtree(keys, ignore_errors=True)
    keys.mkdir()
    key, _ = generate_keypair(keys / "bench")
    with PrometheusServer(sim / "tsdb", sim / "prom") as prom, KubeApiServer(sim / "dump", work / "capture-kubeapi") as api:
        final = copy.deepcopy(api._pristine[("flagger.app", "canaries")][0])
        running = copy.deepcopy(final)
        running["status"] = dict(running["status"], phase="Progressing", lastTransitionTime="2026-11-20T09:58:00Z")
        best = float("inf")
        for i in range(3):
            store = work / f"capture-store-{i}"
            shutil.rmtree(store, ignore_errors=True)
            api.put("canaries", running, group="flagger.app")
            w = Watcher(
                WatchOptions(
                    store=str(store),
                    prometheus=PrometheusSource(prom.url),
                    kubeconfig=str(api.kubeconfig),
                    context="test",
                    tail=dt.timedelta(0),
                    render=("html",),
                    sign_key=key,
                    clock=lambda: snapshot,
                    watch_timeout_s=30,
                )
            ).start()
            while not w.ready():
                time.sleep(0.01)
            t0 = time.perf_counter()
            api.put(
                "canaries",
                dict(final, status=dict(final["status"], lastTransitionTime=f"2026-11-20T10:08:0{i}Z")),
                group="flagger.app",
            )
            while not w.results:
                time.sleep(0.005)
            best = min(best, time.perf_counter() - t0)
            assert w.results[0]["outcome"] == "stored", w.results
            w.stop()
        out["terminal_to_stored_seconds"] = round(best, 2)
        # 200 canaries, one watcher process.
        for n in range(200):
            c = copy.deepcopy(running)
            c["metadata"] = {**c["metadata"], "name": f"app-{n:03d}", "uid": f"uid-{n}"}
            api.put("canaries", c, group="flagger.app")
        store = work / "capture-store-rss"
        shutil.rmtree(store, ignore_errors=True)
        proc = subprocess.Popen(
            [sys.executable, "-m", "evidence", "watch", "--store", str(store), "--prometheus", prom.url, "--kubeconfig",
             str(api.kubeconfig), "--context", "test", "--listen", "127.0.0.1:0", "--tail", "10m"],
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert proc.stderr is not None
            port = int(json.loads(proc.stderr.readline())["address"].rpartition(":")[2])
            while True:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", "/readyz")
                ready = conn.getresponse().status == 200
                conn.close()
                if ready:
                    break
                time.sleep(0.05)
            time.sleep(1.0)
            out["watcher_rss_mib_200_canaries"] = _rss_mib(proc.pid)
            for n in range(200):
                c = copy.deepcopy(running)
                c["metadata"] = {**c["metadata"], "name": f"app-{n:03d}", "uid": f"uid-{n}"}
                c["status"]["canaryWeight"] = 20
                api.put("canaries", c, group="flagger.app")
            time.sleep(2.0)
            out["watcher_rss_mib_after_200_changes"] = _rss_mib(proc.pid)
        finally:
            proc.terminate()
            proc.communicate(timeout=30)
    return out
