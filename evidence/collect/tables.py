"""The cluster-side tables of a bundle (objects, events, logs), redacted, and what their sources lost."""

from __future__ import annotations

import json
import numbers
from dataclasses import fields, replace
from enum import Enum
from typing import Any, TypeVar

from evidence.canary import normalise_canary
from evidence.events import parse_time
from evidence.model import Gap, QueryRecord, Window
from evidence.redact import Redactions, redact_log_line, redact_object, scrub_text, workload_identity
from evidence.sources import ClusterData

_R = TypeVar("_R", QueryRecord, Gap)


def arrow_rows(rows: list[dict[str, Any]], table: str) -> Any:
    """Return rows as the table's arrow table, without a pandas frame in between.

    As pandas frames written by ``BundleWriter.write_table`` made them: times UTC, cut to milliseconds
    (a naive time is UTC, an int is epoch milliseconds); a missing or NaN number is null; a
    missing flag is False.
    """
    import pyarrow as pa

    from evidence.bundle import arrow_schema

    schema = arrow_schema(table)
    arrays = []
    for f in schema:
        values = [r.get(f.name) for r in rows]
        if pa.types.is_timestamp(f.type):
            values = [_utc_ms(v) for v in values]
        elif pa.types.is_boolean(f.type):
            values = [bool(v) if v is not None else False for v in values]
        arrays.append(pa.array(values, type=f.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=schema)


def _utc_ms(value: Any) -> Any:
    """Return a time as a UTC datetime cut to the millisecond (None stays None)."""
    import datetime as dt

    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        return dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=int(value))
    t = value if isinstance(value, dt.datetime) else parse_time(value)
    if t is None:
        return None
    t = t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


def scrubbed(record: _R, known: tuple[str, ...]) -> _R:
    """Return a manifest record with every string scrubbed (server error texts may echo credentials)."""
    changes: dict[str, Any] = {
        f.name: scrub_text(v, known)
        for f in fields(record)
        if isinstance(v := getattr(record, f.name), str) and not isinstance(v, Enum)  # a GapKind stays a GapKind
    }
    if isinstance(record, QueryRecord):
        changes["extra"] = {k: scrub_text(v, known) if isinstance(v, str) else v for k, v in record.extra.items()}
    return replace(record, **changes)


def log_rows(records: list[dict[str, Any]], window: Window, red: Redactions, known: tuple[str, ...]) -> list[dict[str, Any]]:
    """Return the logs table's rows inside the window: message scrubbed, raw re-serialised with secret fields redacted."""
    rows = []
    for i, r in enumerate(records):
        if not window.start <= r["time"] <= window.end:
            continue
        raw = redact_log_line(r["raw"], known)
        if raw != r["raw"]:
            red.add("logs", f"{i}.raw", "redacted")
        rows.append(dict(r, message=red.text("logs", f"{i}.message", r["message"], known), raw=red.text("logs", f"{i}.raw", raw)))
    return rows


def object_rows(data: ClusterData, red: Redactions, known: tuple[str, ...]) -> list[dict[str, Any]]:
    items: list[tuple[str, dict[str, Any]]] = [("canary", data.canary)]
    items += [("metric-template", o) for o in data.metric_templates]
    items += [("alert-provider", o) for o in data.alert_providers]
    items += [("traefik-service", o) for o in data.traefik_services]
    target = str((normalise_canary(data.canary)[0]["spec"]["targetRef"]).get("name"))
    for o in data.workloads:
        role = "workload-primary" if (o.get("metadata") or {}).get("name") == f"{target}-primary" else "workload-canary"
        items.append((role, workload_identity(o)))
    rows = []
    for role, obj in items:
        clean, paths = redact_object(obj, known)
        meta = clean.get("metadata") or {}
        for path in paths:
            red.add("objects", f"{clean.get('kind')} {meta.get('namespace')}/{meta.get('name')}: {path}", "redacted")
        rows.append(
            {
                "kind": str(clean.get("kind", "")),
                "api_version": str(clean.get("apiVersion", "")),
                "namespace": meta.get("namespace"),
                "name": meta.get("name"),
                "role": role,
                "source": data.source_kind,
                "redacted": paths,
                "body": json.dumps(clean, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
            }
        )
    return rows


def event_warnings(rows: list[Any], stats: dict[str, int], data: ClusterData, window: Window) -> list[str]:
    out = []
    lossless = {"webhook", "log"}
    has_lossless = any(lossless & set(o.sources) for o in rows)
    if not rows:
        out.append(
            "no Flagger events in the window: Kubernetes expires Events after 1 h (--event-ttl); "
            "collect Flagger's logs or run the event-webhook receiver to keep them"
        )
    elif not has_lossless:
        out.append(
            "events come only from the Kubernetes Events API, which aggregates, drops and expires Flagger's events "
            "(client-go spam filter: 25 then 1 per 5 min; TTL 1 h): the timeline may have holes"
        )
    if stats["aggregated"]:
        out.append(
            f"{stats['aggregated']} Kubernetes Event(s) were '(combined from similar events)': only their latest message is known"
        )
    if stats["cross_rollout"]:
        out.append(f"{stats['cross_rollout']} Kubernetes Event(s) were deduplicated with an earlier rollout (old firstTimestamp)")
    status = normalise_canary(data.canary)[0].get("status") or {}
    changed = parse_time(status.get("lastTransitionTime"))
    failed_here = status.get("phase") == "Failed" and changed is not None and window.start <= changed <= window.end
    if failed_here and not any(o.message.startswith("Canary failed!") for o in rows):
        out.append("the Canary turned Failed inside the window but no 'Canary failed!' event is in the record: events look lost")
    return out
