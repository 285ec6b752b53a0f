"""The issue's memory goal measured at its own scale: ``evidence evaluate`` and ``evidence collect`` of 168 h at 3 M samples a day.

The week's 168 h bundle (collected for real by the window sweep) is widened in cardinality, as
a service behind many Traefik replicas would be: every Traefik series is copied once per replica (its
``instance`` label says which), with the same samples, until the bundle holds the goal's
samples; Flagger's gauges stay as they are.  The samples are written the way collect writes
them (row groups of at most ``ROW_GROUP_ROWS``, each sorted by series and time, time-major
across groups) and the manifest and SHA256SUMS are re-recorded, so the bundle verifies.  Then,
each as a fresh process: ``evidence evaluate -o json`` (the bounded evaluation collect's summary
uses too) against the whole-window evaluation of the same bundle, peak RSS and seconds.

``evidence collect`` itself is measured at that scale too, against a real Prometheus: the week's
OpenMetrics is widened the same way (every Traefik series once per replica, ``instance`` naming
it; 4 GB of text, deleted once promtool has backfilled it into one TSDB of long blocks, which is
kept in ``bench/work`` for the next run: about 3 minutes the first time), then the 168 h window
is collected as a fresh process: peak RSS, seconds, samples and verdict.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from evidence.bundle import sha256_file
from evidence.samplestream import ROW_GROUP_ROWS
from fixtures.prom import PrometheusServer, backfill

GOAL_SAMPLES = 3_000_000 * 7
INSTANCE = 'instance="traefik.traefik:9100"'  # the one Traefik pod of the week scenario
WIDENING = "widen_openmetrics v1"  # bump when the widening changes: the kept TSDB is rebuilt
BLOCK_MS = 2 * 3600 * 1000  # collect's raw chunk: row groups fill with the chunks in time order
PROBE = (
    "import resource, subprocess, sys, time; t0 = time.monotonic(); "
    "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
    "print(time.monotonic() - t0, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode); "
    "sys.stderr.write(r.stdout[-20000:])"
)
WHOLE = (
    "import sys; from evidence.bundle import open_bundle; from evidence.documents import document, dumps; "
    "from evidence.evaluate import evaluate_bundle; from evidence.render.evaluation import evaluation_to_json; "
    "print(dumps(document('Evaluation', evaluation_to_json(evaluate_bundle(open_bundle(sys.argv[1])))), 'json'))"
)


def widen(src: Path, dst: Path, goal: int = GOAL_SAMPLES) -> int:
    """Write ``dst``: ``src`` with its Traefik series copied per replica to about ``goal`` samples; return the samples."""
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    series = pq.read_table(src / "series.parquet")
    samples = pq.read_table(src / "samples.parquet")
    rows = series.to_pylist()
    traefik = [r["series_id"] for r in rows if r["role"] in ("primary", "canary")]
    sid = samples.column("series_id").to_numpy()
    ms = samples.column("timestamp").cast(pa.int64()).to_numpy()
    value = samples.column("value").to_numpy()
    is_traefik = np.isin(sid, traefik)
    others = int((~is_traefik).sum())
    copies = max(1, round((goal - others) / max(1, int(is_traefik.sum()))))
    stride = int(max(r["series_id"] for r in rows)) + 1
    out_rows = [r for r in rows if r["series_id"] not in traefik]
    for k in range(copies):
        for r in rows:
            if r["series_id"] in traefik:
                labels = json.loads(r["labels"])
                labels["instance"] = f"traefik-{k}.traefik:9100"
                out_rows.append(dict(r, series_id=r["series_id"] + (k + 1) * stride, labels=json.dumps(labels, sort_keys=True)))
    pq.write_table(pa.Table.from_pylist(out_rows, schema=series.schema), dst / "series.parquet", compression="zstd")
    # Time blocks of the original, each copied per replica, gathered into row groups sorted by series and time.
    order = np.lexsort((ms, sid, ms // BLOCK_MS))
    sid, ms, value, is_traefik = sid[order], ms[order], value[order], is_traefik[order]
    block = ms // BLOCK_MS
    edges = np.flatnonzero(np.r_[True, block[1:] != block[:-1], True])
    writer = pq.ParquetWriter(dst / "samples.parquet", samples.schema, compression="zstd", compression_level=3)
    total = 0
    waiting: list[tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]]] = []
    held = 0

    def flush() -> None:
        nonlocal waiting, held
        if not waiting:
            return
        s = np.concatenate([w[0] for w in waiting])
        t = np.concatenate([w[1] for w in waiting])
        v = np.concatenate([w[2] for w in waiting])
        o = np.lexsort((t, s))
        table = pa.table(
            {
                "series_id": s[o].astype(np.int32),
                "timestamp": pa.array(t[o], pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
                "value": v[o],
            }
        )
        writer.write_table(table.cast(samples.schema), row_group_size=ROW_GROUP_ROWS)
        waiting, held = [], 0

    for a, b in zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True):
        s, t, v, tr = sid[a:b], ms[a:b], value[a:b], is_traefik[a:b]
        parts = [(s[~tr], t[~tr], v[~tr])] + [(s[tr] + (k + 1) * stride, t[tr], v[tr]) for k in range(copies)]
        for part in parts:
            waiting.append(part)
            held += part[0].size
            total += part[0].size
        if held >= ROW_GROUP_ROWS:
            flush()
    flush()
    writer.close()
    m = json.loads((dst / "manifest.json").read_text())
    for name, n in (("series.parquet", len(out_rows)), ("samples.parquet", total)):
        m["files"][name] = dict(m["files"][name], rows=n, sha256=sha256_file(dst / name), bytes=(dst / name).stat().st_size)
    m["counts"] = dict(m["counts"], series=len(out_rows), samples=total)
    sums = [
        f"{sha256_file(dst / line.split('  ', 1)[1].strip())}  {line.split('  ', 1)[1].strip()}\n"
        for line in (dst / "SHA256SUMS").read_text().splitlines()
        if line.strip()
    ]
    (dst / "SHA256SUMS").write_text("".join(sums), encoding="ascii")
    m["files"]["SHA256SUMS"] = dict(
        m["files"]["SHA256SUMS"], sha256=sha256_file(dst / "SHA256SUMS"), bytes=(dst / "SHA256SUMS").stat().st_size
    )
    zero = "0" * 64
    m["self_sha256"] = zero
    text = json.dumps(m, indent=2, ensure_ascii=False) + "\n"
    text = text.replace(f'"self_sha256": "{zero}"', f'"self_sha256": "{hashlib.sha256(text.encode()).hexdigest()}"')
    (dst / "manifest.json").write_text(text)
    return total


def _probe(cmd: list[str]) -> tuple[float, int, str]:
    res = subprocess.run([sys.executable, "-c", PROBE, *cmd], capture_output=True, text=True, check=True)
    seconds, kib, code = res.stdout.split()
    if code != "0":
        raise RuntimeError(f"{cmd[:4]} exited {code}: {res.stderr[-2000:]}")
    return float(seconds), int(kib), res.stderr


def run_goal_scale(work: Path, bundle_168h: Path) -> dict[str, Any]:
    """Return the ``window_sweep.goal_scale.*`` figures from the week's 168 h bundle."""
    wide = work / "goal-scale-bundle"
    samples = widen(bundle_168h, wide)
    exe = str(Path(sys.executable).with_name("evidence"))
    t_b, kib_b, out = _probe([exe, "evaluate", str(wide), "-o", "json"])
    bounded = json.loads(out)
    t_w, kib_w, out_w = _probe([sys.executable, "-c", WHOLE, str(wide)])
    shutil.rmtree(wide, ignore_errors=True)
    return {
        "window_sweep.goal_scale.samples": samples,
        "window_sweep.goal_scale.evaluate_peak_rss_mb": round(kib_b / 1024),
        "window_sweep.goal_scale.evaluate_s": round(t_b, 2),
        "window_sweep.goal_scale.whole_window_evaluate_peak_rss_mb": round(kib_w / 1024),
        "window_sweep.goal_scale.whole_window_evaluate_s": round(t_w, 2),
        "window_sweep.goal_scale.evaluate_vs_whole_window_rss_ratio": round(kib_b / kib_w, 2),
        "window_sweep.goal_scale.same_evaluation": bounded == json.loads(out_w),
        "window_sweep.goal_scale.verdict": bounded["verdict"],
    }


