"""Flagger's side of a rollout, from the bundle's event record: outcome, weight steps, halts.

The outcome as Flagger recorded it (../shared/reference/flagger-traefik.md §2.2, §9.2):

* ``promoted`` — ``Promotion completed! …``;
* ``rolled_back`` — ``Rolling back … failed checks threshold reached N`` or ``… manual webhook
  invoked`` (then ``Canary failed! …``);
* ``failed`` — the canary never became ready: ``… not ready: …`` then ``Canary failed! …`` with
  **no** ``Rolling back`` line and no alert (the progress-deadline path since Flagger 1.36.1);
  or, Flagger ≥ 1.44, ``Promotion of … failed, primary not ready: …`` — traffic goes back to
  the canary (weight 100) and there is **no** ``Canary failed!``;
* ``in_progress`` — the rollout has no terminal event yet;
* ``unknown`` — no event of the rollout and no usable Canary status; or only Flagger's
  weight gauge shows the canary back at 0, and nothing in the record says whether that was a
  promotion or a rollback.

When the terminal events are missing, the Canary's status (``phase`` Succeeded / Failed) is
the fallback, and the timeline says so — but only a status that belongs to the evaluated span:
a ``lastTransitionTime`` before the rollout's start is an earlier rollout's, one after the
span's end a later rollout's (the bundle's Canary object is its state at collection time), and
neither decides the outcome.  ``rollback_at`` is the first ``Rolling back …`` or
``Canary failed! …`` event; only when there is none, the Canary's own status is Failed and
its weight came back to 0 is that drop taken as the rollback, and ``rollback_inferred`` says
so.  Kubernetes-only rows lower the confidence:
aggregated rows (``(combined from similar events): …``) only know the latest message,
``cross_rollout`` rows were merged with an older rollout, and a ``k8s_count`` above 1 means
several occurrences of which only one time is known.

Below the events and a Canary status of the span comes Flagger's status gauge
``flagger_canary_status`` (``outcome_source`` ``status-gauge``, confidence low; reference §5:
0 only while ``Progressing``, 2 for ``Failed``, 1 for every other phase).  It is used only when
no terminal event and no Canary status of this span decide (none, a stale one, or one that is
not Succeeded/Failed and not a running phase):

* 0 → 2 inside the span: Flagger failed the canary at the first scrape that shows the 2 —
  ``rolled_back`` when the canary's weight was above 0 before, else ``failed``; that scrape
  time is ``rollback_at`` (and ``failed_at``), with ``rollback_inferred`` true;
* 0 → 1 inside the span, never 2 after it, and the canary's weight reached the Canary's last
  step (``stepWeights``' last, else ``maxWeight``, else 100 — Flagger's ``maxWeight()``) and
  came back to 0: ``promoted``.  ``promoted_at`` stays empty: it means a ``Promotion
  completed!`` event, and the gauge's 1 is only a scrape time of ``Promoting`` (or
  ``Finalising``/``Succeeded``), which comes before the completion; ``traffic_to_primary_at``
  still dates the weight's return to 0;
* anything else (still 0, a 1 without a completed-looking promotion such as ``Waiting`` or
  ``WaitingPromotion``, no gauge): the outcome stays what the rest of the record supports.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from evidence.analysis.traffic import StatusSeries, WeightSeries
from evidence.model import UTC, rfc3339

ROLLOUT_START = ("new-revision", "restart")
ROLLBACK_ACTIONS = ("rollback", "rollback-manual", "rollback-deadline", "failed")
TERMINAL = ("promoted", "promotion-failed", *ROLLBACK_ACTIONS)
# Terminal events that imply the canary's weight is 0 although Flagger set it earlier
# (``Routing all traffic to primary`` comes an analysis interval before ``Promotion completed!``).
INFERRED_ZERO = ("promoted",)
ENDED = ("promoted", "rolled_back", "failed")
# Canary phases of a rollout that is still running: a status of the span in one of them is
# what the record says now, and Flagger's status gauge does not override it.
RUNNING_PHASES = ("Progressing", "Waiting", "WaitingPromotion", "Promoting", "Finalising")
STATUS_GAUGE = "status-gauge"  # outcome_source when flagger_canary_status decided the outcome
LOSSLESS = ("webhook", "log")
_PRIMARY_WEIGHT = re.compile(r"primary weight (\d+)")
_THRESHOLD = re.compile(r"threshold reached (\d+)")
_TOLERANCE = dt.timedelta(seconds=2)
MANIFEST_START = "started at the manifest's rollout start"


@dataclass(frozen=True)
class TimelineEntry:
    """One event of the rollout as the timeline shows it."""

    time: dt.datetime
    action: str
    type: str
    message: str
    weight: int | None
    metric: str | None
    value: float | None
    threshold: float | None
    comparator: str | None
    sources: str
    count: int | None  # the Kubernetes Event's count, when the row came from one
    lossy: bool  # only Kubernetes knows this row (seconds, possibly merged or aggregated)
    aggregated: bool
    cross_rollout: bool


@dataclass(frozen=True)
class Halt:
    """A ``Halt …`` event: which check failed, its value and threshold."""

    time: dt.datetime
    metric: str | None
    value: float | None
    threshold: float | None
    comparator: str | None
    message: str
    occurrences: int  # >1 when a Kubernetes Event merged several identical halts


@dataclass(frozen=True)
class WeightStep:
    """The canary's weight from ``time`` on, and what set it."""

    time: dt.datetime
    weight: int
    action: str  # the event action, or "gauge" when read from flagger_canary_weight


