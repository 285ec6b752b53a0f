"""The counter arithmetic fed from arrays read row group by row group: the same tables, a bounded memory.

``Bundle.sample_arrays`` reads the samples without a pandas frame and ``prepare_counters``
keeps no sample-sized pandas object.  Here: the same CounterTable from the arrays as from the
frame on real bundles, in any row order; every row group read; and the traced memory of the
preparation per sample (tracemalloc counts numpy's allocations exactly, so this is a count,
not a timing).
"""

from __future__ import annotations

import json
import shutil
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from evidence.analysis.counters import CounterTable, SampleArrays, prepare_counters
from evidence.bundle import read_bundle
from evidence.errors import BundleError

ARRAYS = ("keys", "times", "raw", "adjusted", "first", "last", "baseline", "reset")


def same_table(a: CounterTable, b: CounterTable) -> None:
    for name in ARRAYS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for col in ("appeared", "restarts", "samples"):
        assert a.series[col].tolist() == b.series[col].tolist(), col


@pytest.mark.parametrize("scenario", ["rollback-error-rate", "inf-and-query-errors", "shapes/le-both-forms"])
def test_arrays_and_frames_give_the_same_counters_in_any_row_order(scenario: str, bundle_for: Callable[[str], Path]) -> None:
    b = read_bundle(bundle_for(scenario))
    series, frame = b.table("series"), b.table("samples")
    from_frame = prepare_counters(series, frame)
    same_table(from_frame, prepare_counters(series, SampleArrays(*b.sample_arrays())))
    rng = np.random.default_rng(7)
    shuffled = frame.iloc[rng.permutation(len(frame))]
    same_table(from_frame, prepare_counters(series, SampleArrays.from_frame(shuffled)))  # the sorting path
    doubled = pd.concat([frame, frame.iloc[: len(frame) // 3]])
    same_table(from_frame, prepare_counters(series, SampleArrays.from_frame(doubled)))  # one sample per series and time


def test_every_row_group_is_read(bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    b = tmp_path / "b"
    shutil.copytree(bundle_for("rollback-error-rate"), b)
    table = pq.read_table(b / "samples.parquet")
    pq.write_table(table, b / "samples.parquet", row_group_size=97)
    assert pq.ParquetFile(b / "samples.parquet").metadata.num_row_groups > 3
    sid, ms, value = read_bundle(b).sample_arrays()
    assert sid.tolist() == table.column("series_id").to_pylist()
    assert value.tolist() == table.column("value").to_pylist()
    assert ms.tolist() == [int(t.timestamp() * 1000) for t in table.column("timestamp").to_pylist()]


def synthetic(n_series: int = 300, n_times: int = 1000) -> tuple[pd.DataFrame, SampleArrays]:
    """Counters of ``n_series`` series scraped ``n_times`` times, time-major (as several row groups leave them)."""
    series = pd.DataFrame(
        {
            "series_id": np.arange(n_series, dtype=np.int32),
            "metric": ["traefik_service_requests_total"] * n_series,
            "role": ["primary"] * n_series,
            "service": ["shop-podinfo-primary-80@kubernetescrd"] * n_series,
            "code": [str(200 + i) for i in range(n_series)],
            "le": [None] * n_series,
            "labels": [json.dumps({"code": str(200 + i), "instance": "a:9100", "job": "traefik"}) for i in range(n_series)],
            "query_id": ["raw:traefik_service_requests_total"] * n_series,
        }
    )
    sid = np.tile(np.arange(n_series, dtype=np.int32), n_times)
    ms = np.repeat(1_795_000_000_000 + 15_000 * np.arange(n_times, dtype=np.int64), n_series)
    value = np.repeat(np.arange(n_times, dtype=np.float64) * 3, n_series)
    value[::7] = 0.0  # resets
    return series, SampleArrays(sid, ms, value)


@pytest.mark.parametrize(("order", "bound"), [("series-major", 50), ("time-major", 70)])
def test_preparing_counters_takes_a_bounded_memory_per_sample(order: str, bound: int) -> None:
    series, arrays = synthetic()
    if order == "series-major":  # as collect writes a window that fits one row group: no sort
        o = np.lexsort((arrays.ms, arrays.series_id))
        arrays = SampleArrays(arrays.series_id[o], arrays.ms[o], arrays.value[o])
    n = arrays.ms.size
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        table = prepare_counters(series, arrays)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Measured: 38 (series-major) and 54 (time-major) bytes a sample at the peak; the frame-based
    # preparation it replaced took about 200.
    assert (peak - base) / n <= bound, f"{(peak - base) / n:.0f} bytes a sample at the peak"
    assert (kept - base) / n <= 40
    assert int(table.reset.sum()) > 0 and int(table.series["samples"].sum()) == n


@pytest.mark.parametrize("group_rows", [97, 100_000])
def test_reading_some_series_gives_their_samples_in_table_order(
    bundle_for: Callable[[str], Path], tmp_path: Path, group_rows: int
) -> None:
    b = tmp_path / "b"
    shutil.copytree(bundle_for("rollback-error-rate"), b)
    table = pq.read_table(b / "samples.parquet").sort_by("series_id")  # sorted: most row groups hold few ids
    pq.write_table(table, b / "samples.parquet", row_group_size=group_rows)
    bundle = read_bundle(b)
    full = SampleArrays(*bundle.sample_arrays())
    ids = np.unique(full.series_id)
    for wanted in (ids[:1], ids[-2:], ids[::5], np.array([10**6], dtype=np.int64), ids[:0]):
        got = SampleArrays(*bundle.sample_arrays(series_ids=wanted))
        want = full.subset(wanted)
        assert got.series_id.tolist() == want.series_id.tolist()
        assert got.ms.tolist() == want.ms.tolist() and got.value.tolist() == want.value.tolist()
    # The cached full read is not replaced by a subset.
    assert SampleArrays(*bundle.sample_arrays()).series_id.size == table.num_rows


def test_a_row_group_the_ids_cannot_be_in_is_not_read(bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    b = tmp_path / "b"
    shutil.copytree(bundle_for("rollback-error-rate"), b)
    table = pq.read_table(b / "samples.parquet").sort_by("series_id")
    pq.write_table(table, b / "samples.parquet", row_group_size=97)
    meta = pq.ParquetFile(b / "samples.parquet").metadata
    first = int(table.column("series_id")[0].as_py())
    # Damage the last row group's pages: reading it fails, so only skipping it can succeed.
    last = meta.row_group(meta.num_row_groups - 1)
    assert int(last.column(0).statistics.min) > first
    offset = min(last.column(j).data_page_offset for j in range(last.num_columns))
    data = bytearray((b / "samples.parquet").read_bytes())
    data[offset : offset + 64] = b"\xff" * 64
    (b / "samples.parquet").write_bytes(bytes(data))
    got = SampleArrays(*read_bundle(b).sample_arrays(series_ids=[first]))
    assert got.series_id.size > 0 and set(got.series_id.tolist()) == {first}
    with pytest.raises(BundleError):
        read_bundle(b).sample_arrays()
