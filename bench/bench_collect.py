"""Collection on the large scenario against a plain concurrent HTTP fetch of the same queries.

Figures: wall time of ``collect_rollout`` for the default window (latest rollout ± 10 min) and
for the whole 24 h window, each against the same queries fetched with plain ``requests`` at the
same concurrency in the same run, interleaved, best of ``ROUNDS`` each (the medians beside them;
targets ≤ 1.5× and ≤ 1.3×), and like for like beside them (collect asks this loopback
Prometheus uncompressed, the plain fetch takes requests' gzip): the plain fetch asked
uncompressed and collect asked for gzip; peak memory of ``evidence collect`` as a
process; bundle bytes against the bytes of the raw API responses; ``evidence --help`` time
(target < 0.3 s) against ``python -c pass``; and the window sweep of ``bench/bench_window.py``
(1 h, 24 h and 168 h windows of one rollout of the week scenario).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from bench.bench_window import run_sweep
from evidence.collect import CollectOptions, collect_rollout
from evidence.model import CanaryRef
from evidence.queries import RAW_CHUNK
from evidence.sources.dump import DumpSource
from evidence.sources.prometheus import MAX_POINTS, PrometheusSource, range_chunks
from fixtures.prom import PrometheusServer, backfill
from fixtures.scenario import load_scenario
from fixtures.simulator import write_outputs

ROOT = Path(__file__).resolve().parent.parent
#: Rounds of (collect, plain fetch) timed side by side; the figures are the best of each.
ROUNDS = 5


def ensure_large(work: Path) -> tuple[Path, Path, dict[str, Any]]:
    """Return (simulator output, tsdb, truth) for the large scenario, building them if needed."""
    out = work / "large"
    tsdb = work / "large-tsdb"
    sources = [ROOT / "fixtures" / "scenarios" / "large.yaml", *(ROOT / "fixtures").glob("*.py")]
    newest = max(p.stat().st_mtime for p in sources)
    if not (out / "truth.json").exists() or (out / "truth.json").stat().st_mtime < newest:
        write_outputs(load_scenario(ROOT / "fixtures" / "scenarios" / "large.yaml"), out)
        shutil.rmtree(tsdb, ignore_errors=True)
    if not tsdb.exists():
        backfill(out / "openmetrics.txt", tsdb)
    return out, tsdb, json.loads((out / "truth.json").read_text())


def window_24h(truth: dict[str, Any]) -> tuple[dt.datetime, dt.datetime]:
    """Return the large scenario's whole 24 h window."""
    start = dt.datetime.fromtimestamp(truth["window"]["start"], dt.UTC)
    return start, start + dt.timedelta(hours=24)


def collect_large_24h(work: Path, name: str) -> Path:
    """Collect the large scenario's 24 h window into ``work/name`` (replaced) and return the bundle."""
    sim, tsdb, truth = ensure_large(work)
    now = dt.datetime.fromtimestamp(truth["snapshot_at"], dt.UTC)
    start, end = window_24h(truth)
    shutil.rmtree(work / name, ignore_errors=True)
    with PrometheusServer(tsdb, work / f"{name}-prom") as server:
        return collect_rollout(
            CanaryRef.parse(truth["canary"]),
            DumpSource(sim / "dump"),
            PrometheusSource(server.url),
            CollectOptions(out=work / name, start=start, end=end),
            clock=lambda: now,
        )


def plain_fetch(url: str, manifest: dict[str, Any], concurrency: int, compressed: bool = True) -> tuple[float, int]:
    """Fetch the manifest's queries, chunked the same way, with plain requests; return (seconds, bytes).

    ``compressed``: requests' defaults (``Accept-Encoding: gzip, deflate``), the figure the goals
    were set against; else every answer asked uncompressed, as collect asks a loopback Prometheus.
    """
    tasks = []
    for q in manifest["queries"]:
        start = dt.datetime.fromisoformat(q["start"].replace("Z", "+00:00"))
        end = dt.datetime.fromisoformat(q["end"].replace("Z", "+00:00"))
        if q["kind"] == "raw":
            t = start
            while t < end:
                e = min(end, t + RAW_CHUNK)
                secs = max(1, int((e - t).total_seconds() + 0.999))
                tasks.append(("/api/v1/query", {"query": f"{q['query']}[{secs}s]", "time": f"{e.timestamp():.3f}"}))
                t = e
        else:
            step = q["step_seconds"]
            for s0, e0 in range_chunks(start.timestamp(), end.timestamp(), step, MAX_POINTS):
                tasks.append(
                    ("/api/v1/query_range", {"query": q["query"], "start": f"{s0:.3f}", "end": f"{e0:.3f}", "step": f"{step:g}s"})
                )
    session = requests.Session()
    if not compressed:
        session.headers["Accept-Encoding"] = "identity"

    def one(task: tuple[str, dict[str, str]]) -> int:
        r = session.get(url + task[0], params=task[1], timeout=60)
        r.raise_for_status()
        r.json()
        return len(r.content)

    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        total = sum(pool.map(one, tasks))
    return time.monotonic() - t0, total