@dataclass(frozen=True)
class StatusChange:
    """Where Flagger's status gauge left 0 (Progressing) inside the span: the first scrape that shows it."""

    time: dt.datetime
    value: int  # 2 Failed, 1 any other phase


@dataclass(frozen=True)
class Timeline:
    """What Flagger did during one rollout, and how sure the record is."""

    outcome: str
    outcome_reason: str
    outcome_source: str  # "events" | "canary-status" | "status-gauge" | "none"
    started_at: dt.datetime | None
    first_traffic_at: dt.datetime | None
    first_halt_at: dt.datetime | None
    rollback_at: dt.datetime | None
    rollback_inferred: bool  # no rollback event: rollback_at is the weight's drop under a Failed status, or the status gauge's 2
    rollback_reason: str | None
    promotion_started_at: dt.datetime | None
    promoted_at: dt.datetime | None  # a "Promotion completed!" event only, never inferred
    failed_at: dt.datetime | None
    traffic_to_primary_at: dt.datetime | None  # Flagger set the canary's weight back to 0
    max_weight: int
    failed_checks_reported: int | None
    restarts: int
    weight_steps: tuple[WeightStep, ...]
    halts: tuple[Halt, ...]
    entries: tuple[TimelineEntry, ...]
    confidence: str  # high | medium | low
    notes: tuple[str, ...]

    @property
    def ended(self) -> bool:
        """Return whether the record shows the rollout ended (a terminal event, or the Canary's final status)."""
        return self.outcome in ENDED

    @property
    def analysis_ended_at(self) -> dt.datetime | None:
        """Return when Flagger stopped running checks: promotion start, rollback or failure."""
        ends = [t for t in (self.promotion_started_at, self.rollback_at, self.failed_at, self.promoted_at) if t is not None]
        return min(ends) if ends else None

    def weights(self) -> WeightSeries:
        """Return the weight steps as a step series (epoch ms)."""
        if not self.weight_steps:
            return WeightSeries(np.zeros(0, dtype=np.int64), np.zeros(0), "none")
        src = "events" if any(s.action != "gauge" for s in self.weight_steps) else "flagger_canary_weight"
        t = np.array([_ms(s.time) for s in self.weight_steps], dtype=np.int64)
        w = np.array([float(s.weight) for s in self.weight_steps])
        return WeightSeries(t, w, src)


def _ms(t: dt.datetime) -> int:
    return round(t.timestamp() * 1000)


def _dt(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=UTC)


