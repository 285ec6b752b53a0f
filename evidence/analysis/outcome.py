"""The outcome of a rollout as Flagger recorded it, with the fallbacks when its events are gone.

See ``evidence.analysis.timeline`` for the rules; this module holds the classification and
the Canary-status and ``flagger_canary_status`` fallbacks.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from evidence.analysis.records import (
    RUNNING_PHASES,
    STATUS_GAUGE,
    TERMINAL,
    TOLERANCE,
    Halt,
    StatusChange,
    TimelineEntry,
    WeightStep,
    parse_when,
    reported_checks,
)
from evidence.analysis.traffic import StatusSeries
from evidence.canary import CanarySpec
from evidence.model import Action, OutcomeCause, OutcomeSource, epoch_ms, from_epoch_ms, rfc3339


def status_change(status: StatusSeries | None, start: dt.datetime | None, end: dt.datetime | None) -> StatusChange | None:
    """Return where Flagger's status gauge left 0 (Progressing) inside ``(start, end]``, or None.

    The first 2 (Failed) after a 0 wins: a failed rollout is over.  Otherwise the first 1 after
    the last 0 — a 1 followed by a 0 again was a phase the rollout went on from.  A 0 in force
    at ``start`` counts (the rollout began before the first scrape of the span).
    """
    if status is None or status.empty:
        return None
    lo = epoch_ms(start) if start is not None else int(status.times[0]) - 1
    hi = epoch_ms(end) if end is not None else int(status.times[-1])
    seen_zero = status.value_at(lo) == 0
    one: int | None = None
    for t, v in zip(status.times.tolist(), status.values.tolist(), strict=True):
        if t <= lo or t > hi or not math.isfinite(v):
            continue
        value = round(v)
        if value == 0:
            seen_zero, one = True, None
        elif seen_zero and value == 2:
            return StatusChange(from_epoch_ms(int(t)), 2)
        elif seen_zero and one is None:
            one = int(t)
    return StatusChange(from_epoch_ms(one), 1) if one is not None else None


def promotion_weight(canary: Mapping[str, Any] | None) -> int | None:
    """Return the canary weight at which Flagger promotes (scheduler.go ``maxWeight()``), None without a spec."""
    spec = CanarySpec.from_object(dict(canary or {}))
    if not spec.has_analysis:
        return None
    if spec.step_weights:
        return min(100, spec.step_weights[-1])
    mw = spec.max_weight
    return mw if mw is not None and mw > 0 else 100


@dataclass(frozen=True)
class StatusFallback:
    """What the status-gauge fallback needs to know besides the events."""

    change: StatusChange | None
    steps: list[WeightStep]
    back: WeightStep | None
    max_weight: int
    promotion_weight: int | None


def _from_status_gauge(
    fb: StatusFallback, halts: tuple[Halt, ...], not_ready: bool, notes: list[str]
) -> tuple[str, str, OutcomeSource, OutcomeCause] | None:
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
            return (
                "rolled_back",
                f"{head} after {len(halts)} halt(s); the rollback events are missing",
                STATUS_GAUGE,
                OutcomeCause.HALTS,
            )
        if weighted:
            return (
                "rolled_back",
                f"{head} after the canary's weight was above 0: the rollback events are missing, so whether failed checks, "
                "a manual rollback or the progress deadline caused it is unknown",
                STATUS_GAUGE,
                OutcomeCause.UNKNOWN,
            )
        if not_ready:
            return (
                "failed",
                f"{head} after 'not ready' events, the canary's weight never above 0",
                STATUS_GAUGE,
                OutcomeCause.NEVER_READY,
            )
        return (
            "failed",
            f"{head} with the canary's weight never above 0: no rollback of traffic",
            STATUS_GAUGE,
            OutcomeCause.UNKNOWN,
        )
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
            OutcomeCause.PROMOTED,
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


def classify(
    entries: list[TimelineEntry],
    halts: tuple[Halt, ...],
    canary: Mapping[str, Any] | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    notes: list[str],
    back: WeightStep | None,
    fallback: StatusFallback,
) -> tuple[str, str, OutcomeSource, OutcomeCause]:
    actions = [e.action for e in entries]
    terminal = next((e for e in entries if e.action in TERMINAL), None)
    not_ready = any(a in ("not-ready",) for a in actions)
    if terminal is not None:
        a = terminal.action
        if a == "promoted":
            return "promoted", "Promotion completed", OutcomeSource.EVENTS, OutcomeCause.PROMOTED
        if a == "promotion-failed":
            return (
                "failed",
                "promotion failed: the primary was not ready (Flagger >= 1.44 sends traffic back to the canary, no 'Canary failed!')",
                OutcomeSource.EVENTS,
                OutcomeCause.PROMOTION_FAILED,
            )
        if a == "rollback-manual" or "rollback-manual" in actions:
            return "rolled_back", "manual rollback webhook invoked", OutcomeSource.EVENTS, OutcomeCause.MANUAL
        if a == "rollback" or "rollback" in actions:
            n = next((e for e in entries if e.action == "rollback"), None)
            text = "failed checks threshold reached" + (f" ({_count_text(n)})" if n else "")
            if _metrics_unavailable(halts):
                return (
                    "rolled_back",
                    text + f": {_OUTAGE}",
                    OutcomeSource.EVENTS,
                    OutcomeCause.METRICS_UNAVAILABLE,
                )
            return "rolled_back", text, OutcomeSource.EVENTS, OutcomeCause.THRESHOLD_REACHED
        if a == "rollback-deadline":
            return "failed", "progress deadline exceeded", OutcomeSource.EVENTS, OutcomeCause.DEADLINE_EXCEEDED
        # "Canary failed!" without a "Rolling back" line.
        if not_ready:
            return (
                "failed",
                "the canary never became ready (progress deadline): 'Canary failed!' with no 'Rolling back' line and no alert — "
                "Flagger's silent failure",
                OutcomeSource.EVENTS,
                OutcomeCause.NEVER_READY,
            )
        if halts:
            return (
                "rolled_back",
                f"inferred: 'Canary failed!' after {len(halts)} failed check(s); the 'Rolling back' line is missing from the record"
                + (f"; {_OUTAGE}" if _metrics_unavailable(halts) else ""),
                OutcomeSource.EVENTS,
                OutcomeCause.METRICS_UNAVAILABLE if _metrics_unavailable(halts) else OutcomeCause.HALTS,
            )
        return "failed", "inferred: 'Canary failed!' with no recorded cause", OutcomeSource.EVENTS, OutcomeCause.UNKNOWN
    # No terminal event: the Canary's status is the fallback, when it belongs to this span.
    status = (canary or {}).get("status") or {}
    phase = status.get("phase") if isinstance(status, Mapping) else None
    changed = parse_when(status.get("lastTransitionTime")) if isinstance(status, Mapping) else None
    earlier = changed is not None and start is not None and changed < start - TOLERANCE
    # The bundle's Canary object is its state at collection time: a status that changed after
    # the evaluated span was set by a later rollout (or after the window) and says nothing of this one.
    later = changed is not None and end is not None and changed > end + TOLERANCE
    stale = earlier or later
    if phase in ("Succeeded", "Failed") and not stale:
        notes.append(f"no terminal event in the record: the outcome comes from the Canary's status (phase {phase})")
        if phase == "Succeeded":
            return (
                "promoted",
                "from the Canary's status: phase Succeeded (the promotion events are missing)",
                OutcomeSource.CANARY_STATUS,
                OutcomeCause.PROMOTED,
            )
        if not_ready:
            return (
                "failed",
                "from the Canary's status: phase Failed after 'not ready' events",
                OutcomeSource.CANARY_STATUS,
                OutcomeCause.NEVER_READY,
            )
        if halts:
            return (
                "rolled_back",
                f"from the Canary's status: phase Failed after {len(halts)} halt(s)",
                OutcomeSource.CANARY_STATUS,
                OutcomeCause.HALTS,
            )
        if back is not None:
            return (
                "rolled_back",
                f"inferred from the Canary's status (phase Failed) and its weight back at 0 at {rfc3339(back.time)}: "
                "the rollback events are missing, so whether failed checks, a manual rollback or the progress deadline "
                "caused it is unknown",
                OutcomeSource.CANARY_STATUS,
                OutcomeCause.UNKNOWN,
            )
        return (
            "failed",
            "from the Canary's status: phase Failed; the events do not say whether checks failed or the canary was never ready",
            OutcomeSource.CANARY_STATUS,
            OutcomeCause.UNKNOWN,
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
            OutcomeSource.NONE,
            OutcomeCause.UNKNOWN,
        )
    if entries:
        if phase in RUNNING_PHASES and not stale:
            return (
                "in_progress",
                f"no terminal event yet; the Canary's status is {phase}",
                OutcomeSource.EVENTS,
                OutcomeCause.RUNNING,
            )
        return (
            "in_progress",
            "no terminal event in the record: the rollout was still running, or its last events were lost",
            OutcomeSource.EVENTS,
            OutcomeCause.RUNNING,
        )
    return (
        "unknown",
        "no event of this rollout in the bundle and no usable Canary status",
        OutcomeSource.NONE,
        OutcomeCause.UNKNOWN,
    )


_OUTAGE = (
    "every failed check was a metrics query that failed (the metrics server was unreachable or refused it), not a measured breach"
)


def _metrics_unavailable(halts: tuple[Halt, ...]) -> bool:
    """Return whether every failed check of the rollout was a query the metrics server failed."""
    return bool(halts) and all(h.kind == Action.QUERY_FAILED for h in halts)


def _count_text(e: TimelineEntry) -> str:
    n = reported_checks(e)
    return f"{n} failed checks" if n is not None else e.message