def widen_openmetrics(src: Path, dst: Path, goal: int = GOAL_SAMPLES) -> int:
    """Write ``dst``: the OpenMetrics ``src`` with each Traefik series once per replica, to about ``goal`` samples; return the copies."""
    traefik = other = 0
    with src.open(encoding="utf-8") as f:
        for line in f:
            if line.startswith("traefik_"):
                traefik += 1
            elif line.strip() and not line.startswith("#"):
                other += 1
    copies = max(1, round((goal - other) / max(1, traefik)))
    with src.open(encoding="utf-8") as f, dst.open("w", encoding="utf-8") as out:
        block: list[str] = []
        key = ""

        def emit() -> None:
            text = "".join(block)
            if INSTANCE not in text:
                raise RuntimeError(f"{src}: a Traefik series without {INSTANCE}: the widening would merge replicas")
            for k in range(copies):
                out.write(text.replace(INSTANCE, f'instance="traefik-{k}.traefik:9100"'))
            block.clear()

        for line in f:
            if line.startswith("traefik_") and line.rsplit("}", 1)[0] == key:
                block.append(line)
                continue
            if block:
                emit()
            if line.startswith("traefik_"):
                key = line.rsplit("}", 1)[0]
                block.append(line)
            else:
                out.write(line)  # HELP/TYPE lines, Flagger's series and the closing # EOF, once
        if block:
            emit()
    return copies


