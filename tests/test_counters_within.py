"""A bounded evaluation: series prepared a batch at a time, only the rollout's span kept, the same answers.

``prepare_counters_within`` must answer every question the evaluation asks inside its range
exactly as the whole-window table does (resets, re-creations, holes and baselines included),
whatever the batch size, and record any question outside its range, so the evaluation can go
back to the whole window rather than answer it approximately.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evidence.analysis.counters import CounterTable, SampleArrays, prepare_counters, prepare_counters_within
from evidence.bundle import read_bundle
from evidence.evaluate import evaluate_bundle
from evidence.render.evaluation import evaluation_to_json
from tests.conftest import SMALL_SCENARIOS

T0 = 1_795_000_000_000
STEP = 15_000


def _series(n: int) -> pd.DataFrame:
    services = ["shop-podinfo-primary-80@kubernetescrd", "shop-podinfo-canary-80@kubernetescrd"]
    rows = []
    for i in range(n):
        instance = f"traefik-{i % 3}:9100"
        svc = services[i % 2]
        labels = {"code": str(200 + i), "instance": instance, "job": "traefik", "service": svc}
        rows.append(
            {
                "series_id": 1000 + 7 * i,  # not positions: the ids are looked up
                "metric": "traefik_service_requests_total",
                "role": "primary" if i % 2 == 0 else "canary",
                "service": svc,
                "code": str(200 + i),
                "le": None,
                "labels": json.dumps(labels),
                "query_id": "raw:traefik_service_requests_total",
            }
        )
    return pd.DataFrame(rows)


def _samples(series: pd.DataFrame, n_times: int, seed: int) -> SampleArrays:
    """Counters with resets, holes (some long enough to be re-creations), late starts and early ends."""
    rng = np.random.default_rng(seed)
    sid, ms, value = [], [], []
    for i, s in enumerate(series["series_id"].tolist()):
        t = T0 + STEP * np.arange(n_times, dtype=np.int64)
        keep = np.ones(n_times, dtype=bool)
        if i % 4 == 1:
            keep[: n_times // 3] = False  # appears late
        if i % 5 == 2:
            keep[-n_times // 4 :] = False  # ends early
        if i % 3 == 0:
            a = int(rng.integers(0, n_times - 40))
            keep[a : a + int(rng.integers(3, 30))] = False  # a hole
        v = np.cumsum(rng.integers(0, 5, n_times)).astype(np.float64)
        for r in rng.integers(1, n_times, 2):
            v[r:] -= v[r - 1]  # a reset to about 0
        v = np.maximum(v, 0)
        sid.append(np.full(keep.sum(), s, dtype=np.int32))
        ms.append(t[keep])
        value.append(v[keep])
    order = np.lexsort((np.concatenate(ms), np.concatenate(sid)))
    return SampleArrays(np.concatenate(sid)[order], np.concatenate(ms)[order], np.concatenate(value)[order])


def _within(series: pd.DataFrame, samples: SampleArrays, lo: int, hi: int, batch: int) -> CounterTable:
    counts = dict(zip(*np.unique(samples.series_id, return_counts=True), strict=True))
    table = prepare_counters_within(
        series, lambda ids: samples.subset(ids), {int(k): int(v) for k, v in counts.items()}, lo, hi, (), batch_samples=batch
    )
    assert table is not None
    return table


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("batch", [1, 700, 10**9])
def test_answers_inside_the_range_are_the_whole_windows(seed: int, batch: int) -> None:
    series = _series(12)
    samples = _samples(series, 600, seed)
    full = prepare_counters(series, samples)
    lo, hi = T0 + STEP * 250, T0 + STEP * 420
    cut = _within(series, samples, lo, hi, batch)
    assert cut.times.size < full.times.size / 2  # the cut keeps the range, not the window
    pos = np.arange(len(series))
    rng = np.random.default_rng(seed)
    times = np.sort(rng.integers(lo, hi + 1, 200))
    times = np.r_[lo, times, hi]
    for w in (STEP, 5 * 60_000, 20 * 60_000):
        at = times[times - w >= lo]
        assert np.array_equal(full.increase(pos, at, w), cut.increase(pos, at, w))
    assert np.array_equal(full.values_at(pos, times), cut.values_at(pos, times))
    assert np.array_equal(full.values_at(pos, times, raw=True), cut.values_at(pos, times, raw=True), equal_nan=True)
    assert np.array_equal(full.sample_time_at(pos, times), cut.sample_time_at(pos, times))
    assert np.array_equal(full.sample_times(pos, lo, hi), cut.sample_times(pos, lo, hi))
    for a, b in ((lo, hi), (lo + 30 * STEP, lo + 90 * STEP)):
        assert full.restarted_between(pos, a, b).tolist() == cut.restarted_between(pos, a, b).tolist()
    for p in pos.tolist():  # the whole history before a time (blast radius' baseline question)
        if full.first[p] >= 0:
            first_t = int(full.times[full.first[p]])
            assert (
                full.restarted_between(np.array([p]), first_t + 1, lo + STEP).tolist()
                == cut.restarted_between(np.array([p]), int(cut.times[cut.first[p]]) + 1, lo + STEP).tolist()
            )
            assert int(cut.times[cut.first[p]]) == first_t
    for col in ("appeared", "restarts", "samples", "group"):
        assert full.series[col].tolist() == cut.series[col].tolist(), col
    assert np.array_equal(full.baseline, cut.baseline)
    assert full.labels == cut.labels
    assert cut.strayed == []


def test_a_question_outside_the_range_is_recorded() -> None:
    series = _series(6)
    samples = _samples(series, 300, 4)
    lo, hi = T0 + STEP * 100, T0 + STEP * 200
    cut = _within(series, samples, lo, hi, 10**9)
    pos = np.arange(len(series))
    cut.values_at(pos, np.array([lo, hi]))
    assert cut.strayed == []
    cut.values_at(pos, np.array([lo - 1]))
    cut.sample_times(pos)
    cut.samples_of(pos)  # not kept whole
    cut.restarted_between(pos, lo - 50 * STEP, hi)
    assert cut.strayed == ["values_at", "sample_times", "samples_of", "restarted_between"]


@pytest.mark.parametrize("name", SMALL_SCENARIOS)
@pytest.mark.parametrize("batch", [50, 2_000_000])
def test_a_bounded_evaluation_is_the_whole_windows(name: str, batch: int, bundle_for: Callable[[str], Path]) -> None:
    b = bundle_for(name)
    full = evaluation_to_json(evaluate_bundle(read_bundle(b)), include_series=True)
    bounded = evaluate_bundle(read_bundle(b), bounded=True, batch_samples=batch)
    # A bounded evaluation draws no chart; a bundle that fits one batch is evaluated whole.
    assert (bounded.counters is None) == (read_bundle(b).sample_rows() > batch)
    assert evaluation_to_json(bounded, include_series=True) == full
