"""What-if replay: when would Flagger's own checks, and the abort policy, have rolled back?

Flagger's loop (../shared/reference/flagger-traefik.md §2.2, §4.2): at each analysis tick while
the canary has weight, it runs the metric checks in spec order and stops at the first failure,
which adds 1 to the failed checks (a query with no values is a failure, and so is one whose
answer is a matrix: "query returned multiple values"; a vector of several series is not — Flagger
reads the last one, §4.1); failed checks never go down during a run; when they reach the threshold, the rollback happens at the **next** tick.

* ``replay_flagger`` re-runs that over the bundle's ``checks`` table (Flagger's queries
  evaluated at the analysis ticks, value in Flagger's unit: percent, ms for request-duration).
* ``replay_policy`` does the same with the abort policy: a tick fails when any criterion is
  breached at the tick (no data is not a failure — unlike Flagger's "no values found").

Both replay the traffic as it happened: a halt does not change what the canary served
afterwards.  Webhook gates (``rollout`` hooks) cannot be replayed from the bundle.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from evidence.analysis.counters import CounterTable, to_ms
from evidence.analysis.criteria import breaches, criterion_values
from evidence.analysis.traffic import WeightSeries
from evidence.model import epoch_ms, from_epoch_ms
from evidence.policy import Policy

if TYPE_CHECKING:
    from evidence.analysis.counters import IntArray

_MATCH_MS = 1000


@dataclass(frozen=True)
class ReplayTick:
    """One analysis tick of a replay."""

    time: dt.datetime
    failed: bool
    check: str | None  # the first failing metric (Flagger) or criterion (policy)
    value: float | None
    reason: str | None
    failed_checks: int  # running count after this tick


@dataclass(frozen=True)
class Replay:
    """The replay of one rule set over the rollout's analysis ticks."""

    name: str  # "flagger" | "policy"
    threshold: int
    interval_seconds: float
    checks: tuple[str, ...]  # what was checked, in order
    ticks: tuple[ReplayTick, ...]
    failed_checks: int
    first_failure_at: dt.datetime | None
    threshold_reached_at: dt.datetime | None
    rollback_at: dt.datetime | None  # the tick after the threshold was reached
    notes: tuple[str, ...]

    @property
    def would_roll_back(self) -> bool:
        return self.threshold_reached_at is not None


