"""Blast radius: how much traffic the canary took, how many errors it served, for how long.

Counts come from the canary's Traefik request counters with the reset-aware, from-0
arithmetic of ``counters`` over the whole rollout, so they are exact at scrape precision.
Exposure runs from the first canary traffic (Flagger's first weight step above 0) until its
weight is back at 0 (the rollback, or on promotion ``Routing all traffic to primary`` / the
last primary-weight step).  When only a later terminal event implies the return to 0, or none
shows it although the rollout ended, the canary's traffic-zero time (its counters stopped
rising) closes it; only a rollout still running at the end of the record (or a failed
promotion, which leaves the canary all traffic) leaves the exposure open up to that end.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from evidence.analysis.counters import CounterTable
from evidence.analysis.timeline import INFERRED_ZERO, Timeline, WeightStep
from evidence.analysis.traffic import request_positions
from evidence.model import epoch_ms, from_epoch_ms, rfc3339

if TYPE_CHECKING:
    from evidence.analysis.counters import IntArray

SHARE_MIN_REQUESTS = 100
SHARE_TOLERANCE_POINTS = 5.0


@dataclass(frozen=True)
class ShareCheck:
    """The canary's observed share of traffic during one weight step, next to the weight Flagger set."""

    start: dt.datetime
    end: dt.datetime
    weight: int
    canary_requests: int
    primary_requests: int
    observed_percent: float | None
    tolerance_points: float | None
    mismatch: bool


@dataclass(frozen=True)
class BlastRadius:
    """What the canary served during the rollout."""

    max_weight: int
    canary_requests: int
    canary_errors: int
    primary_requests: int
    primary_errors: int
    primary_error_share: float | None
    expected_errors: float | None
    excess_errors: float | None
    exposure_start: dt.datetime | None
    exposure_end: dt.datetime | None
    exposure_seconds: float
    exposure_open: bool
    first_canary_request_at: dt.datetime | None
    canary_traffic_zero_at: dt.datetime | None
    shares: tuple[ShareCheck, ...]
    notes: tuple[str, ...]


def _total(table: CounterTable, pos: IntArray, a: int, b: int) -> float:
    if pos.size == 0:
        return 0.0
    v = table.values_at(pos, np.array([a, b], dtype=np.int64)).sum(axis=0)
    return float(v[1] - v[0])


def _counted_from_a_baseline(table: CounterTable, positions: IntArray, start: int) -> bool:
    """Return whether a series existed before the bundle's first scrape and lived on, unreset, into the rollout."""
    for p in positions.tolist():
        if table.series["appeared"].iat[p] or table.first[p] < 0 or table.times[table.last[p]] < start:
            continue
        first_t = int(table.times[table.first[p]])
        if table.restarted_between(np.array([p]), first_t + 1, start).size == 0:
            return True
    return False


def blast_radius(table: CounterTable, timeline: Timeline, start: dt.datetime, end: dt.datetime, scrapes: IntArray) -> BlastRadius:
    """Return the blast radius of the rollout between ``start`` and ``end`` (``scrapes``: Traefik scrape times)."""
    notes: list[str] = []
    a, b = epoch_ms(start), epoch_ms(end)
    canary = request_positions(table, "canary")
    canary_err = request_positions(table, "canary", errors=True)
    primary = request_positions(table, "primary")
    primary_err = request_positions(table, "primary", errors=True)
    c_req = _total(table, canary, a, b)
    c_err = _total(table, canary_err, a, b)
    if _counted_from_a_baseline(table, canary, a):
        notes.append(
            "the canary's Traefik series already existed at the first scrape in the bundle: their first sample is a baseline, "
            "requests served before it are not counted"
        )

    # Observed canary traffic: the scrapes at which its counters rose.
    s = scrapes[(scrapes > a) & (scrapes <= b)] if scrapes.size else scrapes
    first_req = zero_at = None
    if canary.size and s.size:
        vals = table.values_at(canary, np.r_[a, s]).sum(axis=0)
        rose = np.flatnonzero(np.diff(vals) > 0)
        if rose.size:
            first_req = from_epoch_ms(int(s[rose[0]]))
            if rose[-1] < s.size - 1:
                zero_at = from_epoch_ms(int(s[rose[-1]]))

    exp_start = timeline.first_traffic_at or first_req
    exp_end, open_ = _exposure_end(timeline, exp_start, zero_at, end, notes)
    exposure = max(0.0, (exp_end - exp_start).total_seconds()) if exp_start and exp_end else 0.0

    # The primary's error share while the canary was exposed.
    pa = epoch_ms(exp_start) if exp_start else a
    until = zero_at or exp_end
    pb = epoch_ms(until) if until else b
    if pb <= pa:
        pa, pb = a, b
    p_req = _total(table, primary, pa, pb)
    p_err = _total(table, primary_err, pa, pb)
    p_share = p_err / p_req if p_req > 0 else None
    expected = c_req * p_share if p_share is not None else None
    excess = max(0.0, c_err - expected) if expected is not None else None
    if p_share is None and c_req > 0:
        notes.append("the primary served no requests while the canary was exposed: excess errors are unknown")

    return BlastRadius(
        max_weight=timeline.max_weight,
        canary_requests=round(c_req),
        canary_errors=round(c_err),
        primary_requests=round(p_req),
        primary_errors=round(p_err),
        primary_error_share=p_share,
        expected_errors=expected,
        excess_errors=excess,
        exposure_start=exp_start,
        exposure_end=exp_end,
        exposure_seconds=exposure,
        exposure_open=open_,
        first_canary_request_at=first_req,
        canary_traffic_zero_at=zero_at,
        shares=share_checks(table, timeline.weight_steps, exp_end or end, scrapes),
        notes=tuple(notes),
    )


