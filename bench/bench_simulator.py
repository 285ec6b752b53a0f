"""Simulator + backfill time for the large scenario (24 h, 50 services, six rollouts)."""

from __future__ import annotations

import resource
import shutil
import time
from pathlib import Path
from typing import Any

from fixtures.prom import PrometheusServer, backfill
from fixtures.scenario import load_scenario
from fixtures.simulator import write_outputs

ROOT = Path(__file__).resolve().parent.parent


def run(work: Path) -> dict[str, Any]:
    sc = load_scenario(ROOT / "fixtures" / "scenarios" / "large.yaml")
    out = work / "large"
    t0 = time.monotonic()
    truth = write_outputs(sc, out)
    t_sim = time.monotonic() - t0
    om = out / "openmetrics.txt"
    tsdb = work / "large-tsdb"
    shutil.rmtree(tsdb, ignore_errors=True)
    t1 = time.monotonic()
    backfill(om, tsdb)
    t_fill = time.monotonic() - t1
    t2 = time.monotonic()
    with PrometheusServer(tsdb, work / "large-prom"):
        t_start = time.monotonic() - t2
    samples = int(truth["samples"])
    return {
        "large.samples": samples,
        "large.series": truth["series"],
        "large.openmetrics_mb": round(om.stat().st_size / 1e6, 1),
        "large.simulate_s": round(t_sim, 2),
        "large.backfill_s": round(t_fill, 2),
        "large.prometheus_ready_s": round(t_start, 2),
        "large.simulate_samples_per_s": round(samples / t_sim),
        "large.backfill_samples_per_s": round(samples / t_fill),
        "large.backfill_vs_simulate_ratio": round(t_fill / t_sim, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