def analysis_ticks(
    checks: pd.DataFrame,
    interval_seconds: float,
    start: dt.datetime,
    end: dt.datetime,
    weights: WeightSeries,
    promotion_started_at: dt.datetime | None = None,
    stopped_at: dt.datetime | None = None,
) -> IntArray:
    """Return Flagger's analysis ticks (epoch ms) at which it ran metric checks.

    The ticks are a grid of ``interval`` seconds, in phase with the ``checks`` table when it has
    rows, else with ``start`` (the rollout's start, itself a tick).  A tick counts when the
    canary had weight before it, and it is not later than the tick that started the promotion
    nor the tick that rolled back or failed (``stopped_at``: no checks run then).
    """
    step = max(1, round(interval_seconds * 1000))
    a, b = epoch_ms(start), epoch_ms(end)
    phase = a
    if len(checks):
        ts = to_ms(checks["timestamp"])
        inside = ts[(ts >= a) & (ts <= b)]
        if inside.size:
            phase = int(inside.min())
    k0 = -((phase - a) // step)
    grid = phase + step * np.arange(k0, (b - phase) // step + 1, dtype=np.int64)
    grid = grid[(grid > a) & (grid <= b)]
    keep = weights.at(grid, strict=True) > 0
    if promotion_started_at is not None:
        keep &= grid <= epoch_ms(promotion_started_at)
    if stopped_at is not None:
        keep &= grid < epoch_ms(stopped_at) - 500
    return np.asarray(grid[keep], dtype=np.int64)


def _next_tick(threshold_at: int | None, step_ms: int) -> dt.datetime | None:
    return None if threshold_at is None else from_epoch_ms(threshold_at + step_ms)


def _finish(
    name: str, threshold: int, interval_seconds: float, checked: Sequence[str], ticks: list[ReplayTick], notes: list[str]
) -> Replay:
    fails = [t for t in ticks if t.failed]
    reached = next((t for t in ticks if t.failed_checks >= threshold), None)
    step = round(interval_seconds * 1000)
    return Replay(
        name=name,
        threshold=threshold,
        interval_seconds=interval_seconds,
        checks=tuple(checked),
        ticks=tuple(ticks),
        failed_checks=len(fails),
        first_failure_at=fails[0].time if fails else None,
        threshold_reached_at=reached.time if reached else None,
        rollback_at=_next_tick(epoch_ms(reached.time), step) if reached else None,
        notes=tuple(notes),
    )


def replay_flagger(
    checks: pd.DataFrame,
    metrics: Sequence[str],
    threshold: int,
    interval_seconds: float,
    ticks: IntArray,
    queried: Collection[str] | None = None,
    matrix: Collection[str] = (),
) -> Replay:
    """Re-run Flagger's metric checks (``metrics`` in spec order) at each tick over the ``checks`` table.

    ``queried`` names the metrics whose query the collector ran: one without any row in the
    table answered "no values found" at every tick, a failed check each time.  ``matrix`` names
    the metrics whose query Prometheus answers with a matrix: Flagger fails them at every tick
    ("query returned multiple values").  A metric neither queried nor in the table is not replayed.
    """
    notes: list[str] = []
    threshold = max(1, threshold)
    by_metric: dict[str, tuple[IntArray, np.ndarray, float | None, float | None]] = {}
    # The table's columns as arrays, once (a pandas filter and sort per metric cost more than the replay).
    n = len(checks)
    names = np.array([x if isinstance(x, str) else None for x in checks["metric"].tolist()] if n else [], dtype=object)
    stamps = to_ms(checks["timestamp"]) if n else np.zeros(0, dtype=np.int64)
    values = checks["value"].to_numpy(dtype=np.float64) if n else np.zeros(0)
    lows = pd.to_numeric(checks["threshold_min"], errors="coerce").to_numpy(dtype=np.float64) if n else np.zeros(0)
    highs = pd.to_numeric(checks["threshold_max"], errors="coerce").to_numpy(dtype=np.float64) if n else np.zeros(0)
    for m in metrics:
        rows = np.flatnonzero(names == m)
        if m in matrix:
            by_metric[m] = (np.zeros(0, dtype=np.int64), np.zeros(0), None, None)
            notes.append(f"metric {m}: Prometheus answers its query with a matrix; Flagger fails it at every tick")
            continue
        if not rows.size:
            if queried is not None and m in queried:
                by_metric[m] = (np.zeros(0, dtype=np.int64), np.zeros(0), None, None)
                notes.append(f"metric {m}: Flagger's query returned no values at any tick (a failed check each tick)")
            else:
                notes.append(f"metric {m}: no values in the bundle's checks table, not replayed")
            continue
        rows = rows[np.argsort(stamps[rows], kind="stable")]
        lo, hi = lows[rows], highs[rows]
        lo, hi = lo[~np.isnan(lo)], hi[~np.isnan(hi)]
        by_metric[m] = (
            stamps[rows],
            values[rows],
            float(lo[0]) if lo.size else None,
            float(hi[0]) if hi.size else None,
        )
    out: list[ReplayTick] = []
    failed = 0
    for t in (int(x) for x in ticks):
        if failed >= threshold:
            break
        verdict: tuple[str, float | None, str] | None = None
        for m, (ts, vals, lo_, hi_) in by_metric.items():
            if m in matrix:
                verdict = (m, None, "query returned multiple values")
                break
            i = int(np.searchsorted(ts, t))
            cands = [j for j in (i - 1, i) if 0 <= j < ts.size and abs(int(ts[j]) - t) <= _MATCH_MS]
            value = float(vals[cands[-1]]) if cands else math.nan
            if math.isnan(value):
                verdict = (m, None, "no values found")
                break
            if m == "request-duration" and math.isfinite(value):
                value = float(int(value))  # Flagger truncates to whole milliseconds
            if lo_ is not None and value < lo_:
                verdict = (m, value, f"{_go(value)} < {lo_:g}")
                break
            if hi_ is not None and value > hi_:
                verdict = (m, value, f"{_go(value)} > {hi_:g}")
                break
        if verdict is not None:
            failed += 1
        out.append(
            ReplayTick(
                from_epoch_ms(t),
                verdict is not None,
                verdict[0] if verdict else None,
                verdict[1] if verdict else None,
                verdict[2] if verdict else None,
                failed,
            )
        )
    if not by_metric:
        notes.append("no Flagger check could be replayed")
    return _finish("flagger", threshold, interval_seconds, list(by_metric), out, notes)


def replay_policy(table: CounterTable, policy: Policy, threshold: int, interval_seconds: float, ticks: IntArray) -> Replay:
    """Replay the abort policy at Flagger's ticks: a tick fails when any criterion is breached."""
    threshold = max(1, threshold)
    t = np.asarray(ticks, dtype=np.int64)
    results = []
    for c in policy.criteria:
        values, _, _ = criterion_values(table, c, t)
        results.append((c, values, breaches(c, values)))
    out: list[ReplayTick] = []
    failed = 0
    for i, tick in enumerate(t.tolist()):
        if failed >= threshold:
            break
        hit = next(((c, float(v[i])) for c, v, b in results if b[i]), None)
        if hit is None:
            out.append(ReplayTick(from_epoch_ms(int(tick)), False, None, None, None, failed))
            continue
        failed += 1
        crit, value = hit
        reason = f"{value:.4g} {crit.comparator} {crit.threshold:g}"
        out.append(ReplayTick(from_epoch_ms(int(tick)), True, crit.name, value, reason, failed))
    notes = ["a criterion without data does not fail a tick (Flagger fails a check with no values)"]
    return _finish("policy", threshold, interval_seconds, [c.name for c in policy.criteria], out, notes)


def _go(value: float) -> str:
    """Return a value as Flagger prints it: ``+Inf`` / ``-Inf`` as Go writes infinities, else compact."""
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:g}"
