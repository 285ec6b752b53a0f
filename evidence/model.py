"""The vocabulary every layer shares: plain frozen values, Flagger's words as enums, and the parsers.

Say a word once: a Go duration (a Canary's ``interval``, Flagger's halt messages) is read by
``parse_go_duration``, a time or duration a person types by ``parse_user_time`` and
``parse_user_duration``, a time stored in a bundle by ``parse_stored_time``; everything else asks them.
Logic tests these enums, never the wording of a sentence.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import durationpy

from evidence.errors import UsageError

UTC = dt.UTC
#: Times outside these years are typing mistakes (0001, 9999): refused before any arithmetic overflows.
MIN_YEAR, MAX_YEAR = 1971, 2999
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@dataclass(frozen=True, order=True)
class CanaryRef:
    """A Canary by namespace and name, as written ``NAMESPACE/CANARY``."""

    namespace: str
    name: str

    @classmethod
    def parse(cls, text: str) -> CanaryRef:
        """Parse ``NAMESPACE/CANARY``; raise UsageError naming the fix."""
        ns, sep, name = text.partition("/")
        if not sep or not ns or not name or "/" in name:
            raise UsageError(f"canary {text!r}: write it as NAMESPACE/CANARY, e.g. shop/podinfo")
        for part, what in ((ns, "namespace"), (name, "canary name")):
            if len(part) > 253 or not _NAME.fullmatch(part):
                raise UsageError(
                    f"canary {text!r}: {what} {part!r} is not a Kubernetes name (lower-case letters, digits, '-' and '.')"
                )
        return cls(ns, name)

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Window:
    """A time window, UTC, start inclusive and end inclusive."""

    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("Window needs time-zone-aware datetimes")

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


# ----- Flagger's and our words ------------------------------------------------------------------


class Action(StrEnum):
    """What a Flagger event says happened (``flagger.parse_message``), plus ``gauge`` for a weight seen only on a gauge."""

    NEW_REVISION = "new-revision"
    RESTART = "restart"
    START = "start"
    ADVANCE = "advance"
    ITERATION = "iteration"
    PROMOTE_STEP = "promote-step"
    PROMOTE_START = "promote-start"
    ROUTE_PRIMARY = "route-primary"
    ROUTE_CANARY = "route-canary"
    PROMOTED = "promoted"
    PROMOTION_FAILED = "promotion-failed"
    HALT = "halt"  # a failed check: a metric, a webhook or no values (``metric`` says which)
    QUERY_FAILED = "query-failed"  # a failed check: the metrics server did not answer the query (no "Halt")
    CHECK_ERROR = "check-error"  # a failed check: a template, its secret or provider is wrong (no "Halt")
    WAIT = "wait"
    PRIMARY_NOT_READY = "primary-not-ready"
    NOT_READY = "not-ready"
    ROLLBACK = "rollback"
    ROLLBACK_MANUAL = "rollback-manual"
    ROLLBACK_DEADLINE = "rollback-deadline"
    FAILED = "failed"
    HOOK_PASSED = "hook-passed"
    HOOK_FAILED = "hook-failed"
    HOOK_IDLE = "hook-idle"
    HOOK_ROLLBACK = "hook-rollback"
    INITIALIZED = "initialized"
    PROVIDERS_OK = "providers-ok"
    SUSPENDED = "suspended"
    TERMINATING = "terminating"
    ERROR = "error"
    OTHER = "other"
    GAUGE = "gauge"


class Outcome(StrEnum):
    """How a rollout ended."""

    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"
    IN_PROGRESS = "in_progress"
    UNKNOWN = "unknown"


class OutcomeSource(StrEnum):
    """What decided the outcome, from the most to the least direct."""

    EVENTS = "events"
    CANARY_STATUS = "canary-status"
    STATUS_GAUGE = "status-gauge"
    NONE = "none"


class OutcomeCause(StrEnum):
    """Why Flagger ended the rollout so (what findings test, never the reason's prose)."""

    PROMOTED = "promoted"
    NEVER_READY = "never_ready"
    PROMOTION_FAILED = "promotion_failed"
    THRESHOLD_REACHED = "threshold_reached"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    MANUAL = "manual"
    HALTS = "halts"  # rolled back after halts, the rollback's own line missing
    METRICS_UNAVAILABLE = "metrics_unavailable"  # rolled back: every failed check was a query the metrics server failed
    RUNNING = "running"
    UNKNOWN = "unknown"


class GapKind(StrEnum):
    """What a manifest gap records."""

    SCRAPE_GAP = "scrape_gap"
    QUERY_FAILED = "query_failed"
    QUERY_INVALID = "query_invalid"
    QUERY_EMPTY = "query_empty"


class Role(StrEnum):
    """Which side of the split a Traefik service series belongs to."""

    PRIMARY = "primary"
    CANARY = "canary"
    APEX = "apex"


# ----- durations -----------------------------------------------------------------------------------

_GO_DURATION = re.compile(r"^[-+]?(?:0|(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)$")
_USER_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_USER_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0, "y": 365 * 86400.0}


