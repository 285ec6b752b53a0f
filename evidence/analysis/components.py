"""What a criterion is made of, over time: the canary's and the primary's series and the threshold.

The criteria give one number per evaluation time (a ratio, an increase); a person judging a
chart wants the parts: the canary's 5xx share next to the primary's, both p95s, the success
rate, and where the threshold lies in those units.  Pure functions over a ``CounterTable``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from evidence.analysis.counters import CounterTable, histogram_quantile
from evidence.analysis.traffic import request_positions

if TYPE_CHECKING:
    from evidence.analysis.counters import FloatArray, IntArray
    from evidence.policy import Criterion


@dataclass(frozen=True, eq=False)
class Component:
    """One line of a criterion chart."""

    label: str
    role: str  # canary | primary | threshold | value
    values: FloatArray = field(repr=False)


@dataclass(frozen=True, eq=False)
class Components:
    """The lines of one criterion chart, in one unit."""

    unit: str  # axis title
    lines: tuple[Component, ...]


def _share(table: CounterTable, role: str, t: IntArray, w: int) -> FloatArray:
    total = table.total_increase(request_positions(table, role), t, w)
    errors = table.total_increase(request_positions(table, role, errors=True), t, w)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(total > 0, errors / np.where(total > 0, total, 1.0), np.nan)


def _quantile(table: CounterTable, role: str, q: float, t: IntArray, w: int) -> FloatArray:
    bounds, counts = table.bucket_increases(table.select(table.router.duration_buckets, role=role), t, w)
    if counts.shape[0] == 0:
        return np.full(t.size, np.nan)
    return histogram_quantile(q, bounds, counts)


def criterion_components(table: CounterTable, c: Criterion, times: IntArray, values: FloatArray) -> Components:
    """Return the chart lines of a criterion at ``times`` (``values`` are the criterion's own)."""
    t = np.asarray(times, dtype=np.int64)
    w = round(c.window_seconds * 1000)
    if c.kind == "error_rate_ratio":
        canary = _share(table, "canary", t, w) * 100
        primary = _share(table, "primary", t, w) * 100
        limit = c.threshold * np.maximum(primary / 100, c.primary_floor) * 100
        return Components(
            "5xx share (%)",
            (
                Component("canary 5xx share", "canary", canary),
                Component("primary 5xx share", "primary", primary),
                Component(f"abort at {c.threshold:g}× primary (floor {c.primary_floor * 100:g} %)", "threshold", limit),
            ),
        )
    if c.kind == "p95_latency_increase":
        canary = _quantile(table, "canary", c.quantile, t, w) * 1000
        primary = _quantile(table, "primary", c.quantile, t, w) * 1000
        q = f"p{c.quantile * 100:g}"
        return Components(
            f"{q} latency (ms)",
            (
                Component(f"canary {q}", "canary", canary),
                Component(f"primary {q}", "primary", primary),
                Component(f"abort at primary +{c.threshold * 100:g} %", "threshold", primary * (1 + c.threshold)),
            ),
        )
    if c.kind == "success_rate":
        canary = (1 - _share(table, "canary", t, w)) * 100
        primary = (1 - _share(table, "primary", t, w)) * 100
        return Components(
            "success rate (%)",
            (
                Component("canary success rate", "canary", canary),
                Component("primary success rate", "primary", primary),
                Component(f"abort below {c.threshold:g} %", "threshold", np.full(t.size, c.threshold)),
            ),
        )
    return Components(
        c.unit or c.name,
        (
            Component(c.name, "value", np.asarray(values, dtype=np.float64)),
            Component(f"abort when {c.comparator} {c.threshold:g}", "threshold", np.full(t.size, c.threshold)),
        ),
    )


def request_rates(table: CounterTable, times: IntArray) -> dict[str, FloatArray]:
    """Return requests per second of the primary and the canary between consecutive times."""
    t = np.asarray(times, dtype=np.int64)
    out: dict[str, FloatArray] = {}
    if t.size < 2:
        return {"primary": np.full(t.size, np.nan), "canary": np.full(t.size, np.nan)}
    dt_s = np.diff(t) / 1000.0
    for role in ("primary", "canary"):
        pos = request_positions(table, role)
        if pos.size == 0:
            out[role] = np.zeros(t.size)
            continue
        cum = table.values_at(pos, t).sum(axis=0)
        rate = np.diff(cum) / dt_s
        out[role] = np.concatenate([[np.nan], rate])
    return out
