"""The chunks sent ahead of the answer being taken are bounded: one slow chunk never queues the window's answers."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

from evidence.progress import Progress
from evidence.queries import LOOKAHEAD, Query, run_queries
from evidence.samplestream import parse_raw
from evidence.sources.prometheus import PrometheusSource
from fixtures.prom import PrometheusServer
from tests.faultproxy import FaultProxy, Rule

SCENARIO = "rollback-error-rate"
SELECTOR = 'traefik_service_requests_total{service=~".*podinfo.*"}'


def test_a_slow_first_chunk_holds_back_at_most_the_lookahead(
    prometheus_for: Callable[[str], PrometheusServer], truth_of: Callable[[str], dict[str, Any]]
) -> None:
    end = dt.datetime.fromtimestamp(int(truth_of(SCENARIO)["window"]["end"]), dt.UTC)
    slow = Query("raw:slow", "one chunk, answered late", SELECTOR, "raw", end - dt.timedelta(seconds=3607), end)
    long = Query("raw:long", "twenty chunks", SELECTOR, "raw", end - dt.timedelta(hours=40), end)
    taken: list[tuple[str, int]] = []
    parsed_in: set[str] = set()

    def parse(results: list[dict[str, Any]]) -> Any:
        parsed_in.add(threading.current_thread().name)
        return parse_raw(results)

    workers, delay = 4, 1.5
    with FaultProxy(prometheus_for(SCENARIO).url, [Rule("[3607s]", "slow", delay=delay)]) as proxy:
        run_queries(
            PrometheusSource(proxy.url),
            [slow, long],
            workers,
            Progress(quiet=True, warnings=False),
            on_raw=lambda q, r: taken.append((q.id, sum(len(ts) for _, ts, _ in r))),
            parse_raw=parse,
        )
    # Each answer is parsed into arrays by the worker that fetched it, so the answers waiting are arrays.
    assert parsed_in and threading.current_thread().name not in parsed_in
    assert sum(n for _, n in taken) > 0
    assert (slow.status, long.status, long.chunks) == ("ok", "ok", 20)
    # Answers are taken in task order: the slow chunk first, then the long query's chunks.
    assert [q for q, _ in taken] == ["raw:slow"] + ["raw:long"] * 20
    at = next(i for i, r in enumerate(proxy.requests) if "[3607s]" in r)
    answered = proxy.arrivals[at] + delay
    before = sum(1 for t in proxy.arrivals if t < answered)
    # Sending every chunk at once (pool.map) would have sent all 21 while the slow one waited.
    assert before <= workers * LOOKAHEAD < 21, (before, len(proxy.requests))
    assert len(proxy.requests) == 21
