"""The abort criteria, evaluated at every evaluation time from the bundle's raw samples.

Each criterion gives, at each time, a value or "no data" with a reason.  A time with no data
is never a breach.  The evaluation times are chosen by the caller (``traffic.canary_active``
picks the Traefik scrape times while the canary takes traffic; the replay uses Flagger's
analysis ticks).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from evidence.analysis.counters import CounterTable, histogram_quantile, ms_to_datetimes
from evidence.analysis.traffic import request_positions
from evidence.policy import Criterion, Policy

if TYPE_CHECKING:
    from evidence.analysis.counters import BoolArray, FloatArray, IntArray

BREACH, PASS, NO_DATA = "breach", "pass", "no_data"


@dataclass(frozen=True)
class Span:
    """Consecutive evaluation times in the same state, ``start`` and ``end`` inclusive."""

    start: dt.datetime
    end: dt.datetime
    points: int
    reason: str | None = None

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass(frozen=True, eq=False)
class CriterionResult:
    """One criterion over the rollout.

    ``status`` is ``breached`` (at least one time breached), ``pass`` (evaluated at least once,
    never breached) or ``no_data`` (never evaluated: ``no_data_reason`` says why).
    ``points`` holds every evaluation time: ``time``, ``value`` (NaN without data), ``state``
    (breach, pass, no_data), ``reason`` and ``canary_requests`` in the window.
    """

    name: str
    kind: str
    description: str
    threshold: float
    comparator: str
    window_seconds: float
    min_requests: int
    unit: str
    status: str
    breached: bool
    first_breach_at: dt.datetime | None
    worst_value: float | None
    worst_at: dt.datetime | None
    last_value: float | None
    evaluated: int
    no_data_points: int
    breached_spans: tuple[Span, ...]
    no_data_spans: tuple[Span, ...]
    no_data_reason: str | None
    points: pd.DataFrame = field(repr=False)

    @property
    def breached_seconds(self) -> float:
        return sum(s.seconds for s in self.breached_spans)


def duration_text(seconds: float) -> str:
    """Return a duration as 5m, 1m30s, 45s or 2h."""
    s = round(seconds)
    if s <= 0:
        return f"{seconds:g}s"
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return (f"{h}h" if h else "") + (f"{m}m" if m else "") + (f"{sec}s" if sec else "")


def criterion_values(table: CounterTable, c: Criterion, times: IntArray) -> tuple[FloatArray, list[str | None], FloatArray]:
    """Return a criterion's value at each time (NaN: no data), the no-data reasons and the canary's requests."""
    t = np.asarray(times, dtype=np.int64)
    w = round(c.window_seconds * 1000)
    n = t.size
    win = duration_text(c.window_seconds)
    canary = request_positions(table, "canary")
    c_all = table.total_increase(canary, t, w) if canary.size else np.zeros(n)
    reasons = np.full(n, None, dtype=object)

    def no_data(mask: BoolArray, reason: str) -> None:
        reasons[mask & (reasons == None)] = reason  # noqa: E711 - elementwise on an object array

    if c.min_requests > 0:
        no_data(c_all < c.min_requests, f"fewer than {c.min_requests} canary requests in the {win} window")

    with np.errstate(divide="ignore", invalid="ignore"):
        if c.kind in ("error_rate_ratio", "success_rate"):
            c_err = table.total_increase(request_positions(table, "canary", errors=True), t, w)
            no_data(c_all <= 0, f"the canary served no requests in the {win} window")
            c_share = np.where(c_all > 0, c_err / np.where(c_all > 0, c_all, 1.0), np.nan)
            if c.kind == "success_rate":
                value = 100.0 * (1.0 - c_share)
            else:
                primary = request_positions(table, "primary")
                p_all = table.total_increase(primary, t, w) if primary.size else np.zeros(n)
                p_err = table.total_increase(request_positions(table, "primary", errors=True), t, w)
                no_data(p_all <= 0, f"the primary served no requests in the {win} window")
                p_share = np.where(p_all > 0, p_err / np.where(p_all > 0, p_all, 1.0), np.nan)
                value = c_share / np.maximum(p_share, c.primary_floor)
        elif c.kind == "p95_latency_increase":
            bounds, c_counts = table.bucket_increases(table.select(table.router.duration_buckets, role="canary"), t, w)
            qc = histogram_quantile(c.quantile, bounds, c_counts) if c_counts.shape[0] else np.full(n, np.nan)
            bounds_p, p_counts = table.bucket_increases(table.select(table.router.duration_buckets, role="primary"), t, w)
            qp = histogram_quantile(c.quantile, bounds_p, p_counts) if p_counts.shape[0] else np.full(n, np.nan)
            no_data(np.isnan(qc), f"no canary latency histogram counts in the {win} window")
            no_data(np.isnan(qp), f"no primary latency histogram counts in the {win} window")
            no_data(qp <= 0, "the primary's p95 is 0")
            value = qc / np.where(qp > 0, qp, np.nan) - 1.0
        elif c.kind == "ratio":
            assert c.numerator is not None and c.denominator is not None
            num = table.total_increase(table.select(c.numerator.metric, c.numerator.role, dict(c.numerator.match)), t, w)
            den = table.total_increase(table.select(c.denominator.metric, c.denominator.role, dict(c.denominator.match)), t, w)
            no_data(den <= 0, f"{c.denominator.describe()} did not increase in the {win} window")
            value = num / np.where(den > 0, den, np.nan) * c.scale
        elif c.kind == "gauge":
            assert c.series is not None
            value = _gauge(table, c, t, w)
            no_data(np.isnan(value), f"no sample of {c.series.describe()} in the {win} window")
        else:  # pragma: no cover - the policy loader only builds known kinds
            raise ValueError(f"unknown criterion kind {c.kind!r}")
    value = np.asarray(value, dtype=np.float64)
    no_data(~np.isfinite(value), "the value is undefined")
    value = np.where(reasons == None, value, np.nan)  # noqa: E711
    return value, list(reasons), c_all


def _gauge(table: CounterTable, c: Criterion, t: IntArray, w: int) -> FloatArray:
    assert c.series is not None
    pos = table.select(c.series.metric, c.series.role, dict(c.series.match))
    if pos.size == 0:
        return np.full(t.size, np.nan)
    vals = table.values_at(pos, t, raw=True)
    fresh = table.sample_time_at(pos, t) > (t - w)[None, :]
    ok = fresh & ~np.isnan(vals)
    any_ok = ok.any(axis=0)
    if c.aggregate == "min":
        out = np.where(ok, vals, np.inf).min(axis=0)
    elif c.aggregate == "max":
        out = np.where(ok, vals, -np.inf).max(axis=0)
    else:
        total = np.where(ok, vals, 0.0).sum(axis=0)
        count = ok.sum(axis=0)
        out = total if c.aggregate == "sum" else total / np.maximum(count, 1)
    return np.where(any_ok, out, np.nan)


def _compare(values: FloatArray, comparator: str, threshold: float) -> BoolArray:
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        if comparator == ">=":
            out = v >= threshold
        elif comparator == ">":
            out = v > threshold
        elif comparator == "<=":
            out = v <= threshold
        else:
            out = v < threshold
    return np.asarray(out & ~np.isnan(v), dtype=bool)


def breaches(c: Criterion, values: FloatArray) -> BoolArray:
    """Return which values breach the criterion (NaN never does)."""
    return _compare(values, c.comparator, c.threshold)


def _spans(times: pd.DatetimeIndex, mask: BoolArray, reasons: Sequence[str | None] | None = None) -> tuple[Span, ...]:
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return ()
    out: list[Span] = []
    start = prev = int(idx[0])
    for i in (int(x) for x in idx[1:]):
        same_reason = reasons is None or reasons[i] == reasons[prev]
        if i == prev + 1 and same_reason:
            prev = i
            continue
        out.append(
            Span(times[start].to_pydatetime(), times[prev].to_pydatetime(), prev - start + 1, reasons[start] if reasons else None)
        )
        start = prev = i
    out.append(
        Span(times[start].to_pydatetime(), times[prev].to_pydatetime(), prev - start + 1, reasons[start] if reasons else None)
    )
    return tuple(out)


def summarise(
    c: Criterion,
    times: IntArray,
    values: FloatArray,
    reasons: Sequence[str | None],
    requests: FloatArray,
    empty_reason: str,
    when: pd.DatetimeIndex | None = None,
) -> CriterionResult:
    """Return a criterion's result from its values at each evaluation time (``when``: the times as datetimes, if made)."""
    when = ms_to_datetimes(times) if when is None else when
    has = ~np.isnan(values)
    hit = breaches(c, values)
    state = np.where(hit, BREACH, np.where(has, PASS, NO_DATA))
    points = pd.DataFrame(
        {
            "time": when,
            "value": values,
            "state": state,
            "reason": pd.array(list(reasons), dtype="string"),
            "canary_requests": requests,
        }
    )
    first_breach = when[int(np.argmax(hit))].to_pydatetime() if hit.any() else None
    worst = worst_at = last = None
    if has.any():
        vals = np.where(has, values, np.nan)
        i = int(np.nanargmax(vals)) if c.comparator in (">=", ">") else int(np.nanargmin(vals))
        worst, worst_at = float(values[i]), when[i].to_pydatetime()
        last = float(values[np.flatnonzero(has)[-1]])
    evaluated = int(has.sum())
    nd_reason = None
    if evaluated == 0:
        nd = [r for r in reasons if r]
        nd_reason = max(set(nd), key=nd.count) if nd else empty_reason
    status = "breached" if hit.any() else ("pass" if evaluated else "no_data")
    return CriterionResult(
        name=c.name,
        kind=c.kind,
        description=c.description,
        threshold=c.threshold,
        comparator=c.comparator,
        window_seconds=c.window_seconds,
        min_requests=c.min_requests,
        unit=c.unit,
        status=status,
        breached=bool(hit.any()),
        first_breach_at=first_breach,
        worst_value=worst,
        worst_at=worst_at,
        last_value=last,
        evaluated=evaluated,
        no_data_points=int((~has).sum()),
        breached_spans=_spans(when, hit),
        no_data_spans=_spans(when, ~has, list(reasons)),
        no_data_reason=nd_reason,
        points=points,
    )


def evaluate_criteria(
    table: CounterTable, policy: Policy, times: IntArray, empty_reason: str = "no evaluation time: the canary took no traffic"
) -> tuple[CriterionResult, ...]:
    """Evaluate every criterion of the policy at each time (epoch ms)."""
    t = np.asarray(times, dtype=np.int64)
    when = ms_to_datetimes(t)  # the same evaluation times for every criterion
    out = []
    for c in policy.criteria:
        values, reasons, requests = criterion_values(table, c, t)
        out.append(summarise(c, t, values, reasons, requests, empty_reason, when))
    return tuple(out)