def _opt_float(v: Any) -> float | None:
    if v is None or v is pd.NA:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _opt_int(v: Any) -> int | None:
    f = _opt_float(v)
    return None if f is None else int(f)


def _opt_str(v: Any) -> str | None:
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    return str(v)


def _time(v: Any) -> dt.datetime | None:
    if v is None or v is pd.NA or pd.isna(v):
        return None
    ts = pd.Timestamp(v)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    out: dt.datetime = ts.to_pydatetime()
    return out


def _entries(events: pd.DataFrame) -> list[TimelineEntry]:
    out = []
    cols = set(events.columns)
    for row in events.to_dict("records"):
        t = _time(row.get("time"))
        if t is None:
            continue
        sources = _opt_str(row.get("sources")) or ""
        action = _opt_str(row.get("action")) or "other"
        weight = _opt_int(row.get("weight"))
        message = _opt_str(row.get("message")) or ""
        if action == "promote-step" and weight is None:
            m = _PRIMARY_WEIGHT.search(message)
            weight = 100 - int(m.group(1)) if m else None
        out.append(
            TimelineEntry(
                time=t,
                action=action,
                type=_opt_str(row.get("type")) or "",
                message=message,
                weight=weight,
                metric=_opt_str(row.get("metric")),
                value=_opt_float(row.get("value")),
                threshold=_opt_float(row.get("threshold")),
                comparator=_opt_str(row.get("comparator")),
                sources=sources,
                count=_opt_int(row.get("k8s_count")) if "k8s_count" in cols else None,
                lossy=not any(s.strip() in LOSSLESS for s in sources.split(",")),
                aggregated=bool(row.get("aggregated")) if _opt_str(row.get("aggregated")) is not None else False,
                cross_rollout=bool(row.get("cross_rollout")) if _opt_str(row.get("cross_rollout")) is not None else False,
            )
        )
    out.sort(key=lambda e: e.time)
    return out


def rollout_span(
    events: pd.DataFrame, window_start: dt.datetime, window_end: dt.datetime, rollout_start: dt.datetime | None
) -> tuple[dt.datetime, dt.datetime, str]:
    """Return (start, end, how) of the rollout to evaluate inside the bundle's window.

    The start is the manifest's rollout start, else the latest ``New revision detected!`` (or
    ``Restarting analysis``) event, else the window start.  The end is the window's end, cut
    at the next rollout's start when the window holds a later one.
    """
    entries = _entries(events)
    starts = [e.time for e in entries if e.action in ROLLOUT_START and window_start <= e.time <= window_end]
    how = MANIFEST_START
    start = rollout_start
    if start is None:
        if starts:
            start, how = max(starts), "started at the latest new-revision event (the manifest has no rollout start)"
        else:
            start, how = window_start, "started at the window's start (no rollout start recorded)"
    start = max(start, window_start)
    later = [e.time for e in entries if e.action == "new-revision" and start + _TOLERANCE < e.time <= window_end]
    end = min(later) if later else window_end
    if later:
        how += f"; the window holds a later rollout, so the evaluation stops at its start {rfc3339(later[0])}"
    return start, end, how