def ensure_goal_tsdb(work: Path, openmetrics: Path) -> Path:
    """Return the widened week's TSDB, backfilling it when missing or older than ``openmetrics``."""
    tsdb = work / "goal-scale-tsdb"
    done = tsdb / ".backfilled"
    # What the TSDB was widened from and to: another goal, replica label or source rebuilds it.
    made_of = f"{WIDENING} goal={GOAL_SAMPLES} {INSTANCE} source={openmetrics.stat().st_size}\n"
    if done.exists() and done.stat().st_mtime >= openmetrics.stat().st_mtime and done.read_text() == made_of:
        return tsdb
    shutil.rmtree(tsdb, ignore_errors=True)
    wide = work / "goal-scale.om"
    try:
        widen_openmetrics(openmetrics, wide)
        # Long blocks: promtool reads the whole input once per block, and 2 h blocks of a week are 84 passes.
        backfill(wide, tsdb, block_hours=192)
    finally:
        wide.unlink(missing_ok=True)
    done.write_text(made_of)
    return tsdb


def run_goal_collect(work: Path, sim: Path, canary: str, start: str, end: str, expected_samples: int) -> dict[str, Any]:
    """Return the ``window_sweep.goal_scale.collect_*`` figures: ``evidence collect`` of the widened week, 168 h."""
    tsdb = ensure_goal_tsdb(work, sim / "openmetrics.txt")
    out = work / "goal-scale-bundles"
    shutil.rmtree(out, ignore_errors=True)
    exe = str(Path(sys.executable).with_name("evidence"))
    with PrometheusServer(tsdb, work / "goal-scale-prom") as server:
        cmd = [exe, "collect", canary, "--from-dump", str(sim / "dump"), "--prometheus", server.url, "--out", str(out)]
        seconds, kib, _ = _probe([*cmd, "--start", start, "--end", end, "--quiet"])
    bundle = next(out.iterdir())
    samples = int(json.loads((bundle / "manifest.json").read_text())["counts"]["samples"])
    verdict = json.loads((bundle / "summary.json").read_text())["verdict"]
    shutil.rmtree(out, ignore_errors=True)
    return {
        "window_sweep.goal_scale.collect_samples": samples,
        "window_sweep.goal_scale.collect_peak_rss_mb": round(kib / 1024),
        "window_sweep.goal_scale.collect_s": round(seconds, 1),
        "window_sweep.goal_scale.collect_same_samples_as_widened_bundle": samples == expected_samples,
        "window_sweep.goal_scale.collect_verdict": verdict,
    }


if __name__ == "__main__":
    print(json.dumps(run_goal_scale(Path(sys.argv[1]), Path(sys.argv[2])), indent=2))
