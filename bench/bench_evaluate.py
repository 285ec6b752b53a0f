"""Evaluation of the large scenario's 24 h bundle against a plain pandas pass over the same samples.

The baseline is the least any evaluation must do: read the samples and series tables and take
one per-series difference and sum (a reset-unaware increase).  The figure is the ratio.
"""

from __future__ import annotations

import json
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pandas as pd

from bench.bench_collect import collect_large_24h
from evidence.bundle import read_bundle
from evidence.evaluate import evaluate_bundle


def plain_pass(path: Path) -> float:
    samples = pd.read_parquet(path / "samples.parquet")
    series = pd.read_parquet(path / "series.parquet")
    df = samples.merge(series[["series_id", "metric", "role"]], on="series_id")
    df = df.sort_values(["series_id", "timestamp"])
    df["inc"] = df.groupby("series_id")["value"].diff().clip(lower=0)
    return float(df.groupby(["metric", "role"])["inc"].sum().sum())


def best_of(n: int, fn: Any) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def run(work: Path) -> dict[str, Any]:
    path = collect_large_24h(work, "eval-bundles")
    m = json.loads((path / "manifest.json").read_text())

    def evaluate() -> None:
        evaluate_bundle(read_bundle(path))

    t_eval = best_of(3, evaluate)
    t_plain = best_of(3, lambda: plain_pass(path))
    tracemalloc.start()
    evaluate()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "bundle_24h.samples": m["counts"]["samples"],
        "evaluate_s": round(t_eval, 3),
        "plain_pandas_pass_s": round(t_plain, 3),
        "evaluate_vs_plain_pandas_ratio": round(t_eval / t_plain, 2),
        "evaluate_peak_python_alloc_mb": round(peak / 1e6, 1),
    }
