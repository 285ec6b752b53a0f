"""A short terminal summary of a bundle (``evidence show``).

The rollout, its outcome and the weights are those ``evidence evaluate`` judges: the same
rollout span (``analysis.timeline.rollout_span``) and the same timeline (``build_timeline``,
with Flagger's weight and status gauges), never every event in the window — a window may hold an earlier
rollout, or events Kubernetes deduplicated across rollouts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evidence.analysis.timeline import MANIFEST_START, Timeline
from evidence.bundle import Bundle, grouped_gaps
from evidence.errors import BundleError
from evidence.evaluate import RolloutRecord, gauge_record
from evidence.model import rfc3339


def _canary(b: Bundle) -> Mapping[str, Any]:
    try:
        return b.canary
    except BundleError:
        if not b.record.canary.name:
            raise
        return {}


def rollout_record(b: Bundle) -> RolloutRecord:
    """Return the bundle's rollout and Flagger's timeline of it, as ``evaluate`` reconstructs them."""
    return gauge_record(b, _canary(b))


def _rollout_end(tl: Timeline) -> str:
    ends = [t for t in (tl.promoted_at, tl.rollback_at, tl.failed_at) if t is not None]
    if ends:
        return rfc3339(max(ends)) or "?"
    return "running" if tl.outcome == "in_progress" else "?"


def weights_text(tl: Timeline) -> str:
    """Return the weights the canary reached, in order, as ``10 → 20 → 30 %  (max 30 %)``."""
    reached = [s.weight for s in tl.weight_steps if s.weight > 0]
    if not reached and tl.max_weight <= 0:
        return "none reached"
    text = " → ".join(str(w) for w in reached) + " %" if reached else "no weight step recorded"
    return f"{text}  (max {tl.max_weight} %)"


def summarise_bundle(b: Bundle) -> str:
    """Return a few lines describing the bundle."""
    m = b.record
    record = rollout_record(b)
    tl = record.timeline
    status = _canary(b).get("status") or {}
    counts = m.counts
    events: dict[str, Any] = m.sources.events
    kube: dict[str, Any] = m.sources.kubernetes
    outcome = tl.outcome.replace("_", " ")
    lines = [f"UNVERIFIED: {b.unverified_reason}"] if b.verified is False else []
    lines += [
        f"canary:    {record.canary} (target {record.target})",
        f"bundle:    {b.bundle_id}  ({b.path})",
        f"window:    {rfc3339(record.window_start)} → {rfc3339(record.window_end)}  ({m.window_chosen or ''})",
        f"rollout:   {rfc3339(record.start) or '?'} → {_rollout_end(tl)}"
        + (f"  ({record.how})" if record.how != MANIFEST_START else ""),
        f"outcome:   {outcome}: {tl.outcome_reason}  (confidence {tl.confidence}; Canary status now: {status.get('phase', '?')})",
        f"weights:   {weights_text(tl)}",
        f"events:    {counts.get('events', 0)} in the window, merged from what the sources held: "
        f"{events.get('webhook', 0)} webhook payloads, {events.get('log', 0)} log lines, "
        f"{events.get('kubernetes', 0)} Kubernetes Events",
        f"samples:   {counts.get('samples', 0):,} in {counts.get('series', 0)} series; {counts.get('checks', 0)} Flagger check values",
        f"sources:   {kube.get('kind')} {kube.get('location')}; Prometheus {m.sources.prometheus.get('url')}",
    ]
    gaps, warnings = m.gaps, m.warnings
    lines.append(f"gaps:      {len(gaps) or 'none'}")
    for g in grouped_gaps(m):
        lines.append(f"  - {g['kind']}: {g['where']}: {g['detail']}")
    if warnings:
        lines.append(f"warnings:  {len(warnings)}")
        lines.extend(f"  - {w}" for w in warnings)
    return "\n".join(lines)


def summary_document(b: Bundle) -> dict[str, Any]:
    """Return the bundle as a ``BundleSummary`` document: where it is, whether it verified, its summary row.

    The row is the archive's (``summary.json``, the default policy's judgement; evaluated now
    for bundles older than it), so ``show -o json`` and ``history`` agree field by field.
    """
    import json

    from evidence.archive.summary import bundle_summary, summary_json
    from evidence.documents import document

    body: dict[str, Any] = {"location": str(b.path), "verified": b.verified}
    if b.verified is False:
        body["unverified_reason"] = b.unverified_reason
    row = json.loads(summary_json(bundle_summary(b.path, b.manifest)))  # timestamps as RFC 3339, as in summary.json
    return document("BundleSummary", {**body, "summary": row})
