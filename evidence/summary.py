"""A short terminal summary of a bundle (``evidence show``)."""

from __future__ import annotations

from evidence.bundle import Bundle

_TERMINAL = {"promoted": "promoted", "failed": "failed", "promotion-failed": "failed (promotion: primary not ready)"}


def summarise_bundle(b: Bundle) -> str:
    """Return a few lines describing the bundle."""
    m = b.manifest
    events = b.table("events")
    canary = b.canary
    status = canary.get("status") or {}
    rollout = m.get("rollout") or {}
    actions = list(events["action"]) if len(events) else []
    outcome = "unknown"
    if "rollback" in actions or "rollback-manual" in actions:
        outcome = "rolled back"
    elif "promoted" in actions:
        outcome = "promoted"
    elif "promotion-failed" in actions:
        outcome = "failed (promotion: primary not ready)"
    elif "failed" in actions:
        outcome = "failed (canary not ready / progress deadline)" if "not-ready" in actions else "failed"
    elif rollout.get("in_progress"):
        outcome = "in progress"
    weights = sorted({int(w) for w in events["weight"].dropna()} - {0}) if len(events) else []
    counts = m.get("counts", {})
    sources = m.get("sources", {})
    lines = [
        f"canary:    {m['canary']['namespace']}/{m['canary']['name']} (target {m['canary'].get('target')})",
        f"bundle:    {b.bundle_id}  ({b.path})",
        f"window:    {m['window']['start']} → {m['window']['end']}  ({m['window'].get('chosen', '')})",
        f"rollout:   {rollout.get('start') or '?'} → {rollout.get('end') or ('running' if rollout.get('in_progress') else '?')}",
        f"outcome:   {outcome}  (as Flagger recorded it; Canary status now: {status.get('phase', '?')})",
        f"weights:   {' → '.join(str(w) for w in weights) + ' %' if weights else 'none reached'}",
        f"events:    {counts.get('events', 0)} (webhook {sources.get('events', {}).get('webhook', 0)}, "
        f"log {sources.get('events', {}).get('log', 0)}, Kubernetes {sources.get('events', {}).get('kubernetes', 0)})",
        f"samples:   {counts.get('samples', 0):,} in {counts.get('series', 0)} series; {counts.get('checks', 0)} Flagger check values",
        f"sources:   {sources.get('kubernetes', {}).get('kind')} {sources.get('kubernetes', {}).get('location')}; "
        f"Prometheus {sources.get('prometheus', {}).get('url')}",
    ]
    gaps = m.get("gaps", [])
    warnings = m.get("warnings", [])
    lines.append(f"gaps:      {len(gaps) or 'none'}")
    for g in gaps:
        where = g.get("query") or f"{g.get('from')} → {g.get('to')}"
        lines.append(f"  - {g['kind']}: {where}: {g.get('detail', '')}")
    if warnings:
        lines.append(f"warnings:  {len(warnings)}")
        lines.extend(f"  - {w}" for w in warnings)
    return "\n".join(lines)
