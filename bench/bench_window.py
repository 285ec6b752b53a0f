"""The window sweep of the collect bench: one rollout collected over 1 h, 24 h and 168 h windows.

The week scenario (``bench/scenarios/week.yaml``: seven days of the canary's own traffic ending
in one healthy promotion) is collected over windows that end together, so every size holds the
same rollout and must give the same verdict.  Per size: ``collect_rollout`` against the plain
fetch of the same queries in the same run, the samples, and the peak RSS of ``evidence collect``
as a fresh process.  Then how time and memory grow with the samples: a two-point fit (fixed
seconds and µs per sample, 1 h → 168 h), time per sample at 168 h against 24 h, the bytes of
peak RSS per sample, and that slope carried to the issue's goal (168 h at 3 M samples a day);
and the goal's own scale measured (``bench/bench_scale.py``): the 168 h bundle widened to 21 M
samples (``evidence evaluate``, the bounded evaluation collect's summary runs, against the
whole-window evaluation), and ``evidence collect`` of the week's OpenMetrics widened the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.bench_scale import run_goal_collect, run_goal_scale
from evidence.collect import CollectOptions, collect_rollout
from evidence.model import CanaryRef
from evidence.sources.dump import DumpSource
from evidence.sources.prometheus import PrometheusSource
from fixtures.prom import PrometheusServer, backfill
from fixtures.scenario import load_scenario
from fixtures.simulator import write_outputs

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "bench" / "scenarios" / "week.yaml"
WINDOWS = {"1h": dt.timedelta(hours=1), "24h": dt.timedelta(hours=24), "168h": dt.timedelta(hours=168)}
GOAL_SAMPLES = 3_000_000 * 7  # the high-cardinality service: 3 M samples a day over 168 h
#: Rounds of (collect, plain fetch) timed side by side per window; the figures are the best of each.
SWEEP_ROUNDS = 3
PROBE = (
    "import resource, subprocess, sys, time; t0 = time.monotonic(); "
    "subprocess.run(sys.argv[1:], check=True, capture_output=True); "
    "print(time.monotonic() - t0, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def ensure_week(work: Path) -> tuple[Path, Path, dict[str, Any]]:
    """Return (simulator output, tsdb, truth) of the week scenario, building them if needed."""
    out, tsdb = work / "week", work / "week-tsdb"
    newest = max(p.stat().st_mtime for p in [SCENARIO, *(ROOT / "fixtures").glob("*.py")])
    if not (out / "truth.json").exists() or (out / "truth.json").stat().st_mtime < newest:
        write_outputs(load_scenario(SCENARIO), out)
        shutil.rmtree(tsdb, ignore_errors=True)
    if not tsdb.exists():
        backfill(out / "openmetrics.txt", tsdb, block_hours=24)  # a week of 2 h blocks takes minutes to backfill
    return out, tsdb, json.loads((out / "truth.json").read_text())


def _cli_peak(exe: str, truth: dict[str, Any], sim: Path, url: str, out: Path, start: dt.datetime, end: dt.datetime) -> int:
    """Return the peak RSS (KiB) of ``evidence collect`` as a fresh process whose parent does nothing else."""
    shutil.rmtree(out, ignore_errors=True)
    cmd = [exe, "collect", truth["canary"], "--from-dump", str(sim / "dump"), "--prometheus", url, "--out", str(out)]
    cmd += ["--start", start.isoformat(), "--end", end.isoformat(), "--quiet"]
    res = subprocess.run([sys.executable, "-c", PROBE, *cmd], check=True, capture_output=True, text=True).stdout.split()
    return int(res[1])


def run_sweep(work: Path, plain_fetch: Callable[..., tuple[float, int]]) -> dict[str, Any]:
    """Return the ``window_sweep.*`` figures."""
    sim, tsdb, truth = ensure_week(work)
    now = dt.datetime.fromtimestamp(truth["snapshot_at"], dt.UTC)
    end = dt.datetime.fromtimestamp(int(truth["window"]["end"]), dt.UTC)
    ref = CanaryRef.parse(truth["canary"])
    exe = str(Path(sys.executable).with_name("evidence"))
    out = work / "sweep-bundles"
    figures: dict[str, Any] = {}
    seen: dict[str, tuple[float, int, int]] = {}
    with PrometheusServer(tsdb, work / "week-prom") as server:
        for label, length in WINDOWS.items():
            options = CollectOptions(out=out, start=end - length, end=end)
            shutil.rmtree(out, ignore_errors=True)
            # The first collect warms Prometheus' page cache for both; then rounds side by side, the best of each.
            path = collect_rollout(ref, DumpSource(sim / "dump"), PrometheusSource(server.url), options, clock=lambda: now)
            manifest = json.loads((path / "manifest.json").read_text())
            times, plains, identity = [], [], []
            for _ in range(SWEEP_ROUNDS):
                shutil.rmtree(out, ignore_errors=True)
                t0 = time.monotonic()
                path = collect_rollout(ref, DumpSource(sim / "dump"), PrometheusSource(server.url), options, clock=lambda: now)
                times.append(time.monotonic() - t0)
                plains.append(plain_fetch(server.url, manifest, options.concurrency)[0])
                identity.append(plain_fetch(server.url, manifest, options.concurrency, compressed=False)[0])
            if label == "168h":
                shutil.rmtree(work / "sweep-168h-bundle", ignore_errors=True)
                shutil.copytree(path, work / "sweep-168h-bundle")
            verdict = json.loads((path / "summary.json").read_text())["verdict"]
            t_plain = min(plains)
            peak_kib = _cli_peak(exe, truth, sim, server.url, out, end - length, end)
            samples = int(manifest["counts"]["samples"])
            t = min(times)
            seen[label] = (t, samples, peak_kib)
            figures[f"window_sweep.{label}.samples"] = samples
            figures[f"window_sweep.{label}.collect_s"] = round(t, 3)
            figures[f"window_sweep.{label}.plain_fetch_s"] = round(t_plain, 3)
            figures[f"window_sweep.{label}.collect_vs_plain_fetch_ratio"] = round(t / t_plain, 2)
            figures[f"window_sweep.{label}.plain_fetch_identity_s"] = round(min(identity), 3)
            figures[f"window_sweep.{label}.collect_vs_plain_identity_fetch_ratio"] = round(t / min(identity), 2)
            figures[f"window_sweep.{label}.peak_rss_mb"] = round(peak_kib / 1024)
            figures[f"window_sweep.{label}.verdict"] = verdict
    shutil.rmtree(out, ignore_errors=True)
    figures.update(_growth(seen))
    figures.update(run_goal_scale(work, work / "sweep-168h-bundle"))
    week = WINDOWS["168h"]
    figures.update(
        run_goal_collect(
            work, sim, truth["canary"], (end - week).isoformat(), end.isoformat(), figures["window_sweep.goal_scale.samples"]
        )
    )
    figures["window_sweep.same_verdict"] = len({figures[f"window_sweep.{w}.verdict"] for w in WINDOWS}) == 1
    return figures


def _growth(seen: dict[str, tuple[float, int, int]]) -> dict[str, Any]:
    (t1, s1, m1), (t24, s24, _), (t168, s168, m168) = seen["1h"], seen["24h"], seen["168h"]
    per_sample = (t168 - t1) / max(1, s168 - s1)
    bytes_per_sample = (m168 - m1) * 1024 / max(1, s168 - s1)
    return {
        "window_sweep.fixed_s": round(t1 - per_sample * s1, 3),
        "window_sweep.per_sample_us": round(per_sample * 1e6, 2),
        "window_sweep.time_per_sample_168h_vs_24h_ratio": round((t168 / s168) / (t24 / s24), 2),
        "window_sweep.rss_bytes_per_sample": round(bytes_per_sample),
        "window_sweep.projected_peak_rss_mb_168h_3m_a_day": round((m1 * 1024 + bytes_per_sample * GOAL_SAMPLES) / 2**20),
    }
