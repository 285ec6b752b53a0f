"""`evidence watch` from a dump, triggered by webhooks, into a real S3 server (SeaweedFS): two watchers, one bundle."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evidence.archive.check import check_store
from evidence.archive.store import open_store
from evidence.capture.watch import Watcher, WatchOptions
from evidence.sources.prometheus import PrometheusSource
from fixtures.prom import PrometheusServer
from fixtures.seaweed import SeaweedServer
from tests.archive_support import seaweed

__all__ = ["seaweed"]
NAME = "rollback-error-rate"


def post(port: int, path: str, body: bytes) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("POST", path, body=body)
    resp = conn.getresponse()
    resp.read()
    conn.close()
    return resp.status


def test_two_watchers_from_a_dump_into_one_s3_store_make_one_bundle(
    seaweed: SeaweedServer,
    simulated: Callable[[str], Path],
    prometheus_for: Callable[[str], PrometheusServer],
    truth_of: Callable[[str], dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    for k, v in seaweed.env().items():
        monkeypatch.setenv(k, v)
    sim = simulated(NAME)
    snapshot = dt.datetime.fromtimestamp(truth_of(NAME)["snapshot_at"], dt.UTC)
    url = "s3://bundles/capture-two-watchers"
    watchers = [
        Watcher(
            WatchOptions(
                store=url,
                prometheus=PrometheusSource(prometheus_for(NAME).url),
                listen="127.0.0.1:0",
                dump=sim / "dump",
                journal=tmp_path / f"journal-{i}",
                s3_endpoint=seaweed.endpoint,
                tail=dt.timedelta(seconds=0.2),
                clock=lambda: snapshot,
            )
        ).start()
        for i in range(2)
    ]
    try:
        lines = (sim / "webhook-events.jsonl").read_text().splitlines()
        end = json.dumps({"name": "podinfo", "namespace": "shop", "phase": "Failed", "checksum": "294b764dc"}).encode()
        for w in watchers:
            assert all(post(w.receiver.port, "/flagger/event", ln.encode()) == 202 for ln in lines)
            assert post(w.receiver.port, "/flagger/post-rollout", end) == 202
        deadline = time.monotonic() + 60
        while sum(len(w.results) for w in watchers) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        for w in watchers:
            w.stop()
    outcomes = sorted(r["outcome"] for w in watchers for r in w.results)
    assert outcomes == ["duplicate", "stored"], [w.results for w in watchers]
    store = open_store(url, endpoint=seaweed.endpoint)
    (entry,) = list(store.bundles())
    checked = check_store(store)
    assert checked.ok and len(checked.bundles) == 1, checked.to_json()
    manifest = json.loads(store.read_file(entry, "manifest.json"))
    assert manifest["sources"]["events"]["webhook"] == len(lines)