def parse_go_duration(text: str) -> float:
    """Return a Go ``time.Duration`` string (``1m30s``, ``1.5m``, ``500ms``) in seconds; raise ValueError if it is not one."""
    text = str(text).strip()
    if not _GO_DURATION.match(text):
        raise ValueError(f"{text!r} is not a Go duration (e.g. 1m, 30s, 1m30s, 500ms)")
    return float(durationpy.from_str(text).total_seconds())


def parse_user_duration(text: str, option: str) -> dt.timedelta:
    """Parse a duration a person types (Prometheus style: ``90s``, ``5m``, ``1h30m``, ``7d``, ``2w``, ``500ms``).

    Raise UsageError naming ``option``.
    """
    s = str(text).strip()
    parts = _USER_DURATION.findall(s)
    if not parts or "".join(n + u for n, u in parts) != s:
        raise UsageError(f"{option} {text!r}: not a duration; write e.g. 90s, 10m, 2h, 7d or 1h30m (units ms s m h d w)")
    return dt.timedelta(seconds=sum(float(n) * _USER_UNITS[u] for n, u in parts))


def prometheus_duration(text: str) -> float | None:
    """Return a Prometheus duration (``15d``, ``1y2w``, ``0s``) in seconds; None if it is not one."""
    try:
        return parse_user_duration(text, "").total_seconds()
    except UsageError:
        return None


# ----- times ---------------------------------------------------------------------------------------

_RELATIVE = re.compile(r"^now(?:\s*([-+])\s*(\S+))?$", re.I)
_NUMERIC = re.compile(r"^\d+(?:\.\d+)?$")


def _checked_year(t: dt.datetime, option: str, text: str) -> dt.datetime:
    if not MIN_YEAR <= t.year <= MAX_YEAR:
        raise UsageError(f"{option} {text!r}: the year {t.year} is outside {MIN_YEAR}–{MAX_YEAR}; check the time")
    return t


def parse_user_time(
    text: str, option: str, *, now: dt.datetime | None = None, warn: Callable[[str], None] | None = None
) -> dt.datetime:
    """Parse a time as people paste it; raise UsageError naming ``option``.

    Accepted: RFC3339 with or without fractional seconds (no zone: UTC, said through ``warn``),
    Unix seconds or milliseconds (more than 11 digits are milliseconds, as Grafana links carry them),
    ``now`` and ``now-2h``/``now+30m`` (durations as ``parse_user_duration``).
    """
    s = str(text).strip()
    rel = _RELATIVE.match(s)
    if rel:
        base = (now or dt.datetime.now(UTC)).astimezone(UTC)
        if rel.group(1) is None:
            return base
        delta = parse_user_duration(rel.group(2), option)
        return _checked_year(base - delta if rel.group(1) == "-" else base + delta, option, text)
    if _NUMERIC.match(s):
        value = float(s)
        seconds = value / 1000 if len(s.split(".")[0]) > 11 else value
        try:
            return _checked_year(dt.datetime.fromtimestamp(seconds, UTC), option, text)
        except (OverflowError, OSError, ValueError):
            raise UsageError(f"{option} {text!r}: not a Unix time in seconds or milliseconds") from None
    try:
        t = dt.datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{option} {text!r}: not a time; write RFC3339 (2026-11-20T10:00:00Z), Unix seconds or milliseconds, or now-2h"
        ) from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
        if warn is not None:
            warn(f"Warning: {option} {text!r} has no time zone; read as UTC ({rfc3339(t)})")
    return _checked_year(t.astimezone(UTC), option, text)


