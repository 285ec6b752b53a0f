"""The rollout's record of events, merged from every source.

Sources, best first (../shared/reference/flagger-traefik.md §9.1): the event-webhook journal
(lossless, millisecond timestamps, phase and checksum), Flagger's zap JSON log (lossless while
the pod lives, millisecond timestamps), and Kubernetes Events — core/v1 and events.k8s.io/v1 —
which client-go aggregates (``(combined from similar events): …``), deduplicates (even across
rollouts: ``count`` and an old ``firstTimestamp``), rate-limits and the API server expires.

One row per occurrence.  Webhook and log occurrences of the same message within two seconds
are one row.  A Kubernetes Event is attached to the occurrences it accounts for; when no
lossless source has them, the Event becomes a row of its own, keeping its count and first /
last times, with ``aggregated`` / ``cross_rollout`` set so that nobody misreads it.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from evidence.errors import UsageError
from evidence.flagger import parse_message, strip_combined
from evidence.model import parse_user_time
from evidence.redact import Redactions, scrub_text

UTC = dt.UTC
MATCH_TOLERANCE = dt.timedelta(seconds=2)


@dataclass
class Occurrence:
    """One event occurrence being assembled."""

    time: dt.datetime
    type: str
    message: str
    sources: list[str]
    reason: str = "Synced"
    phase: str | None = None
    checksum: str | None = None
    k8s_count: int | None = None
    k8s_first: dt.datetime | None = None
    k8s_last: dt.datetime | None = None
    aggregated: bool = False
    cross_rollout: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def parse_time(value: Any) -> dt.datetime | None:
    """Return an event's time (RFC3339, no zone read as UTC; Unix seconds as a number, milliseconds as a string), or None."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    text = str(value).strip()
    try:
        if isinstance(value, (int, float)):
            return dt.datetime.fromtimestamp(float(value), tz=UTC)
        if text.isdigit():
            return dt.datetime.fromtimestamp(int(text) / 1000, tz=UTC)
        return parse_user_time(text, "event time")
    except (UsageError, ValueError, OverflowError, OSError):  # not a time, or outside what a datetime holds
        return None


