"""The manifest as typed records (the one place its keys are spelled), and its own checks."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from evidence.bundle.layout import _SELF_HASH, _ZERO_HASH, MANIFEST, SCHEMA, SCHEMA_VERSION
from evidence.model import (
    Gap,
    GapKind,
    Manifest,
    ManifestCanary,
    Provenance,
    QueryRecord,
    Redaction,
    RolloutSpan,
    ScrapeLabels,
    Window,
    parse_stored_time,
    rfc3339,
)

_HEX_ID = re.compile(r"[0-9a-f]{32,64}")


def manifest_problem(manifest: Any) -> str | None:
    """Return why a parsed manifest cannot be a bundle manifest this evidence reads, or None."""
    if not isinstance(manifest, Mapping) or manifest.get("schema") != SCHEMA:
        return f"not an evidence bundle manifest (schema is not {SCHEMA!r})"
    version = manifest.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return f"schema_version {version!r} is not a version number (an integer from 1); the manifest was altered or not written by evidence"
    if version > SCHEMA_VERSION:
        return f"bundle schema_version {version} is newer than this evidence understands ({SCHEMA_VERSION}); upgrade evidence"
    bid = manifest.get("bundle_id")
    if not isinstance(bid, str) or not _HEX_ID.fullmatch(bid):
        return "the manifest has no valid bundle_id; it was altered or not written by evidence"
    canary = manifest.get("canary")
    if not isinstance(canary, Mapping) or not all(
        isinstance(canary.get(k), str) and canary.get(k) for k in ("namespace", "name")
    ):
        return "the manifest names no canary (canary.namespace and canary.name); it was altered or not written by evidence"
    window = manifest.get("window")
    if not isinstance(window, Mapping) or not isinstance(window.get("start"), str) or not isinstance(window.get("end"), str):
        return "the manifest has no window start/end; it was altered or not written by evidence"
    return None


def self_hash_problem(raw: bytes) -> str | None:
    """Return why a manifest's bytes do not match its own ``self_sha256``, or None."""
    found = _SELF_HASH.findall(raw.decode("utf-8", errors="replace"))
    if len(found) != 1:
        return f"{MANIFEST} carries no self_sha256; it was altered or not written by evidence"
    zeroed = raw.replace(f'"self_sha256": "{found[0]}"'.encode(), f'"self_sha256": "{_ZERO_HASH}"'.encode())
    if hashlib.sha256(zeroed).hexdigest() != found[0]:
        return f"{MANIFEST} differs from what was written (self_sha256 mismatch)"
    return None


# ----- the manifest as typed records (the one place its keys are spelled) -------------------------

_MANIFEST_KEYS = (
    "schema", "schema_version", "bundle_id", "rollout_id", "cluster", "canary", "window", "rollout", "analysis",
    "collected_at", "tool", "sources", "queries", "gaps", "warnings", "redaction", "counts", "legal_hold", "files",
    "self_sha256",
)  # fmt: skip
_QUERY_KEYS = ("id", "kind", "status", "metric", "query", "purpose", "start", "end")


