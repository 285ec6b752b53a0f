"""Detection lag: first policy breach → Flagger's first halt → rollback decision → canary traffic at 0."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from evidence.analysis.criteria import CriterionResult


@dataclass(frozen=True)
class DetectionLag:
    """How late the abort came; each step is None when one of its ends is missing.

    ``detection_lag_seconds`` is the rollback decision minus the earliest breach, when both
    exist (negative when Flagger rolled back before the policy saw a breach).
    """

    first_breach_at: dt.datetime | None
    first_breach_criterion: str | None
    first_halt_at: dt.datetime | None
    rollback_at: dt.datetime | None
    canary_traffic_zero_at: dt.datetime | None
    breach_to_halt_seconds: float | None
    halt_to_rollback_seconds: float | None
    rollback_to_traffic_zero_seconds: float | None
    breach_to_traffic_zero_seconds: float | None
    detection_lag_seconds: float | None


def _secs(a: dt.datetime | None, b: dt.datetime | None) -> float | None:
    return None if a is None or b is None else round((b - a).total_seconds(), 3)


def detection_lag(
    criteria: Sequence[CriterionResult],
    first_halt_at: dt.datetime | None,
    rollback_at: dt.datetime | None,
    canary_traffic_zero_at: dt.datetime | None,
) -> DetectionLag:
    """Return the detection-lag breakdown."""
    breached = [c for c in criteria if c.first_breach_at is not None]
    first = min(breached, key=lambda c: c.first_breach_at or dt.datetime.max.replace(tzinfo=dt.UTC)) if breached else None
    at = first.first_breach_at if first else None
    return DetectionLag(
        first_breach_at=at,
        first_breach_criterion=first.name if first else None,
        first_halt_at=first_halt_at,
        rollback_at=rollback_at,
        canary_traffic_zero_at=canary_traffic_zero_at,
        breach_to_halt_seconds=_secs(at, first_halt_at),
        halt_to_rollback_seconds=_secs(first_halt_at, rollback_at),
        rollback_to_traffic_zero_seconds=_secs(rollback_at, canary_traffic_zero_at),
        breach_to_traffic_zero_seconds=_secs(at, canary_traffic_zero_at),
        detection_lag_seconds=_secs(at, rollback_at),
    )