def run(work: Path) -> dict[str, Any]:
    sim, tsdb, truth = ensure_large(work)
    now = dt.datetime.fromtimestamp(truth["snapshot_at"], dt.UTC)
    ref = CanaryRef.parse(truth["canary"])
    figures: dict[str, Any] = {}
    with PrometheusServer(tsdb, work / "large-prom") as server:
        prom_url = server.url
        for label, options in (
            ("latest_rollout", CollectOptions(out=work / "bundles")),
            ("window_24h", CollectOptions(out=work / "bundles", start=window_24h(truth)[0], end=window_24h(truth)[1])),
        ):
            shutil.rmtree(work / "bundles", ignore_errors=True)
            # Warm Prometheus' page cache for both contenders alike.
            path = collect_rollout(ref, DumpSource(sim / "dump"), PrometheusSource(prom_url), options, clock=lambda: now)
            manifest = json.loads((path / "manifest.json").read_text())
            _, raw_bytes = plain_fetch(prom_url, manifest, options.concurrency)
            # Side by side: ROUNDS rounds of one collect and one plain fetch, the best of each
            # (a single run on this 2-core machine varies by ±30 %).  Collect asks this loopback
            # Prometheus uncompressed (--prometheus-compression auto); the plain fetch of the goals
            # takes requests' defaults (gzip).  Like for like beside them: the plain fetch asked
            # uncompressed too, and collect asked for gzip.
            collects, plains, plains_identity, collects_gzip = [], [], [], []
            for _ in range(ROUNDS):
                shutil.rmtree(path)
                t0 = time.monotonic()
                path = collect_rollout(ref, DumpSource(sim / "dump"), PrometheusSource(prom_url), options, clock=lambda: now)
                collects.append(time.monotonic() - t0)
                plains.append(plain_fetch(prom_url, manifest, options.concurrency)[0])
                plains_identity.append(plain_fetch(prom_url, manifest, options.concurrency, compressed=False)[0])
                shutil.rmtree(path)
                t0 = time.monotonic()
                gz = PrometheusSource(prom_url, compression="gzip")
                path = collect_rollout(ref, DumpSource(sim / "dump"), gz, options, clock=lambda: now)
                collects_gzip.append(time.monotonic() - t0)
            t_collect, t_plain = min(collects), min(plains)
            figures[f"{label}.collect_s_median"] = round(statistics.median(collects), 3)
            figures[f"{label}.plain_fetch_s_median"] = round(statistics.median(plains), 3)
            figures[f"{label}.plain_fetch_identity_s"] = round(min(plains_identity), 3)
            figures[f"{label}.collect_vs_plain_identity_fetch_ratio"] = round(t_collect / min(plains_identity), 2)
            figures[f"{label}.collect_gzip_s"] = round(min(collects_gzip), 3)
            figures[f"{label}.collect_gzip_vs_plain_fetch_ratio"] = round(min(collects_gzip) / t_plain, 2)
            bundle_bytes = sum(p.stat().st_size for p in path.iterdir())
            figures[f"{label}.samples"] = manifest["counts"]["samples"]
            figures[f"{label}.queries_chunks"] = sum(q["chunks"] for q in manifest["queries"])
            figures[f"{label}.collect_s"] = round(t_collect, 3)
            figures[f"{label}.plain_fetch_s"] = round(t_plain, 3)
            figures[f"{label}.collect_vs_plain_fetch_ratio"] = round(t_collect / t_plain, 2)
            figures[f"{label}.bundle_bytes"] = bundle_bytes
            figures[f"{label}.raw_response_bytes"] = raw_bytes
            figures[f"{label}.bundle_vs_raw_bytes_ratio"] = round(bundle_bytes / raw_bytes, 3)
        # Peak memory of the command as a whole (a fresh process), 24 h window.
        shutil.rmtree(work / "bundles", ignore_errors=True)
        exe = str(Path(sys.executable).with_name("evidence"))
        cmd = [
            exe,
            "collect",
            truth["canary"],
            "--from-dump",
            str(sim / "dump"),
            "--prometheus",
            prom_url,
            "--out",
            str(work / "bundles"),
            "--start",
            dt.datetime.fromtimestamp(truth["window"]["start"], dt.UTC).isoformat(),
            "--end",
            dt.datetime.fromtimestamp(truth["window"]["start"] + 86400, dt.UTC).isoformat(),
            "--quiet",
        ]
        # A fresh parent whose only child is the command, so the peak is the command's own.
        probe = (
            "import resource, subprocess, sys, time; t0 = time.monotonic(); "
            "subprocess.run(sys.argv[1:], check=True, capture_output=True); "
            "print(time.monotonic() - t0, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
        )
        out = subprocess.run([sys.executable, "-c", probe, *cmd], check=True, capture_output=True, text=True).stdout.split()
        figures["cli_24h.wall_s"] = round(float(out[0]), 2)
        figures["cli_24h.peak_rss_mb"] = round(int(out[1]) / 1024)
    helps, passes = [], []
    for _ in range(5):
        t0 = time.monotonic()
        subprocess.run([exe, "--help"], check=True, capture_output=True)
        helps.append(time.monotonic() - t0)
        t0 = time.monotonic()
        subprocess.run([sys.executable, "-c", "pass"], check=True, capture_output=True)
        passes.append(time.monotonic() - t0)
    figures["help_s"] = round(min(helps), 3)
    figures["python_startup_s"] = round(min(passes), 3)
    figures["help_vs_python_startup_ratio"] = round(min(helps) / min(passes), 2)
    figures.update(run_sweep(work, plain_fetch))
    return figures