def _map(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _str(value: Any) -> str | None:
    return str(value) if value is not None and value != "" else None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _query_from_json(q: Mapping[str, Any]) -> QueryRecord:
    return QueryRecord(
        id=str(q.get("id") or ""),
        kind=str(q.get("kind") or ""),
        status=_str(q.get("status")),
        metric=_str(q.get("metric")),
        promql=_str(q.get("query")),
        purpose=_str(q.get("purpose")),
        start=parse_stored_time(q.get("start")),
        end=parse_stored_time(q.get("end")),
        extra={k: v for k, v in q.items() if k not in _QUERY_KEYS},
    )


def _gap_from_json(g: Mapping[str, Any]) -> Gap:
    kind = str(g.get("kind"))
    return Gap(
        kind=GapKind(kind) if kind in GapKind._value2member_map_ else kind,
        query=_str(g.get("query")),
        start=parse_stored_time(g.get("from")),
        end=parse_stored_time(g.get("to")),
        detail=_str(g.get("detail")),
    )


def _labels_from_json(value: Any) -> ScrapeLabels | None:
    lab = _map(value)
    if not lab:
        return None
    return ScrapeLabels(str(lab.get("service") or ""), str(lab.get("namespace") or ""), str(lab.get("chosen") or ""))


def scrape_labels_to_json(labels: ScrapeLabels) -> dict[str, str]:
    """Return the manifest's ``sources.labels`` record."""
    return {"service": labels.service, "namespace": labels.namespace, "chosen": labels.chosen}


def manifest_from_json(m: Mapping[str, Any]) -> Manifest:
    """Return a manifest's typed records; a malformed field reads as absent (``read_bundle`` has checked the essentials)."""
    can, win, roll, ana, src, red = (_map(m.get(k)) for k in ("canary", "window", "rollout", "analysis", "sources", "redaction"))
    ws, we = parse_stored_time(win.get("start")), parse_stored_time(win.get("end"))
    threshold = ana.get("threshold")
    return Manifest(
        schema=str(m.get("schema")),
        schema_version=int(m.get("schema_version") or 0),
        bundle_id=m["bundle_id"] if isinstance(m.get("bundle_id"), str) else "",
        rollout_id=_str(m.get("rollout_id")),
        cluster={str(k): str(v) for k, v in _map(m.get("cluster")).items()},
        canary=ManifestCanary(
            str(can.get("namespace") or ""),
            str(can.get("name") or ""),
            _str(can.get("target")),
            _str(can.get("service")),
            can.get("port") if isinstance(can.get("port"), int) else None,
        ),
        window=Window(ws, we) if ws is not None and we is not None else None,
        window_chosen=_str(win.get("chosen")),
        rollout=RolloutSpan(
            parse_stored_time(roll.get("start")),
            parse_stored_time(roll.get("end")),
            _str(roll.get("detected_from")),
            bool(roll.get("in_progress")),
        ),
        interval_seconds=_num(ana.get("interval_seconds")),
        threshold=threshold if isinstance(threshold, int) and not isinstance(threshold, bool) else None,
        collected_at=parse_stored_time(m.get("collected_at")),
        tool={str(k): str(v) for k, v in _map(m.get("tool")).items()},
        sources=Provenance(
            _map(src.get("kubernetes")),
            _map(src.get("prometheus")),
            _map(src.get("events")),
            _labels_from_json(src.get("labels")),
            _str(src.get("router")),
        ),
        queries=tuple(_query_from_json(q) for q in m.get("queries") or [] if isinstance(q, Mapping)),
        gaps=tuple(_gap_from_json(g) for g in m.get("gaps") or [] if isinstance(g, Mapping)),
        warnings=tuple(str(w) for w in m.get("warnings") or []),
        redaction=Redaction(
            int(red.get("total") or 0),
            int(red.get("listed") or 0),
            dict(_map(red.get("by_action"))),
            tuple(_map(i) for i in red.get("items") or []),
        )
        if "redaction" in m
        else None,
        counts={str(k): int(v) for k, v in _map(m.get("counts")).items() if isinstance(v, int)},
        legal_hold=bool(m.get("legal_hold", False)),
        files={str(k): _map(v) for k, v in _map(m.get("files")).items()},
        self_sha256=_str(m.get("self_sha256")),
        extra={k: v for k, v in m.items() if k not in _MANIFEST_KEYS},
    )


def _query_to_json(q: QueryRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"id": q.id, "purpose": q.purpose, "query": q.promql, "kind": q.kind}
    out |= {"start": rfc3339(q.start), "end": rfc3339(q.end), "status": q.status}
    if q.metric is not None:
        out["metric"] = q.metric
    return out | q.extra


def _gap_to_json(g: Gap) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": str(g.kind), "query": g.query}
    if g.start is not None or g.end is not None:
        out |= {"from": rfc3339(g.start), "to": rfc3339(g.end)}
    return out | {"detail": g.detail}


def manifest_to_json(m: Manifest) -> dict[str, Any]:
    """Return the manifest.json document of typed records (the inverse of ``manifest_from_json``)."""
    c = m.canary
    out: dict[str, Any] = {
        "schema": m.schema,
        "schema_version": m.schema_version,
        "bundle_id": m.bundle_id,
        "rollout_id": m.rollout_id,
        "cluster": m.cluster,
        "canary": {"namespace": c.namespace, "name": c.name, "target": c.target, "service": c.service, "port": c.port},
        "window": {
            "start": rfc3339(m.window.start if m.window else None),
            "end": rfc3339(m.window.end if m.window else None),
            "chosen": m.window_chosen,
        },
        "rollout": {
            "start": rfc3339(m.rollout.start),
            "end": rfc3339(m.rollout.end),
            "detected_from": m.rollout.detected_from,
            "in_progress": m.rollout.in_progress,
        },
        "analysis": {"interval_seconds": m.interval_seconds, "threshold": m.threshold},
        "collected_at": rfc3339(m.collected_at),
        "tool": m.tool,
        "sources": {"kubernetes": m.sources.kubernetes, "prometheus": m.sources.prometheus, "events": m.sources.events}
        | ({"labels": scrape_labels_to_json(m.sources.labels)} if m.sources.labels is not None else {})
        | ({"router": m.sources.router} if m.sources.router is not None else {}),
        "queries": [_query_to_json(q) for q in m.queries],
        "gaps": [_gap_to_json(g) for g in m.gaps],
        "warnings": list(m.warnings),
    }
    if m.redaction is not None:
        r = m.redaction
        out["redaction"] = {"total": r.total, "listed": r.listed, "by_action": r.by_action, "items": list(r.items)}
    out |= {"counts": m.counts, "legal_hold": m.legal_hold, "files": m.files}
    if m.self_sha256 is not None:
        out["self_sha256"] = m.self_sha256
    return out | m.extra


def grouped_gaps(manifest: Manifest) -> list[dict[str, Any]]:
    """Return the manifest's gaps grouped per kind and query, each with where it lies in time.

    A long window can fail in many chunks of one query; a reader wants one line per query
    saying which time ranges are missing, not a line per chunk.
    """
    groups: dict[tuple[str, str], list[Gap]] = {}
    order: list[tuple[str, str]] = []
    for i, g in enumerate(manifest.gaps):
        key = (str(g.kind), str(g.query or f"#{i}"))
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(g)
    out = []
    for kind, query in order:
        items = groups[(kind, query)]
        ranges = [(str(rfc3339(g.start)), str(rfc3339(g.end))) for g in items if g.start and g.end]
        if not ranges:
            span = ""
        elif len(ranges) <= 3:
            span = ", ".join(f"{a} → {b}" for a, b in ranges)
        else:
            span = f"{len(ranges)} chunks between {ranges[0][0]} and {ranges[-1][1]}"
        name = "" if query.startswith("#") else query
        out.append(
            {
                "kind": kind,
                "where": " ".join(x for x in (name, f"[{span}]" if name and span else span) if x),
                "detail": items[0].detail or "",
                "count": len(items),
            }
        )
    return out
