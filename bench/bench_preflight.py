"""Preflight on the large scenario (50 Traefik services, 24 h) against its own queries run bare.

Figures: wall time of ``run_preflight`` on the dump at the end of the data (best of 3); the
same instant queries it sent, replayed one after the other through a plain PrometheusSource
(the least any preflight must wait for); the ratio, and how many queries a preflight sends.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

from bench.bench_collect import ensure_large
from evidence.model import CanaryRef
from evidence.policy import default_policy
from evidence.preflight import run_preflight
from evidence.sources.dump import DumpSource
from evidence.sources.prometheus import PrometheusSource
from fixtures.prom import PrometheusServer


class RecordingSource(PrometheusSource):
    """A PrometheusSource that remembers the instant queries it ran (for the baseline replay)."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.sent: list[tuple[str, dt.datetime]] = []

    def instant(self, query: str, at: dt.datetime, check_samples: bool = True) -> list[dict[str, Any]]:
        self.sent.append((query, at))
        return super().instant(query, at, check_samples)


def run(work: Path) -> dict[str, Any]:
    sim, tsdb, truth = ensure_large(work)
    ref = CanaryRef.parse(truth["canary"])
    at = dt.datetime.fromtimestamp(truth["window"]["end"] - 60, dt.UTC)
    with PrometheusServer(tsdb, work / "preflight-prom") as server:
        recording = RecordingSource(server.url)
        run_preflight(ref, DumpSource(sim / "dump"), recording, default_policy(), at)  # warm the caches
        times, bare = [], []
        for _ in range(3):
            recording.sent.clear()
            t0 = time.perf_counter()
            result = run_preflight(ref, DumpSource(sim / "dump"), recording, default_policy(), at)
            times.append(time.perf_counter() - t0)
            plain = PrometheusSource(server.url)
            t0 = time.perf_counter()
            for query, when in recording.sent:
                plain.instant(query, when)
            bare.append(time.perf_counter() - t0)
    return {
        "large.preflight_s": round(min(times), 3),
        "large.preflight_queries": len(recording.sent),
        "large.bare_queries_s": round(min(bare), 3),
        "large.preflight_vs_bare_queries_ratio": round(min(times) / min(bare), 2),
        "large.results": len(result.checks),
    }
