"""Flagger's side of a rollout, from the bundle's event record: outcome, weight steps, halts.

The records live in ``evidence.analysis.records`` and the outcome rules in
``evidence.analysis.outcome``; this module builds the timeline from them.

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
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from evidence.analysis.outcome import StatusFallback, classify, promotion_weight, status_change
from evidence.analysis.records import (
    ENDED,
    INFERRED_ZERO,
    LOSSLESS,
    MANIFEST_START,
    PRIMARY_WEIGHT,
    ROLLBACK_ACTIONS,
    ROLLOUT_START,
    STATUS_GAUGE,
    TERMINAL,
    TOLERANCE,
    Halt,
    StatusChange,
    Timeline,
    TimelineEntry,
    WeightStep,
    opt_float,
    opt_int,
    opt_str,
    reported_checks,
)
from evidence.analysis.traffic import StatusSeries, WeightSeries
from evidence.canary import CanarySpec
from evidence.flagger import FAILED_CHECK_ACTIONS, parse_message, strip_combined
from evidence.model import epoch_ms, from_epoch_ms, rfc3339

__all__ = [
    "ENDED",
    "INFERRED_ZERO",
    "MANIFEST_START",
    "ROLLBACK_ACTIONS",
    "ROLLOUT_START",
    "STATUS_GAUGE",
    "TERMINAL",
    "Halt",
    "StatusChange",
    "Timeline",
    "TimelineEntry",
    "WeightStep",
    "build_timeline",
    "rollout_span",
    "timeline_entries",
]


# Actions an older bundle may hold for messages Flagger counts as failed checks.
_REPARSED = ("other", "error")


def timeline_entries(events: pd.DataFrame) -> list[TimelineEntry]:
    """Return the events table as timeline entries in time order (parse once, pass to ``rollout_span`` and ``build_timeline``)."""
    cols = set(events.columns)
    if "time" not in cols or events.empty:
        return []
    n = len(events)
    # Column lists and one vectorised conversion of the times: per-row access (to_dict, Timestamp)
    # costs ~100 µs a row, which is most of a minute for 100k events.
    stamps = pd.to_datetime(events["time"], utc=True, errors="coerce")
    missing = stamps.isna().to_numpy()
    pytimes = list(pd.DatetimeIndex(stamps).to_pydatetime())  # no Series.dt.to_pydatetime: pandas 2.2 warns on it

    def col(name: str) -> list[Any]:
        return events[name].tolist() if name in cols else [None] * n

    rows = zip(
        *(col(c) for c in ("sources", "action", "weight", "message", "type", "metric", "value", "threshold", "comparator")),
        col("k8s_count"),
        col("aggregated"),
        col("cross_rollout"),
        strict=True,
    )
    out = []
    for i, (src, act, wt, msg, typ, metric, value, threshold, comparator, count, aggregated, cross) in enumerate(rows):
        if missing[i]:
            continue
        sources = opt_str(src) or ""
        action = opt_str(act) or "other"
        weight = opt_int(wt)
        message = opt_str(msg) or ""
        if action in _REPARSED:
            # A bundle written before its message was known (``404s percentage``, query errors): read it again.
            p = parse_message(strip_combined(message)[0])
            if p.action.value != action:
                action, metric, value, threshold, comparator = p.action.value, p.metric, p.value, p.threshold, p.comparator
                weight = p.weight if p.weight is not None else weight
        if action == "promote-step" and weight is None:
            m = PRIMARY_WEIGHT.search(message)
            weight = 100 - int(m.group(1)) if m else None
        out.append(
            TimelineEntry(
                time=pytimes[i],
                action=action,
                type=opt_str(typ) or "",
                message=message,
                weight=weight,
                metric=opt_str(metric),
                value=opt_float(value),
                threshold=opt_float(threshold),
                comparator=opt_str(comparator),
                sources=sources,
                count=opt_int(count) if "k8s_count" in cols else None,
                lossy=not any(s.strip() in LOSSLESS for s in sources.split(",")),
                aggregated=bool(aggregated) if opt_str(aggregated) is not None else False,
                cross_rollout=bool(cross) if opt_str(cross) is not None else False,
            )
        )
    out.sort(key=lambda e: e.time)
    return out


def rollout_span(
    events: pd.DataFrame,
    window_start: dt.datetime,
    window_end: dt.datetime,
    rollout_start: dt.datetime | None,
    entries: list[TimelineEntry] | None = None,
) -> tuple[dt.datetime, dt.datetime, str]:
    """Return (start, end, how) of the rollout to evaluate inside the bundle's window.

    The start is the manifest's rollout start, else the latest ``New revision detected!`` (or
    ``Restarting analysis``) event, else the window start.  The end is the window's end, cut
    at the next rollout's start when the window holds a later one.  ``entries``: the events
    as ``timeline_entries`` returned them, when the caller has them.
    """
    entries = timeline_entries(events) if entries is None else entries
    starts = [e.time for e in entries if e.action in ROLLOUT_START and window_start <= e.time <= window_end]
    how = MANIFEST_START
    start = rollout_start
    if start is None:
        if starts:
            start, how = max(starts), "started at the latest new-revision event (the manifest has no rollout start)"
        else:
            start, how = window_start, "started at the window's start (no rollout start recorded)"
    start = max(start, window_start)
    later = [e.time for e in entries if e.action == "new-revision" and start + TOLERANCE < e.time <= window_end]
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
    entries: list[TimelineEntry] | None = None,
) -> Timeline:
    """Return Flagger's timeline of the rollout between ``start`` and ``end``.

    Without ``start``, the latest rollout in the record; either way the timeline stops before
    a later ``New revision detected! Scaling up`` (the next rollout).  ``gauge`` (Flagger's
    weight gauge) fills in the weight steps when the events have none, and raises
    ``max_weight`` when it saw a higher weight than the events.  ``status`` (Flagger's status
    gauge) is the last fallback for the outcome (see the module docstring).  ``entries``: the
    events as ``timeline_entries`` returned them, when the caller has them.
    """
    notes: list[str] = []
    entries = [
        e
        for e in (timeline_entries(events) if entries is None else entries)
        if (start is None or e.time >= start - TOLERANCE) and (end is None or e.time <= end) and e.action != "other"
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
        lo = epoch_ms(start) if start else int(gauge.times[0])
        hi = epoch_ms(end) if end else int(gauge.times[-1])
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
            e.action,
        )
        for e in entries
        if e.action in FAILED_CHECK_ACTIONS
    )
    first = {a: next((e for e in entries if e.action == a), None) for a in (*TERMINAL, "promote-start")}
    rollback_ev = next((e for e in entries if e.action in ROLLBACK_ACTIONS), None)
    promoted_ev = first["promoted"]
    failed_ev = next((e for e in entries if e.action in ("failed", "promotion-failed", "rollback-deadline")), None)
    first_up = next((s for s in steps if s.weight > 0), None)
    # Back at 0 for good: the last step, when it is 0 (a restart drops to 0 and climbs again).
    back = steps[-1] if steps and steps[-1].weight == 0 and first_up is not None and steps[-1].time > first_up.time else None
    reported = reported_checks(rollback_ev)
    failed_checks = count_failed_checks(entries, reported, CanarySpec.from_object(dict(canary or {})).interval_s)

    change = status_change(status, start, end)
    fallback = StatusFallback(change, steps, back, int(max_weight), promotion_weight(canary))
    outcome, reason, source, cause = classify(entries, halts, canary, start, end, notes, back, fallback)
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
        outcome_cause=cause,
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
        failed_checks=failed_checks,
        restarts=restarts,
        weight_steps=tuple(steps),
        halts=halts,
        entries=tuple(entries),
        confidence=confidence,
        notes=tuple(notes),
    )


def count_failed_checks(entries: list[TimelineEntry], reported: int | None, interval_s: float) -> int | None:
    """Return the failed checks Flagger counted in the rollout, None when the record holds no event of it.

    ``Rolling back … threshold reached N`` states it: N.  Otherwise the failed-check messages
    (reference §2.2: the ``Halt``s but the approval gates, and the query and template errors)
    since the last start or restart of the analysis (a restart resets the count), at most one
    per tick: Flagger stops a tick at its first failure, so two within half an analysis
    interval are one tick seen twice.  A Kubernetes Event's ``count`` adds its repeats.
    """
    if reported is not None:
        return reported
    if not entries:
        return None
    restart = max((i for i, e in enumerate(entries) if e.action == "restart"), default=-1)
    n, last = 0, None
    for e in entries[restart + 1 :]:
        if e.action not in FAILED_CHECK_ACTIONS:
            continue
        if last is not None and (e.time - last).total_seconds() < interval_s / 2:
            continue
        n += e.count if (e.lossy and e.count and e.count > 1 and not e.cross_rollout) else 1
        last = e.time
    return n


def _gauge_drop(gauge: WeightSeries, after: int, hi: int) -> dt.datetime | None:
    """Return when the gauge shows the canary back at 0 for good in ``(after, hi]``, or None."""
    inside = (gauge.times > after) & (gauge.times <= hi)
    t, w = gauge.times[inside], gauge.weights[inside]
    if t.size == 0 or w[-1] != 0:
        return None
    up = np.flatnonzero(w > 0)
    if up.size:
        return from_epoch_ms(int(t[up[-1] + 1]))
    # No positive sample after ``after``: the gauge must have been above 0 when it began.
    return from_epoch_ms(int(t[0])) if float(gauge.at(np.array([after]))[0]) > 0 else None


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
        drop = _gauge_drop(gauge, epoch_ms(last.time), hi)
        if drop is not None:
            notes.append(
                f"no event sets the canary's weight back to 0, but Flagger's weight gauge shows it at 0 from {rfc3339(drop)} "
                "(scrape precision)"
            )
            return [*steps, WeightStep(drop, 0, "gauge")]
    elif last.action in INFERRED_ZERO:
        drop = _gauge_drop(gauge, epoch_ms(up[-1].time), epoch_ms(last.time))
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
        steps.append(WeightStep(from_epoch_ms(int(t)), int(w), "gauge"))
        current = w
    return steps
