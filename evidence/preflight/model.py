"""What a preflight check returns, and the one parser of ``--at``.

A check is a function of a :class:`~evidence.preflight.context.Context` that returns one or
more :class:`CheckResult`; a code may appear more than once (one entry per metric, template or
webhook).  ``skip`` means the check could not run here (a live-cluster check on a dump, a
metrics provider evidence cannot query): it is *not* a pass.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

from evidence.errors import UsageError
from evidence.model import parse_time, parse_user_time

Status = Literal["ok", "warn", "block", "skip"]
STATUSES: tuple[Status, ...] = ("ok", "warn", "block", "skip")
CODES = (
    "flagger-healthy",
    "traefik-series",
    "flagger-queries-match",
    "metric-templates",
    "limits",
    "rollback-path",
    "evidence-capture",
    "abort-policy",
)
_NUMBER = re.compile(r"^\d+(?:\.\d+)?$")


@dataclass(frozen=True)
class CheckResult:
    """One finding of one check: what was found (``message``) and what to change (``fix``)."""

    code: str
    status: Status
    message: str
    fix: str = ""

    def __post_init__(self) -> None:
        if self.code not in CODES:
            raise ValueError(f"unknown check code {self.code!r}")
        if self.status not in STATUSES:
            raise ValueError(f"unknown status {self.status!r}")


@dataclass(frozen=True)
class Preflight:
    """Every check's results for one canary, judged as of ``at``."""

    canary: str
    at: dt.datetime
    source: str
    checks: tuple[CheckResult, ...]

    @property
    def blocked(self) -> bool:
        """Return whether at least one check blocks the rollout."""
        return any(c.status == "block" for c in self.checks)

    def count(self, status: Status) -> int:
        """Return how many results have ``status``."""
        return sum(1 for c in self.checks if c.status == status)


def parse_at(text: str, option: str = "--at") -> dt.datetime:
    """Parse RFC3339, Unix seconds or Unix milliseconds (more than 11 digits) into a UTC datetime."""
    value = text.strip()
    if _NUMBER.match(value):
        try:
            return parse_user_time(value, option)
        except UsageError:
            raise UsageError(
                f"{option} {text!r}: not a usable Unix time; write e.g. 1795600000 or 2026-11-26T14:20:00Z"
            ) from None
    if not value:
        raise UsageError(f"{option}: empty; write an RFC3339 time (2026-11-26T14:20:00Z) or Unix seconds/milliseconds")
    try:
        return parse_time(value, option)
    except UsageError:
        raise UsageError(
            f"{option} {text!r}: not a time; write RFC3339 (2026-11-26T14:20:00Z) or Unix seconds (1795600000) or milliseconds"
        ) from None