def build_timeline(
    events: pd.DataFrame,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    canary: Mapping[str, Any] | None = None,
    gauge: WeightSeries | None = None,
    status: StatusSeries | None = None,
) -> Timeline:
    """Return Flagger's timeline of the rollout between ``start`` and ``end``.

    Without ``start``, the latest rollout in the record; either way the timeline stops before
    a later ``New revision detected! Scaling up`` (the next rollout).  ``gauge`` (Flagger's
    weight gauge) fills in the weight steps when the events have none, and raises
    ``max_weight`` when it saw a higher weight than the events.  ``status`` (Flagger's status
    gauge) is the last fallback for the outcome (see the module docstring).
    """
    notes: list[str] = []
    entries = [
        e
        for e in _entries(events)
        if (start is None or e.time >= start - _TOLERANCE) and (end is None or e.time <= end) and e.action != "other"
    ]
    if start is None:
        # No start given: the latest rollout in the record.
        revs = [i for i, e in enumerate(entries) if e.action == "new-revision"]
        entries = entries[revs[-1] :] if revs else entries
    # A later "New revision detected! Scaling up" starts the next rollout: stop before it.
    first_rev = next((i for i, e in enumerate(entries) if e.action == "new-revision"), None)
    later = next(
        (i for i, e in enumerate(entries) if e.action == "new-revision" and first_rev is not None and i > first_rev), None
    )
    if later is not None:
        entries = entries[:later]
    started_at = next((e.time for e in entries if e.action in ROLLOUT_START), None)
    restarts = sum(1 for e in entries if e.action == "restart")
    if restarts:
        notes.append(f"the analysis restarted {restarts} time(s) (a new revision during the rollout): failed checks were reset")

    # Weight steps as Flagger set them.
    steps: list[WeightStep] = []
    current = 0
    for e in entries:
        w: int | None = None
        if e.action in ("advance", "promote-step") and e.weight is not None:
            w = e.weight
        elif e.action in ("route-primary", *ROLLBACK_ACTIONS, *INFERRED_ZERO):
            # A promotion that completed, a rollback and a failure all leave the canary at 0
            # unless a later event says otherwise; client-go may have folded "Routing all
            # traffic to primary" into "(combined from similar events): Promotion completed!".
            w = 0
        elif e.action in ("route-canary", "promotion-failed"):
            w = 100
        elif e.action in ROLLOUT_START:
            w = 0
        if w is not None and w != current:
            steps.append(WeightStep(e.time, w, e.action))
            current = w
    max_weight = max((s.weight for s in steps), default=0)
    if gauge is not None and not gauge.empty:
        lo = _ms(start) if start else int(gauge.times[0])
        hi = _ms(end) if end else int(gauge.times[-1])
        g_max = int(gauge.max_between(lo, hi)) if gauge.times.size else 0
        if not steps and g_max > 0:
            steps = _gauge_steps(gauge, lo, hi)
            notes.append(
                "no weight step in the events: the steps come from Flagger's flagger_canary_weight gauge (scrape precision)"
            )
        elif steps:
            steps = _cross_check_zero(steps, gauge, hi, notes)
        if g_max > max_weight and any(s.action != "gauge" for s in steps):
            notes.append(
                f"Flagger's weight gauge reached {g_max}% but the events show at most {max_weight}%: weight events are missing"
            )
        max_weight = max(max_weight, g_max)

    halts = tuple(
        Halt(
            e.time,
            e.metric,
            e.value,
            e.threshold,
            e.comparator,
            e.message,
            e.count if (e.lossy and e.count and e.count > 1 and not e.cross_rollout) else 1,
        )
        for e in entries
        if e.action == "halt"
    )
    first = {a: next((e for e in entries if e.action == a), None) for a in (*TERMINAL, "promote-start")}
    rollback_ev = next((e for e in entries if e.action in ROLLBACK_ACTIONS), None)
    promoted_ev = first["promoted"]
    failed_ev = next((e for e in entries if e.action in ("failed", "promotion-failed", "rollback-deadline")), None)
    first_up = next((s for s in steps if s.weight > 0), None)
    # Back at 0 for good: the last step, when it is 0 (a restart drops to 0 and climbs again).
    back = steps[-1] if steps and steps[-1].weight == 0 and first_up is not None and steps[-1].time > first_up.time else None
    reported = _reported_checks(rollback_ev)

    change = _status_change(status, start, end)
    fallback = _StatusFallback(change, steps, back, int(max_weight), _promotion_weight(canary))
    outcome, reason, source = _classify(entries, halts, canary, start, end, notes, back, fallback)
    rollback_at = rollback_ev.time if rollback_ev else None
    failed_at = failed_ev.time if failed_ev else None
    rollback_inferred = False
    if rollback_at is None and source == "canary-status" and back is not None and outcome != "promoted":
        # No terminal event, but the Canary's status of this span says Failed and its weight
        # went back to 0: that drop is the rollback (the time has the precision of what showed it).
        rollback_at, rollback_inferred = back.time, True
        notes.append(
            f"no 'Rolling back' or 'Canary failed!' event: the rollback is inferred from the Canary's status (phase Failed) "
            f"and its weight back at 0 at {rfc3339(back.time)}"
            + (" (Flagger's weight gauge, scrape precision)" if back.action == "gauge" else "")
        )
    elif rollback_at is None and source == STATUS_GAUGE and change is not None and change.value == 2:
        # Flagger sets the phase Failed in the tick that rolls back (or fails) the canary: the
        # first scrape showing it is the rollback, within one scrape interval after it.
        rollback_at, rollback_inferred = change.time, True
        failed_at = failed_at or change.time

    lossy = [e for e in entries if e.lossy]
    if entries and len(lossy) == len(entries):
        notes.append(
            "the events come only from the Kubernetes Events API: times are to the second, and client-go's spam filter, "
            "aggregation and the 1 h TTL may have dropped events (halts and weight steps may be missing)"
        )
    elif lossy:
        notes.append(f"{len(lossy)} of {len(entries)} events are known only from the Kubernetes Events API (seconds precision)")
    agg = sum(e.aggregated for e in lossy)
    if agg:
        notes.append(
            f"{agg} event(s) were aggregated by client-go ('combined from similar events'): only the latest message is known; "
            "earlier similar events are lost"
        )
    cross = sum(e.cross_rollout for e in lossy)
    if cross:
        notes.append(f"{cross} event(s) were deduplicated with an older rollout: their count and first time include that rollout")
    repeated = [e for e in lossy if e.count and e.count > 1 and not e.cross_rollout]
    if repeated:
        notes.append(f"{len(repeated)} Kubernetes event(s) occurred several times but only one time is known for each")
    if any(h.occurrences > 1 for h in halts) or (halts and any(e.lossy for e in entries)):
        notes.append("the halt count is a lower bound: Kubernetes may have merged or dropped halts")

    if source in ("none", "canary-status", STATUS_GAUGE) or (entries and len(lossy) == len(entries) and (agg or cross)):
        confidence = "low"
    elif lossy or reason.startswith("inferred"):
        confidence = "medium"
    else:
        confidence = "high"

    return Timeline(
        outcome=outcome,
        outcome_reason=reason,
        outcome_source=source,
        started_at=started_at,
        first_traffic_at=first_up.time if first_up else None,
        first_halt_at=halts[0].time if halts else None,
        rollback_at=rollback_at,
        rollback_inferred=rollback_inferred,
        rollback_reason=rollback_ev.message if rollback_ev else None,
        promotion_started_at=first["promote-start"].time if first["promote-start"] else None,
        promoted_at=promoted_ev.time if promoted_ev else None,
        failed_at=failed_at,
        traffic_to_primary_at=back.time if back else None,
        max_weight=int(max_weight),
        failed_checks_reported=reported,
        restarts=restarts,
        weight_steps=tuple(steps),
        halts=halts,
        entries=tuple(entries),
        confidence=confidence,
        notes=tuple(notes),
    )