def _exposure_end(
    timeline: Timeline, exp_start: dt.datetime | None, zero_at: dt.datetime | None, end: dt.datetime, notes: list[str]
) -> tuple[dt.datetime | None, bool]:
    """Return when the canary's exposure ended, and whether it is still open at ``end``.

    The return to weight 0 as the timeline knows it closes the exposure.  When that return is
    only implied by a terminal event that comes later (``Promotion completed!``), or no event
    shows it although the rollout ended, the canary's traffic-zero time (its Traefik counters
    stopped rising) closes it.  Only a rollout that has not ended — or that ended with the
    canary holding all traffic (a failed promotion) — leaves it open.
    """
    if exp_start is None:
        return timeline.traffic_to_primary_at, False
    steps = timeline.weight_steps
    back = timeline.traffic_to_primary_at
    if back is not None:
        inferred = steps[-1].action in INFERRED_ZERO
        if inferred and zero_at is not None and exp_start <= zero_at < back:
            notes.append(
                f"no event says when the canary's weight went back to 0 before '{steps[-1].action}' at {rfc3339(back)}: "
                "the exposure ends when its Traefik counters stopped rising"
            )
            return zero_at, False
        return back, False
    still_weighted = bool(steps) and steps[-1].weight > 0
    to_canary = still_weighted and steps[-1].action in ("promotion-failed", "route-canary")
    terminal = timeline.ended and not to_canary
    if not terminal and (still_weighted or timeline.outcome == "in_progress" or zero_at is None):
        notes.append("the canary still had traffic at the end of the record: the exposure is open-ended")
        return end, True
    if zero_at is not None:
        notes.append("no event set the canary's weight back to 0: the exposure ends when its Traefik counters stopped rising")
        return zero_at, False
    ended = [t for t in (timeline.rollback_at, timeline.promoted_at, timeline.failed_at) if t is not None]
    if ended:
        notes.append(
            "no event set the canary's weight back to 0 and its Traefik counters do not show when its traffic stopped: "
            "the exposure ends at Flagger's terminal event"
        )
        return min(ended), False
    notes.append(
        f"the rollout ended ({timeline.outcome}) but the record does not show when the canary's traffic stopped: "
        "the exposure is counted to the end of the record"
    )
    return end, True


def share_checks(
    table: CounterTable, steps: tuple[WeightStep, ...], end: dt.datetime, scrapes: IntArray
) -> tuple[ShareCheck, ...]:
    """Return the canary's observed share of requests during each weight step between 1 and 99 %."""
    canary = request_positions(table, "canary")
    primary = request_positions(table, "primary")
    out = []
    close = epoch_ms(end)
    for i, step in enumerate(steps):
        if not 0 < step.weight < 100:
            continue
        a = epoch_ms(step.time)
        # Each step ends at the next one, and none runs past the end of the exposure.
        b = min(epoch_ms(steps[i + 1].time), close) if i + 1 < len(steps) else close
        inside = scrapes[(scrapes >= a) & (scrapes <= b)] if scrapes.size else scrapes
        if inside.size < 2:
            continue
        s0, s1 = int(inside[0]), int(inside[-1])
        c = _total(table, canary, s0, s1)
        p = _total(table, primary, s0, s1)
        total = c + p
        observed = tol = None
        mismatch = False
        if total >= SHARE_MIN_REQUESTS:
            observed = 100.0 * c / total
            w = step.weight / 100.0
            tol = max(SHARE_TOLERANCE_POINTS, 4 * 100.0 * math.sqrt(w * (1 - w) / total))
            mismatch = abs(observed - step.weight) > tol
        out.append(ShareCheck(from_epoch_ms(s0), from_epoch_ms(s1), step.weight, round(c), round(p), observed, tol, mismatch))
    return tuple(out)
