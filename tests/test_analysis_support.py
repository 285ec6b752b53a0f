"""Builders of hand-made bundle tables for the analysis tests (and checks of the builders).

Frames have exactly the columns of ``evidence.bundle.SCHEMAS``.  Times are seconds after
``T0``; Traefik series carry job/instance labels like real scrapes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from evidence.bundle import SCHEMAS

UTC = dt.UTC
T0 = dt.datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
BUCKETS = ("0.1", "0.3", "1.2", "5.0", "+Inf")
TRAEFIK = {"job": "traefik", "instance": "traefik.traefik:9100"}
FLAGGER = {"job": "flagger", "instance": "flagger.flagger-system:8080"}


def at(seconds: float) -> dt.datetime:
    """Return T0 + seconds."""
    return T0 + dt.timedelta(seconds=seconds)


def ms(seconds: float) -> int:
    """Return T0 + seconds as epoch milliseconds."""
    return round(at(seconds).timestamp() * 1000)


def columns(table: str) -> list[str]:
    return [name for name, _, _ in SCHEMAS[table]]


class Frames:
    """Collects series and samples, then returns the two tables."""

    def __init__(self) -> None:
        self.series: list[dict[str, Any]] = []
        self.samples: list[tuple[int, dt.datetime, float]] = []

    def add(
        self,
        metric: str,
        role: str,
        points: Iterable[tuple[float, float]],
        *,
        code: str | None = None,
        le: str | None = None,
        service: str | None = None,
        job: dict[str, str] | None = None,
        labels_: dict[str, str] | None = None,
        **extra: str,
    ) -> int:
        """Add a series and its (seconds, value) samples; return its id (``labels_``: labels named like parameters)."""
        sid = len(self.series)
        if role != "flagger" and service is None:
            service = f"shop-podinfo-{role}-80@kubernetescrd"
        labels: dict[str, str] = dict(job or (FLAGGER if role == "flagger" else TRAEFIK))
        labels.update(extra)
        labels.update(labels_ or {})
        for key, value in (("code", code), ("le", le), ("service", service)):
            if value is not None:
                labels[key] = value
        if role != "flagger":
            labels.setdefault("method", "GET")
            labels.setdefault("protocol", "http")
        self.series.append(
            {
                "series_id": sid,
                "metric": metric,
                "role": role,
                "service": service,
                "code": code,
                "le": le,
                "labels": json.dumps(dict(sorted(labels.items())), separators=(",", ":")),
                "query_id": f"raw:{metric}",
            }
        )
        self.samples.extend((sid, at(t), float(v)) for t, v in points)
        return sid

    def requests(
        self,
        role: str,
        times: Sequence[float],
        ok: Sequence[float],
        errors: Sequence[float] | None = None,
        *,
        buckets: bool = True,
    ) -> None:
        """Add requests_total (codes 200 and 500) and, with ``buckets``, a histogram with everything in the 0.1 s bucket."""
        series_by_code = {"200": ok, "500": errors}
        for code, counts in series_by_code.items():
            if counts is None:
                continue
            pts = list(zip(times, counts, strict=True))
            self.add("traefik_service_requests_total", role, pts, code=code)
            if buckets:
                for le in BUCKETS:
                    self.add("traefik_service_request_duration_seconds_bucket", role, pts, code=code, le=le)

    def histogram(self, role: str, times: Sequence[float], per_bucket: Sequence[Sequence[float]], code: str = "200") -> None:
        """Add one histogram: ``per_bucket[i]`` are the cumulative counts of bucket ``BUCKETS[i]`` at each time."""
        for le, counts in zip(BUCKETS, per_bucket, strict=True):
            self.add("traefik_service_request_duration_seconds_bucket", role, zip(times, counts, strict=True), code=code, le=le)

    def weight(self, points: Iterable[tuple[float, float]], workload: str = "podinfo") -> None:
        """Add Flagger's canary weight gauge."""
        self.add("flagger_canary_weight", "flagger", points, workload=workload, namespace="shop")

    def series_frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.series, columns=columns("series"))
        df["series_id"] = df["series_id"].astype("int32")
        return df

    def samples_frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.samples, columns=["series_id", "timestamp", "value"])
        df["series_id"] = df["series_id"].astype("int32")
        df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True).astype("datetime64[ms, UTC]")
        return df


def event(seconds: float, action: str, message: str, **fields: Any) -> dict[str, Any]:
    """Return one row of the events table (a webhook+log row unless ``sources`` says otherwise)."""
    row: dict[str, Any] = {name: None for name in columns("events")}
    row.update(
        event_id=f"e{seconds}-{action}",
        time=at(seconds),
        type="Warning"
        if action in ("halt", "rollback", "rollback-manual", "failed", "not-ready", "promotion-failed")
        else "Normal",
        reason="Synced",
        message=message,
        sources="webhook,log",
        aggregated=False,
        cross_rollout=False,
        action=action,
    )
    row.update(fields)
    return row


def events_frame(rows: Iterable[dict[str, Any]]) -> pd.DataFrame:
    df = pd.DataFrame(list(rows), columns=columns("events"))
    for col in ("time", "k8s_first", "k8s_last"):
        df[col] = pd.to_datetime(df[col], utc=True).astype("datetime64[ms, UTC]")
    for col in ("k8s_count", "weight", "failed_checks"):
        df[col] = df[col].astype("Int64")
    for col in ("value", "threshold"):
        df[col] = df[col].astype("float64")
    df["aggregated"] = df["aggregated"].fillna(False).astype(bool)
    df["cross_rollout"] = df["cross_rollout"].fillna(False).astype(bool)
    return df


def checks_frame(rows: Iterable[tuple[str, float, float, float | None, float | None]]) -> pd.DataFrame:
    """Return a checks table from (metric, seconds, value, min, max) rows."""
    data = [
        {"metric": m, "query_id": f"check:{m}", "timestamp": at(t), "value": v, "threshold_min": lo, "threshold_max": hi}
        for m, t, v, lo, hi in rows
    ]
    df = pd.DataFrame(data, columns=columns("checks"))
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True).astype("datetime64[ms, UTC]")
    for col in ("value", "threshold_min", "threshold_max"):
        df[col] = df[col].astype("float64")
    return df


# ----- checks of the builders ------------------------------------------------------------------


def test_frames_have_the_bundle_columns() -> None:
    f = Frames()
    f.requests("canary", [15, 30], [1, 2], [0, 1])
    f.weight([(0, 10)])
    assert list(f.series_frame().columns) == columns("series")
    assert list(f.samples_frame().columns) == ["series_id", "timestamp", "value"]
    assert str(f.samples_frame()["timestamp"].dtype) == "datetime64[ms, UTC]"
    assert list(events_frame([event(0, "advance", "Advance podinfo.shop canary weight 10", weight=10)]).columns) == columns(
        "events"
    )
    assert list(checks_frame([("request-success-rate", 60, 100.0, 99.0, None)]).columns) == columns("checks")


def test_traefik_series_carry_job_and_instance() -> None:
    f = Frames()
    f.requests("primary", [15], [1], buckets=False)
    labels = json.loads(f.series_frame()["labels"].iloc[0])
    assert labels["job"] == "traefik" and labels["instance"] == "traefik.traefik:9100"
    assert labels["service"] == "shop-podinfo-primary-80@kubernetescrd"