def _reported_checks(ev: TimelineEntry | None) -> int | None:
    m = _THRESHOLD.search(ev.message) if ev is not None and ev.action == "rollback" else None
    return int(m.group(1)) if m else None


def _gauge_drop(gauge: WeightSeries, after: int, hi: int) -> dt.datetime | None:
    """Return when the gauge shows the canary back at 0 for good in ``(after, hi]``, or None."""
    inside = (gauge.times > after) & (gauge.times <= hi)
    t, w = gauge.times[inside], gauge.weights[inside]
    if t.size == 0 or w[-1] != 0:
        return None
    up = np.flatnonzero(w > 0)
    if up.size:
        return _dt(int(t[up[-1] + 1]))
    # No positive sample after ``after``: the gauge must have been above 0 when it began.
    return _dt(int(t[0])) if float(gauge.at(np.array([after]))[0]) > 0 else None


def _cross_check_zero(steps: list[WeightStep], gauge: WeightSeries, hi: int, notes: list[str]) -> list[WeightStep]:
    """Return the event steps with the canary's return to 0 checked against Flagger's weight gauge.

    The events may miss it (no terminal event, or "Routing all traffic to primary" folded
    into "Promotion completed!", which comes one interval later): where the gauge shows the
    canary at 0 earlier, or at all, that drop is the return to 0.
    """
    last = steps[-1]
    up = [s for s in steps if s.weight > 0]
    if not up:
        return steps
    if last.weight > 0:
        drop = _gauge_drop(gauge, _ms(last.time), hi)
        if drop is not None:
            notes.append(
                f"no event sets the canary's weight back to 0, but Flagger's weight gauge shows it at 0 from {rfc3339(drop)} "
                "(scrape precision)"
            )
            return [*steps, WeightStep(drop, 0, "gauge")]
    elif last.action in INFERRED_ZERO:
        drop = _gauge_drop(gauge, _ms(up[-1].time), _ms(last.time))
        if drop is not None and drop < last.time:
            notes.append(
                f"no event says when the canary's weight went back to 0 before '{last.action}' at {rfc3339(last.time)}; "
                f"Flagger's weight gauge shows it at 0 from {rfc3339(drop)} (scrape precision)"
            )
            return [*steps[:-1], WeightStep(drop, 0, "gauge")]
    return steps