def _count(value: Any) -> int:
    """Return an Event's count: a positive integer, else 1 (what a single Event means)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return 1
    try:
        n = int(value)
    except (ValueError, OverflowError):
        return 1
    return n if n > 0 else 1


def from_webhooks(payloads: list[dict[str, Any]]) -> list[Occurrence]:
    """Return occurrences from event-webhook payloads."""
    out = []
    for p in payloads:
        meta = p.get("metadata") or {}
        t = parse_time(meta.get("timestamp")) or parse_time(p.get("_received_at"))
        msg = meta.get("eventMessage")
        if t is None or not isinstance(msg, str):
            continue
        out.append(
            Occurrence(
                t,
                str(meta.get("eventType") or "Normal"),
                msg,
                ["webhook"],
                phase=p.get("phase"),
                checksum=p.get("checksum"),
            )
        )
    return out


def from_log_lines(lines: list[str], canary: str, namespace: str) -> tuple[list[Occurrence], list[dict[str, Any]]]:
    """Return occurrences from Flagger's zap log lines about the canary's events, and its parsed lines.

    A line is the canary's when its zap field ``canary`` is ``<name>.<namespace>``, or, for
    lines without that field, when the message names ``<name>.<namespace>``.
    """
    who = f"{canary}.{namespace}"
    occ = []
    parsed = []
    for line in lines:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if not isinstance(rec, dict):
            continue
        c = rec.get("canary")
        if not (c == who or (c is None and who in str(rec.get("msg", "")))):
            continue
        t = parse_time(rec.get("ts"))
        if t is None:
            continue
        msg = str(rec.get("msg", ""))
        level = str(rec.get("level", ""))
        caller = str(rec.get("caller", ""))
        parsed.append({"time": t, "level": level, "caller": caller, "message": msg, "raw": line})
        # Events are logged from controller/events.go; warnings log at info level, errors at error.
        if "events.go" in caller or not caller:
            p = parse_message(msg)
            etype = "Warning" if level == "error" or p.action in _WARNING_ACTIONS or msg.startswith("Halt") else "Normal"
            occ.append(Occurrence(t, etype, msg, ["log"]))
    return occ, parsed


_WARNING_ACTIONS = {
    "halt",
    "rollback",
    "rollback-manual",
    "rollback-deadline",
    "failed",
    "not-ready",
    "primary-not-ready",
    "promotion-failed",
    "wait",
    "hook-rollback",
    "hook-failed",
    "query-failed",
    "check-error",
    "error",
}


class _ByMessage:
    """Occurrences indexed by message and time: the candidates of a match in O(log n), not a scan of every row."""

    def __init__(self, rows: list[Occurrence]) -> None:
        self._times: dict[str, list[dt.datetime]] = {}
        self._rows: dict[str, list[Occurrence]] = {}
        for o in sorted(rows, key=lambda o: o.time):
            self.add(o)

    def add(self, o: Occurrence) -> None:
        times = self._times.setdefault(o.message, [])
        i = bisect.bisect_right(times, o.time)
        times.insert(i, o.time)
        self._rows.setdefault(o.message, []).insert(i, o)

    def between(self, message: str, lo: dt.datetime, hi: dt.datetime) -> list[Occurrence]:
        times = self._times.get(message)
        if not times:
            return []
        return self._rows[message][bisect.bisect_left(times, lo) : bisect.bisect_right(times, hi)]


def merge_lossless(webhook: list[Occurrence], log: list[Occurrence]) -> list[Occurrence]:
    """Merge webhook and log occurrences of the same message within the tolerance (n log n)."""
    rows = sorted(webhook, key=lambda o: o.time)
    index = _ByMessage(rows)
    for o in sorted(log, key=lambda o: o.time):
        cands = [
            w for w in index.between(o.message, o.time - MATCH_TOLERANCE, o.time + MATCH_TOLERANCE) if "log" not in w.sources
        ]
        if cands:
            best = min(cands, key=lambda w: abs(w.time - o.time))
            best.sources.append("log")
            if best.type != o.type and o.type == "Warning":
                best.type = o.type
        else:
            rows.append(o)
            index.add(o)
    return sorted(rows, key=lambda o: o.time)


def normalise_k8s_event(ev: dict[str, Any]) -> dict[str, Any] | None:
    """Return a core/v1 or events.k8s.io/v1 Event as {message, type, reason, count, first, last, source}."""
    if "regarding" in ev or "note" in ev:  # events.k8s.io/v1
        msg = ev.get("note")
        series: dict[str, Any] = ev["series"] if isinstance(ev.get("series"), dict) else {}
        count = _count(series.get("count") or ev.get("deprecatedCount"))
        first = parse_time(ev.get("deprecatedFirstTimestamp")) or parse_time(ev.get("eventTime"))
        last = parse_time(series.get("lastObservedTime")) or parse_time(ev.get("deprecatedLastTimestamp")) or first
        src = "k8s-events-v1"
    else:
        msg = ev.get("message")
        count = _count(ev.get("count"))
        first = parse_time(ev.get("firstTimestamp")) or parse_time(ev.get("eventTime"))
        last = parse_time(ev.get("lastTimestamp")) or first
        src = "k8s"
    if not isinstance(msg, str) or first is None or last is None:
        return None
    return {
        "message": msg,
        "type": str(ev.get("type") or "Normal"),
        "reason": str(ev.get("reason") or ""),
        "count": count,
        "first": first,
        "last": last,
        "source": src,
        "name": ev["metadata"].get("name") if isinstance(ev.get("metadata"), dict) else None,
    }


def attach_k8s(
    rows: list[Occurrence], events: list[dict[str, Any]], rollout_start: dt.datetime | None
) -> tuple[list[Occurrence], dict[str, int]]:
    """Attach Kubernetes Events to occurrences, or add them as rows; return rows and counters.

    ``rollout_start`` is where the rollout under study begins: an Event first seen before it and
    last seen at or after it was deduplicated with an earlier rollout (``cross_rollout``), so
    without a lossless source it is dated by its last occurrence, never by the older one.
    With ``rollout_start`` None (before the rollout is known) every Event is dated by its last
    occurrence, which is what finding the latest rollout needs.
    """
    stats = {"k8s_events": 0, "k8s_only": 0, "aggregated": 0, "cross_rollout": 0, "duplicates_v1": 0}
    norm = [n for n in (normalise_k8s_event(e) for e in events) if n is not None]
    # The same Event may come as core/v1 and as events.k8s.io/v1: keep one.
    seen: set[tuple[Any, ...]] = set()
    unique = []
    for n in sorted(norm, key=lambda n: n["source"]):  # "k8s" sorts before "k8s-events-v1"
        key = (n["name"], n["message"], n["last"]) if n["name"] else (n["message"], n["first"], n["last"])
        if key in seen:
            stats["duplicates_v1"] += 1
            continue
        seen.add(key)
        unique.append(n)
    index = _ByMessage(rows)
    for n in sorted(unique, key=lambda n: n["last"]):
        stats["k8s_events"] += 1
        message, aggregated = strip_combined(n["message"])
        if rollout_start is None:
            cross = False
        else:
            cross = n["first"] < rollout_start - MATCH_TOLERANCE <= n["last"]
        stats["aggregated"] += aggregated
        stats["cross_rollout"] += cross
        lo = (n["last"] if aggregated else n["first"]) - MATCH_TOLERANCE
        hi = n["last"] + MATCH_TOLERANCE
        matched = [o for o in index.between(message, lo, hi) if not o.k8s_count]
        if matched:
            for o in matched:
                o.sources.append(n["source"])
                o.k8s_count, o.k8s_first, o.k8s_last = n["count"], n["first"], n["last"]
                o.aggregated, o.cross_rollout = aggregated, cross
            continue
        stats["k8s_only"] += 1
        # Without a lossless source: an Event that repeated within the rollout is dated by its
        # first occurrence; one merged with an older rollout (or aggregated) by its last.
        t = n["last"] if (aggregated or cross or rollout_start is None) else n["first"]
        rows.append(
            Occurrence(
                t,
                n["type"],
                message,
                [n["source"]],
                reason=n["reason"] or "Synced",
                k8s_count=n["count"],
                k8s_first=n["first"],
                k8s_last=n["last"],
                aggregated=aggregated,
                cross_rollout=cross,
            )
        )
    return sorted(rows, key=lambda o: o.time), stats


def to_records(rows: list[Occurrence], red: Redactions | None = None, known: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Return the rows of the events table (columns as in bundle.SCHEMAS['events']), free text scrubbed and capped."""
    red = red or Redactions()
    out = []
    for o in rows:
        p = parse_message(o.message)
        scrubbed = scrub_text(o.message, known)
        eid = hashlib.sha256(f"{o.time.isoformat()}|{scrubbed}|{o.sources[0]}".encode()).hexdigest()[:16]
        message = red.text("events", f"{eid}.message", o.message, known, scrubbed=scrubbed) or ""
        out.append(
            {
                "event_id": eid,
                "time": o.time,
                "type": o.type,
                "reason": o.reason,
                "message": message,
                "sources": ",".join(dict.fromkeys(o.sources)),
                "k8s_count": o.k8s_count,
                "k8s_first": o.k8s_first,
                "k8s_last": o.k8s_last,
                "aggregated": o.aggregated,
                "cross_rollout": o.cross_rollout,
                "phase": o.phase,
                "checksum": o.checksum,
                "action": p.action,
                "weight": p.weight,
                "metric": red.text("events", f"{eid}.metric", p.metric, known),
                "value": p.value,
                "threshold": p.threshold,
                "comparator": p.comparator,
                "failed_checks": p.failed_checks,
                "detail": red.text("events", f"{eid}.detail", p.detail, known) if p.detail else None,
            }
        )
    return out


ROLLOUT_START = {"new-revision", "restart"}
ROLLOUT_END = {"promoted", "failed", "promotion-failed"}


def find_latest_rollout(rows: list[Occurrence]) -> tuple[dt.datetime, dt.datetime | None] | None:
    """Return (start, end or None if still running) of the latest rollout in the rows."""
    parsed = [(o, parse_message(o.message).action) for o in rows]
    starts = [o.time for o, a in parsed if a in ROLLOUT_START]
    if not starts:
        # Events may have expired: the first analysis step also marks a rollout.
        starts = [o.time for o, a in parsed if a == "start"]
    if not starts:
        return None
    start = max(starts)
    ends = [o.time for o, a in parsed if a in ROLLOUT_END and o.time >= start]
    return start, (min(ends) if ends else None)