def parse_time(text: str, option: str) -> dt.datetime:
    """Parse an RFC3339 time that must carry its zone (``--at``, a manifest's times); raise UsageError naming ``option``."""
    s = str(text).strip()
    if _RELATIVE.match(s) or _NUMERIC.match(s):
        raise UsageError(f"{option} {text!r}: not an RFC3339 time; write e.g. 2026-11-20T10:00:00Z")
    zoned: list[str] = []
    t = parse_user_time(s, option, warn=zoned.append)
    if zoned:
        raise UsageError(f"{option} {text!r}: give a time zone, e.g. 2026-11-20T10:00:00Z")
    return t


def parse_stored_time(value: object) -> dt.datetime | None:
    """Return a time a bundle or an object stores (RFC3339 with its zone), or None when absent or malformed."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_time(value, "stored time")
    except UsageError:
        return None


# ----- formatters ----------------------------------------------------------------------------------


def rfc3339(t: dt.datetime | None) -> str | None:
    """Format a datetime as RFC3339 UTC with a Z, milliseconds only when present."""
    if t is None:
        return None
    t = t.astimezone(UTC)
    if t.microsecond:
        return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def epoch_ms(t: dt.datetime) -> int:
    """Return a datetime as epoch milliseconds (the unit of every timestamp in the analysis)."""
    return round(t.timestamp() * 1000)


def from_epoch_ms(ms: int | float) -> dt.datetime:
    """Return epoch milliseconds as an aware UTC datetime."""
    return dt.datetime.fromtimestamp(float(ms) / 1000, tz=UTC)


# ----- the bundle's manifest, typed (read and written only by bundle/) ------------------------------


@dataclass(frozen=True)
class RolloutSpan:
    """The rollout collect found in the window (``detected_from``: events, weights, or none)."""

    start: dt.datetime | None
    end: dt.datetime | None
    detected_from: str | None
    in_progress: bool


@dataclass(frozen=True)
class QueryRecord:
    """One Prometheus query collect ran: what for, over which range, and how it went."""

    id: str
    kind: str  # raw | range | instant
    status: str | None  # ok | empty | failed
    metric: str | None
    promql: str | None
    purpose: str | None
    start: dt.datetime | None
    end: dt.datetime | None
    extra: dict[str, Any]  # chunks, series, samples, seconds, step_seconds, error, failed_chunks, as written


@dataclass(frozen=True)
class Gap:
    """Something missing from the bundle, and where in time (``kind`` as written when this version does not know it)."""

    kind: GapKind | str
    query: str | None
    start: dt.datetime | None  # "from"
    end: dt.datetime | None  # "to"
    detail: str | None


@dataclass(frozen=True)
class ScrapeLabels:
    """The labels the router's and Flagger's series were read by (a scrape may rename them, e.g. ``exported_service``)."""

    service: str  # the label holding the router's service name
    namespace: str  # the label holding the namespace on Flagger's own series
    chosen: str  # "detected" | "--service-label" | "default" (nothing matched either form)


@dataclass(frozen=True)
class Provenance:
    """Where the bundle's data came from: the Kubernetes side, Prometheus (no credentials), event counts."""

    kubernetes: dict[str, Any]
    prometheus: dict[str, Any]
    events: dict[str, Any]
    labels: ScrapeLabels | None = None  # None: a bundle written before labels were recorded
    router: str | None = None  # the traffic router whose series these are (None: written before routers were recorded)


@dataclass(frozen=True)
class Redaction:
    """What collect replaced or dropped as secret-looking."""

    total: int
    listed: int
    by_action: dict[str, int]
    items: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class ManifestCanary:
    """The canary a bundle is about, as the manifest names it."""

    namespace: str
    name: str
    target: str | None
    service: str | None
    port: int | None

    @property
    def ref(self) -> CanaryRef:
        return CanaryRef(self.namespace, self.name)


@dataclass(frozen=True)
class Manifest:
    """A bundle's manifest.json as typed records (``bundle.manifest_from_json`` / ``manifest_to_json``)."""

    schema: str
    schema_version: int
    bundle_id: str
    rollout_id: str | None
    cluster: dict[str, str]
    canary: ManifestCanary
    window: Window | None  # None: the manifest's window is malformed
    window_chosen: str | None
    rollout: RolloutSpan
    interval_seconds: float | None
    threshold: int | None
    collected_at: dt.datetime | None
    tool: dict[str, str]
    sources: Provenance
    queries: tuple[QueryRecord, ...]
    gaps: tuple[Gap, ...]
    warnings: tuple[str, ...]
    redaction: Redaction | None
    counts: dict[str, int]
    legal_hold: bool
    files: dict[str, dict[str, Any]]
    self_sha256: str | None
    extra: dict[str, Any]  # keys this version does not know, kept as written