def _gauge_steps(gauge: WeightSeries, lo: int, hi: int) -> list[WeightStep]:
    steps = []
    current = 0.0
    for t, w in zip(gauge.times.tolist(), gauge.weights.tolist(), strict=True):
        if t < lo or t > hi or w == current:
            continue
        steps.append(WeightStep(_dt(int(t)), int(w), "gauge"))
        current = w
    return steps


def _status_change(status: StatusSeries | None, start: dt.datetime | None, end: dt.datetime | None) -> StatusChange | None:
    """Return where Flagger's status gauge left 0 (Progressing) inside ``(start, end]``, or None.

    The first 2 (Failed) after a 0 wins: a failed rollout is over.  Otherwise the first 1 after
    the last 0 — a 1 followed by a 0 again was a phase the rollout went on from.  A 0 in force
    at ``start`` counts (the rollout began before the first scrape of the span).
    """
    if status is None or status.empty:
        return None
    lo = _ms(start) if start is not None else int(status.times[0]) - 1
    hi = _ms(end) if end is not None else int(status.times[-1])
    seen_zero = status.value_at(lo) == 0
    one: int | None = None
    for t, v in zip(status.times.tolist(), status.values.tolist(), strict=True):
        if t <= lo or t > hi or not math.isfinite(v):
            continue
        value = round(v)
        if value == 0:
            seen_zero, one = True, None
        elif seen_zero and value == 2:
            return StatusChange(_dt(int(t)), 2)
        elif seen_zero and one is None:
            one = int(t)
    return StatusChange(_dt(one), 1) if one is not None else None


def _promotion_weight(canary: Mapping[str, Any] | None) -> int | None:
    """Return the canary weight at which Flagger promotes (scheduler.go ``maxWeight()``), None without a spec."""
    spec = (canary or {}).get("spec")
    analysis = (spec.get("analysis") or spec.get("canaryAnalysis")) if isinstance(spec, Mapping) else None
    if not isinstance(analysis, Mapping):
        return None
    steps = analysis.get("stepWeights")
    if isinstance(steps, list) and steps and all(isinstance(w, (int, float)) for w in steps):
        return min(100, int(steps[-1]))
    mw = analysis.get("maxWeight")
    return int(mw) if isinstance(mw, (int, float)) and not isinstance(mw, bool) and mw > 0 else 100


@dataclass(frozen=True)
class _StatusFallback:
    """What the status-gauge fallback needs to know besides the events."""

    change: StatusChange | None
    steps: list[WeightStep]
    back: WeightStep | None
    max_weight: int
    promotion_weight: int | None


