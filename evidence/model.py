"""Plain, frozen values shared by every layer: what a rollout is and where it lives."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

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


def parse_time(text: str, option: str) -> dt.datetime:
    """Parse an RFC3339 time given to ``option``; raise UsageError naming the option."""
    try:
        t = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(f"{option} {text!r}: not an RFC3339 time; write e.g. 2026-11-20T10:00:00Z") from None
    if t.tzinfo is None:
        raise UsageError(f"{option} {text!r}: give a time zone, e.g. 2026-11-20T10:00:00Z")
    t = t.astimezone(UTC)
    if not MIN_YEAR <= t.year <= MAX_YEAR:
        raise UsageError(f"{option} {text!r}: the year {t.year} is outside {MIN_YEAR}–{MAX_YEAR}; check the time")
    return t


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
