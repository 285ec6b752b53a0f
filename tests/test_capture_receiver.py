"""The webhook receiver over real HTTP, and its journal: durable before 202, torn lines, bursts, SIGKILL."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from evidence.capture.journal import Journal
from evidence.capture.metrics import Metrics
from evidence.capture.receiver import Receiver
from evidence.model import CanaryRef
from evidence.sources.dump import DumpSource
from evidence.sources.journal import JournalSource

TOKEN = "s3cret-token"


def payload(
    message: str = "Advance podinfo.shop canary weight 10", phase: str = "Progressing", ts: int = 1_764_000_000_000
) -> dict[str, Any]:
    return {
        "name": "podinfo",
        "namespace": "shop",
        "phase": phase,
        "checksum": "5d8c9f",
        "metadata": {"eventMessage": message, "eventType": "Normal", "timestamp": str(ts)},
    }


def post_rollout(phase: str) -> dict[str, Any]:
    return {"name": "podinfo", "namespace": "shop", "phase": phase, "checksum": "5d8c9f", "metadata": {"hook": "capture"}}


class Client:
    def __init__(self, port: int) -> None:
        self.port = port

    def post(
        self, path: str, body: bytes | dict[str, Any], token: str | None = TOKEN, headers: dict[str, str] | None = None
    ) -> tuple[int, float]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        h = {"Content-Type": "application/json", **(headers or {})}
        if token:
            h["Authorization"] = f"Bearer {token}"
        t0 = time.perf_counter()
        conn.request("POST", path, body=data, headers=h)
        resp = conn.getresponse()
        resp.read()
        conn.close()
        return resp.status, time.perf_counter() - t0

    def get(self, path: str) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        conn.request("GET", path)
        resp = conn.getresponse()
        text = resp.read().decode()
        conn.close()
        return resp.status, text


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Client, Journal, Metrics, list[tuple[str, str, str, str, str]]]]:
    journal = Journal(tmp_path / "journal")
    metrics = Metrics(lambda: journal.bytes, lambda: journal.events)
    calls: list[tuple[str, str, str, str, str]] = []
    r = Receiver(journal, metrics, lambda *a: calls.append(a), "127.0.0.1:0", token=TOKEN, max_bytes=64 * 1024).start()
    yield Client(r.port), journal, metrics, calls
    r.stop()
    journal.close()


def test_every_hook_type_is_journalled_and_answered_202(served: Any) -> None:
    client, journal, _metrics, calls = served
    assert client.post("/flagger/event", payload())[0] == 202
    assert client.post("/flagger/post-rollout", post_rollout("Succeeded"))[0] == 202
    assert client.post("/flagger/post-rollout", post_rollout("Failed"))[0] == 202
    # A rollback hook (or a misrouted hook) sends a non-terminal phase: <= 202 would mean "roll back now".
    assert client.post("/flagger/post-rollout", post_rollout("Progressing"))[0] == 409
    recs = journal.records("shop", "podinfo")
    assert [r.source for r in recs] == ["webhook:event"] + ["webhook:post-rollout"] * 3
    assert recs[0].payload == payload()
    assert calls == [
        ("shop", "podinfo", "Succeeded", "5d8c9f", "post-rollout webhook"),
        ("shop", "podinfo", "Failed", "5d8c9f", "post-rollout webhook"),
    ]
    status, text = client.get("/metrics")
    assert status == 200
    assert 'evidence_webhook_requests_total{code="202"} 3' in text
    assert 'evidence_webhook_requests_total{code="409"} 1' in text
    assert "evidence_journal_events_total 4" in text
    assert client.get("/healthz")[0] == 200 and client.get("/readyz")[0] == 200


@pytest.mark.parametrize(
    ("body", "token", "code"),
    [
        (b"{not json", TOKEN, 400),
        (b"[1, 2]", TOKEN, 400),
        (json.dumps({"name": "podinfo", "namespace": "shop"}).encode(), TOKEN, 400),
        (json.dumps({"name": "podinfo", "namespace": "shop", "phase": "Progressing"}).encode(), TOKEN, 400),
        (json.dumps(payload()).encode(), None, 401),
        (json.dumps(payload()).encode(), "wrong", 401),
        (b"{" + b" " * (70 * 1024) + b"}", TOKEN, 413),
    ],
)
def test_bad_requests_are_refused_and_not_journalled(served: Any, body: bytes, token: str | None, code: int) -> None:
    client, journal, _, calls = served
    assert client.post("/flagger/event", body, token=token)[0] == code
    assert journal.records("shop", "podinfo") == [] and calls == []


def test_a_trickling_client_does_not_delay_others(served: Any) -> None:
    client, journal, _, _ = served
    slow = socket.create_connection(("127.0.0.1", client.port))
    slow.sendall(
        b"POST /flagger/event HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\nAuthorization: Bearer "
        + TOKEN.encode()
        + b"\r\n\r\n{"
    )
    status, seconds = client.post("/flagger/event", payload())
    assert status == 202 and seconds < 1.0
    slow.close()
    assert len(journal.records("shop", "podinfo")) == 1


def test_a_burst_of_10000_events_loses_none(served: Any) -> None:
    client, journal, _, _ = served
    n, workers = 10_000, 8
    latencies: list[float] = []
    codes: list[int] = []
    lock = threading.Lock()

    def send(start: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", client.port, timeout=10)
        for i in range(start, n, workers):
            body = json.dumps(payload(f"Advance podinfo.shop canary weight {i}", ts=1_764_000_000_000 + i)).encode()
            t0 = time.perf_counter()
            conn.request("POST", "/flagger/event", body=body, headers={"Authorization": f"Bearer {TOKEN}"})
            resp = conn.getresponse()
            resp.read()
            with lock:
                latencies.append(time.perf_counter() - t0)
                codes.append(resp.status)
        conn.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=send, args=(w,)) for w in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    assert elapsed < 60 and codes == [202] * n
    recs = journal.records("shop", "podinfo")
    assert sorted(int(r.payload["metadata"]["timestamp"]) for r in recs) == list(range(1_764_000_000_000, 1_764_000_000_000 + n))
    assert sorted(latencies)[int(n * 0.99)] < 1.0


def test_torn_last_line_is_tolerated_and_cut_before_the_next_append(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    j.append("webhook:event", "shop", "podinfo", payload(), body=json.dumps(payload()).encode())
    j.close()
    path = tmp_path / "active" / "shop_podinfo.jsonl"
    with open(path, "ab") as f:
        f.write(b'{"v":1,"received_at":"2026-12-')  # a crash mid-write
    j = Journal(tmp_path)
    assert len(j.records("shop", "podinfo")) == 1
    second = payload("Advance podinfo.shop canary weight 20", ts=1_764_000_060_000)
    j.append("webhook:event", "shop", "podinfo", second, body=json.dumps(second).encode())
    j.close()
    lines = path.read_bytes().splitlines()
    assert len(lines) == 2 and all(json.loads(ln)["v"] == 1 for ln in lines)
    assert [r.payload for r in Journal(tmp_path).records("shop", "podinfo")] == [payload(), second]


def test_compaction_rotates_by_rollout_and_keeps_later_records(tmp_path: Path) -> None:
    j = Journal(tmp_path)
    t0 = dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)
    for i in range(5):
        p = payload(f"Advance podinfo.shop canary weight {i}", ts=1_764_000_000_000 + i)
        j.append("webhook:event", "shop", "podinfo", p, body=json.dumps(p).encode(), received_at=t0 + dt.timedelta(minutes=i))
    assert j.compact("shop", "podinfo", t0 + dt.timedelta(minutes=3), "b" * 32) == 3
    active = (tmp_path / "active" / "shop_podinfo.jsonl").read_bytes().splitlines()
    done = (tmp_path / "done" / "shop_podinfo" / f"{'b' * 32}.jsonl").read_bytes().splitlines()
    assert (len(active), len(done)) == (2, 3)
    assert len(j.records("shop", "podinfo")) == 5 and len(j.records("shop", "podinfo", include_done=False)) == 2


def test_collect_reads_the_journal_as_a_lossless_source(tmp_path: Path, simulated: Callable[[str], Path]) -> None:
    sim = simulated("rollback-error-rate")
    j = Journal(tmp_path)
    lines = (sim / "webhook-events.jsonl").read_text().splitlines()
    for ln in lines:
        j.append("webhook:event", "shop", "podinfo", json.loads(ln), body=ln.encode())
    data = JournalSource(DumpSource(sim / "dump"), j).read(CanaryRef("shop", "podinfo"))
    j.close()
    assert [w["metadata"]["eventMessage"] for w in data.webhook_events] == [
        json.loads(ln)["metadata"]["eventMessage"] for ln in lines
    ]
    assert "journal" in data.source