def _from_status_gauge(
    fb: _StatusFallback, halts: tuple[Halt, ...], not_ready: bool, notes: list[str]
) -> tuple[str, str, str] | None:
    """Return the outcome Flagger's status gauge shows, or None when it shows none."""
    change = fb.change
    if change is None:
        return None
    when = rfc3339(change.time)
    if change.value == 2:
        weighted = any(s.weight > 0 and s.time <= change.time for s in fb.steps)
        notes.append(
            "no terminal event and no usable Canary status: the outcome comes from Flagger's flagger_canary_status gauge, "
            f"0 (Progressing) → 2 (Failed) at {when}; that scrape is taken as the "
            + ("rollback" if weighted else "failure")
            + " time (scrape precision: it happened at most one scrape interval earlier)"
        )
        head = f"from flagger_canary_status: 0 (Progressing) → 2 (Failed) at {when}"
        if weighted and halts:
            return "rolled_back", f"{head} after {len(halts)} halt(s); the rollback events are missing", STATUS_GAUGE
        if weighted:
            return (
                "rolled_back",
                f"{head} after the canary's weight was above 0: the rollback events are missing, so whether failed checks, "
                "a manual rollback or the progress deadline caused it is unknown",
                STATUS_GAUGE,
            )
        if not_ready:
            return "failed", f"{head} after 'not ready' events, the canary's weight never above 0", STATUS_GAUGE
        return "failed", f"{head} with the canary's weight never above 0: no rollback of traffic", STATUS_GAUGE
    # A 1 after Progressing is any phase but Failed: Promoting and Succeeded, but also
    # WaitingPromotion (a closed confirm-promotion gate).  Only a weight that reached the last
    # step and came back to 0 makes it a promotion.
    reached = fb.promotion_weight is not None and fb.max_weight >= fb.promotion_weight
    if reached and fb.back is not None:
        notes.append(
            "no terminal event and no usable Canary status: the outcome comes from Flagger's flagger_canary_status gauge, "
            f"0 (Progressing) → 1 at {when} (a phase other than Progressing and Failed), with the canary's weight at the last "
            f"step ({fb.max_weight} % ≥ {fb.promotion_weight} %) and back at 0 at {rfc3339(fb.back.time)}; promoted_at stays "
            "empty: no 'Promotion completed!' event, and the gauge's time is only a scrape time of the promotion's start"
        )
        return (
            "promoted",
            f"from flagger_canary_status: 0 (Progressing) → 1 at {when}, the canary's weight at the last step "
            f"({fb.max_weight} %) and back at 0 at {rfc3339(fb.back.time)}; the promotion events are missing",
            STATUS_GAUGE,
        )
    why = (
        "the Canary's spec (its last weight step) is not in the bundle"
        if fb.promotion_weight is None
        else f"the canary's weight reached {fb.max_weight} %, not the last step {fb.promotion_weight} %"
        if not reached
        else "the canary's weight is not back at 0"
    )
    notes.append(
        f"Flagger's flagger_canary_status went 0 (Progressing) → 1 at {when}, but {why}: that is no completed promotion "
        "(1 is every phase but Progressing and Failed, WaitingPromotion too), so it does not decide the outcome"
    )
    return None


