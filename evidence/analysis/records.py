"""The records a rollout's timeline is made of, and the small parsers they share."""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from evidence.analysis.traffic import WeightSeries
from evidence.model import OutcomeCause, OutcomeSource, epoch_ms

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
STATUS_GAUGE = OutcomeSource.STATUS_GAUGE  # outcome_source when flagger_canary_status decided the outcome
LOSSLESS = ("webhook", "log")
PRIMARY_WEIGHT = re.compile(r"primary weight (\d+)")
THRESHOLD_RE = re.compile(r"threshold reached (\d+)")
TOLERANCE = dt.timedelta(seconds=2)
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
    """A failed check (a ``Halt …`` or a query/template error, reference §2.2): which check failed, its value and threshold."""

    time: dt.datetime
    metric: str | None
    value: float | None
    threshold: float | None
    comparator: str | None
    message: str
    occurrences: int  # >1 when a Kubernetes Event merged several identical halts
    kind: str = "halt"  # the action: halt, query-failed (the metrics server failed the query) or check-error


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
    outcome_source: OutcomeSource
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
    failed_checks: (
        int | None
    )  # Flagger's failedChecks for the rollout: N of "threshold reached N", else the failed-check messages
    restarts: int
    weight_steps: tuple[WeightStep, ...]
    halts: tuple[Halt, ...]
    entries: tuple[TimelineEntry, ...]
    confidence: str  # high | medium | low
    notes: tuple[str, ...]
    outcome_cause: OutcomeCause = OutcomeCause.UNKNOWN  # why, as findings test it (never the reason's prose)

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
        t = np.array([epoch_ms(s.time) for s in self.weight_steps], dtype=np.int64)
        w = np.array([float(s.weight) for s in self.weight_steps])
        return WeightSeries(t, w, src)


def opt_float(v: Any) -> float | None:
    """Return a float, or None for missing values (None, NA, NaN)."""
    if v is None or v is pd.NA:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def opt_int(v: Any) -> int | None:
    """Return an int, or None for missing values."""
    f = opt_float(v)
    return None if f is None else int(f)


def opt_str(v: Any) -> str | None:
    """Return a string, or None for missing values."""
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return None
    return str(v)


def parse_when(v: Any) -> dt.datetime | None:
    """Return an aware UTC datetime from a timestamp-like value, or None."""
    if v is None or v is pd.NA or pd.isna(v):
        return None
    ts = pd.Timestamp(v)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    out: dt.datetime = ts.to_pydatetime()
    return out


def reported_checks(ev: TimelineEntry | None) -> int | None:
    """Return the failed-check count a ``Rolling back … threshold reached N`` event reports."""
    m = THRESHOLD_RE.search(ev.message) if ev is not None and ev.action == "rollback" else None
    return int(m.group(1)) if m else None
