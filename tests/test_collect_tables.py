"""The bundle's small tables built straight from rows as arrow tables (``collect.tables.arrow_rows``)."""

from __future__ import annotations

import datetime as dt
import math

import pyarrow as pa
import pytest

from evidence.bundle import arrow_schema
from evidence.collect.tables import arrow_rows

UTC = dt.UTC


def test_times_are_utc_milliseconds_numbers_null_when_missing_and_flags_false() -> None:
    rows = [
        {
            "event_id": "a",
            "time": dt.datetime(2026, 11, 20, 10, 0, 7, 123999, tzinfo=UTC),  # µs are cut, not rounded
            "k8s_first": dt.datetime(2026, 11, 20, 11, 0, 7, 5000, tzinfo=dt.timezone(dt.timedelta(hours=1))),
            "k8s_last": dt.datetime(2026, 11, 20, 10, 0, 7),  # naive: UTC
            "value": math.nan,
            "weight": None,
            "aggregated": None,
            "message": "Halt advancement <script>",
        },
        {"event_id": "b", "time": "2026-11-20T10:00:08Z", "value": 1.5, "weight": 20, "aggregated": True},
    ]
    t = arrow_rows(rows, "events")
    assert t.schema.equals(arrow_schema("events"))
    got = t.to_pylist()
    assert got[0]["time"] == dt.datetime(2026, 11, 20, 10, 0, 7, 123000, tzinfo=UTC)
    assert got[0]["k8s_first"] == dt.datetime(2026, 11, 20, 10, 0, 7, 5000, tzinfo=UTC)
    assert got[0]["k8s_last"] == dt.datetime(2026, 11, 20, 10, 0, 7, tzinfo=UTC)
    assert got[0]["value"] is None and got[0]["weight"] is None and got[0]["aggregated"] is False
    assert got[0]["cross_rollout"] is False and got[0]["k8s_count"] is None  # keys a row lacks
    assert got[0]["message"] == "Halt advancement <script>"
    assert got[1]["time"] == dt.datetime(2026, 11, 20, 10, 0, 8, tzinfo=UTC) and got[1]["weight"] == 20


def test_an_int_time_is_epoch_milliseconds_exactly() -> None:
    ms = 1_795_219_203_123
    t = arrow_rows([{"metric": "error-rate", "query_id": "q", "timestamp": ms, "value": 1.0}], "checks")
    assert t.column("timestamp").cast(pa.int64()).to_pylist() == [ms]


def test_a_value_of_the_wrong_type_is_refused_not_coerced() -> None:
    with pytest.raises((pa.ArrowTypeError, pa.ArrowInvalid)):
        arrow_rows([{"metric": "m", "value": "1.5"}], "checks")