def _classify(
    entries: list[TimelineEntry],
    halts: tuple[Halt, ...],
    canary: Mapping[str, Any] | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    notes: list[str],
    back: WeightStep | None,
    fallback: _StatusFallback,
) -> tuple[str, str, str]:
    actions = [e.action for e in entries]
    terminal = next((e for e in entries if e.action in TERMINAL), None)
    not_ready = any(a in ("not-ready",) for a in actions)
    if terminal is not None:
        a = terminal.action
        if a == "promoted":
            return "promoted", "Promotion completed", "events"
        if a == "promotion-failed":
            return (
                "failed",
                "promotion failed: the primary was not ready (Flagger >= 1.44 sends traffic back to the canary, no 'Canary failed!')",
                "events",
            )
        if a == "rollback-manual" or "rollback-manual" in actions:
            return "rolled_back", "manual rollback webhook invoked", "events"
        if a == "rollback" or "rollback" in actions:
            n = next((e for e in entries if e.action == "rollback"), None)
            return "rolled_back", "failed checks threshold reached" + (f" ({_count_text(n)})" if n else ""), "events"
        if a == "rollback-deadline":
            return "failed", "progress deadline exceeded", "events"
        # "Canary failed!" without a "Rolling back" line.
        if not_ready:
            return (
                "failed",
                "the canary never became ready (progress deadline): 'Canary failed!' with no 'Rolling back' line and no alert — "
                "Flagger's silent failure",
                "events",
            )
        if halts:
            return (
                "rolled_back",
                f"inferred: 'Canary failed!' after {len(halts)} halt(s); the 'Rolling back' line is missing from the record",
                "events",
            )
        return "failed", "inferred: 'Canary failed!' with no recorded cause", "events"
    # No terminal event: the Canary's status is the fallback, when it belongs to this span.
    status = (canary or {}).get("status") or {}
    phase = status.get("phase") if isinstance(status, Mapping) else None
    changed = _time(status.get("lastTransitionTime")) if isinstance(status, Mapping) else None
    earlier = changed is not None and start is not None and changed < start - _TOLERANCE
    # The bundle's Canary object is its state at collection time: a status that changed after
    # the evaluated span was set by a later rollout (or after the window) and says nothing of this one.
    later = changed is not None and end is not None and changed > end + _TOLERANCE
    stale = earlier or later
    if phase in ("Succeeded", "Failed") and not stale:
        notes.append(f"no terminal event in the record: the outcome comes from the Canary's status (phase {phase})")
        if phase == "Succeeded":
            return "promoted", "from the Canary's status: phase Succeeded (the promotion events are missing)", "canary-status"
        if not_ready:
            return "failed", "from the Canary's status: phase Failed after 'not ready' events", "canary-status"
        if halts:
            return "rolled_back", f"from the Canary's status: phase Failed after {len(halts)} halt(s)", "canary-status"
        if back is not None:
            return (
                "rolled_back",
                f"inferred from the Canary's status (phase Failed) and its weight back at 0 at {rfc3339(back.time)}: "
                "the rollback events are missing, so whether failed checks, a manual rollback or the progress deadline "
                "caused it is unknown",
                "canary-status",
            )
        return (
            "failed",
            "from the Canary's status: phase Failed; the events do not say whether checks failed or the canary was never ready",
            "canary-status",
        )
    if earlier and phase:
        notes.append(f"the Canary's status (phase {phase}) predates this rollout and was not used")
    elif later and phase and changed is not None and end is not None:
        notes.append(
            f"the Canary's status (phase {phase} since {rfc3339(changed)}) was set after the evaluated span "
            f"(which ends {rfc3339(end)}): it describes a later state — a later rollout, or this one after the window — "
            "and was not used"
        )
    if not (phase in RUNNING_PHASES and not stale):
        # Below the events and a Canary status of this span: Flagger's status gauge.
        decided = _from_status_gauge(fallback, halts, not_ready, notes)
        if decided is not None:
            return decided
    if back is not None and back.action == "gauge":
        # Only Flagger's weight gauge shows the canary back at 0: a promotion and a rollback
        # both end that way, and no event ("Routing all traffic to primary" is the promotion's)
        # nor a status of this rollout says which, so neither is claimed.
        return (
            "unknown",
            f"the canary's weight went back to 0 at {rfc3339(back.time)} (Flagger's weight gauge), but no terminal event "
            "and no Canary status of this rollout say whether it was promoted, rolled back or failed",
            "none",
        )
    if entries:
        if phase in RUNNING_PHASES and not stale:
            return "in_progress", f"no terminal event yet; the Canary's status is {phase}", "events"
        return (
            "in_progress",
            "no terminal event in the record: the rollout was still running, or its last events were lost",
            "events",
        )
    return "unknown", "no event of this rollout in the bundle and no usable Canary status", "none"


def _count_text(e: TimelineEntry) -> str:
    n = _reported_checks(e)
    return f"{n} failed checks" if n is not None else e.message
