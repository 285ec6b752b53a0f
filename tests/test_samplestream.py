"""The samples table streamed chunk by chunk: deduplicated at chunk boundaries, one row group a chunk."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from evidence.bundle import schema_problem
from evidence.canary import CanarySpec
from evidence.model import GapKind, ScrapeLabels
from evidence.queries import Query, gaps_in_times
from evidence.routers import TRAEFIK
from evidence.samplestream import SampleStream

T0 = dt.datetime(2026, 11, 20, 10, tzinfo=dt.UTC)
PRIMARY = "shop-podinfo-primary-9898@kubernetescrd"
CANARY = "shop-podinfo-canary-9898@kubernetescrd"


def _spec() -> CanarySpec:
    return CanarySpec.from_object(
        {"metadata": {"name": "podinfo", "namespace": "shop"}, "spec": {"targetRef": {"name": "podinfo"}}}
    )


def _series(service: str, code: str, points: list[tuple[float, float]]) -> dict[str, Any]:
    labels = {"__name__": "traefik_service_requests_total", "service": service, "code": code}
    return {"metric": labels, "values": [[t, str(v)] for t, v in points]}


def _query(qid: str) -> Query:
    return Query(qid, "raw samples", "traefik_service_requests_total{}", "raw", T0, T0 + dt.timedelta(hours=4))


@pytest.mark.parametrize(("group_rows", "groups"), [(3, 2), (1000, 1)])
def test_chunks_are_deduplicated_at_their_boundary_and_written_as_row_groups(
    tmp_path: Path, group_rows: int, groups: int
) -> None:
    stream = SampleStream(tmp_path, _spec(), ScrapeLabels("service", "namespace", "default"), row_group_rows=group_rows)
    q = _query("raw:traefik")
    base = T0.timestamp()
    # Two chunks that share their boundary sample (closed ranges); the canary series appears in the second only.
    stream.add(q, [_series(PRIMARY, "200", [(base, 1), (base + 30, 2), (base + 60, 3)])])
    stream.add(
        q,
        [
            _series(CANARY, "200", [(base + 60, 7), (base + 90, 8)]),
            _series(PRIMARY, "200", [(base + 60, 3), (base + 90, 4), (base + 120.0004, 5)]),
        ],
    )
    path = stream.close()
    stream.record_counts([q])
    table = pq.read_table(path)
    assert schema_problem("samples", table.schema) is None
    assert pq.ParquetFile(path).num_row_groups == groups
    rows = list(zip(table["series_id"].to_pylist(), table["timestamp"].to_pylist(), table["value"].to_pylist(), strict=True))
    ms = [(sid, int(ts.timestamp() * 1000) - int(base * 1000), v) for sid, ts, v in rows]
    # Series ids in order of first sight; inside a row group sorted by series; the shared sample kept once.
    one_group = [
        (0, 0, 1.0),
        (0, 30000, 2.0),
        (0, 60000, 3.0),
        (0, 90000, 4.0),
        (0, 120000, 5.0),
        (1, 60000, 7.0),
        (1, 90000, 8.0),
    ]
    # With three rows a group, one group a chunk; inside each the primary's samples come first either way.
    assert ms == one_group
    assert [r["role"] for r in stream.series_rows] == ["primary", "canary"]
    assert (stream.rows, q.series, q.samples) == (7, 2, 7)
    assert [t - int(base * 1000) for t in stream.primary_times()] == [0, 30000, 60000, 90000, 120000]
    stream.discard()
    assert list(tmp_path.iterdir()) == []


def test_an_empty_stream_is_an_empty_table_and_discard_leaves_nothing(tmp_path: Path) -> None:
    stream = SampleStream(tmp_path / "out", _spec(), ScrapeLabels("service", "namespace", "default"))
    stream.add(
        _query("raw:traefik"), [{"metric": {"__name__": "traefik_service_requests_total", "service": PRIMARY}, "values": []}]
    )
    table = pq.read_table(stream.close())
    assert table.num_rows == 0 and schema_problem("samples", table.schema) is None
    assert len(stream.series_rows) == 1  # a series with no sample in the window is still listed
    stream.discard()
    assert list((tmp_path / "out").iterdir()) == []


def test_a_scrape_gap_is_found_in_the_primary_times() -> None:
    times = [0, 30000, 60000, 90000, 400000, 430000]
    (gap,) = gaps_in_times(times, TRAEFIK)
    assert gap.kind == GapKind.SCRAPE_GAP and gap.detail is not None and "310s" in gap.detail
    assert gaps_in_times(times[:2], TRAEFIK) == []


@pytest.mark.parametrize("fold", [1, 4, 1 << 18])
def test_the_primary_times_are_folded_to_distinct_times_without_changing_them(tmp_path: Path, fold: int) -> None:
    # Many primary series share each scrape time; folding keeps the distinct times only, so what
    # is held is bounded by the scrapes. The gaps found must be the same whatever the fold.
    stream = SampleStream(tmp_path, _spec(), ScrapeLabels("service", "namespace", "default"), primary_fold=fold)
    q = _query("raw:traefik")
    base = T0.timestamp()
    scrapes = [base + 30 * i for i in range(12) if i not in (5, 6, 7)]  # a 120 s hole
    for lo in range(0, len(scrapes), 3):  # four chunks, each sharing its first scrape with the last chunk's end
        chunk = scrapes[max(0, lo - 1) : lo + 3]
        stream.add(q, [_series(PRIMARY, code, [(t, float(i)) for i, t in enumerate(chunk)]) for code in ("200", "500", "503")])
    expected = [round(t * 1000) for t in scrapes]
    assert stream.primary_times() == expected
    if fold <= 4:
        assert len(stream._primary_times) <= 2  # folded: the held arrays are the distinct times and the last few
    assert gaps_in_times(stream.primary_times(), TRAEFIK) == gaps_in_times(expected, TRAEFIK)
    stream.close()
    stream.discard()
