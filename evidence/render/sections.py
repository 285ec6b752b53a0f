"""The reference parts of a report: settings, workloads, provenance, and the postmortem's facts."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from evidence.bundle import grouped_gaps
from evidence.model import rfc3339
from evidence.render.formatting import FRIENDLY, OUTCOME_LABEL, fmt_duration, fmt_int, fmt_num, fmt_time, fmt_value

if TYPE_CHECKING:
    from evidence.bundle import Bundle
    from evidence.evaluate import Evaluation

GAP_MEANING = {
    "query_failed": "this evidence is missing from the bundle; anything computed from it (charts, criteria, counts) is incomplete — lower confidence",
    "query_invalid": "Prometheus rejected this query as invalid (permanent): Flagger's own check could not be re-run here",
    "query_empty": "Prometheus held no data for this query in the window",
    "scrape_gap": "no samples in this span: rates and criteria across it rest on fewer points",
}


def _fmt_date_time(t: dt.datetime | None) -> str:
    """Return ``YYYY-MM-DD HH:MM:SS`` (UTC), or an em dash: for a postmortem that crosses midnight."""
    return t.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if t else "—"


def settings_section(canary: dict[str, Any], analysis: dict[str, Any], bundle: Bundle) -> dict[str, Any]:
    spec = canary.get("spec") or {}
    rows = [
        ("provider", str(spec.get("provider") or "—")),
        ("target", f"{(spec.get('targetRef') or {}).get('kind', '?')}/{(spec.get('targetRef') or {}).get('name', '?')}"),
        ("service port", str((spec.get("service") or {}).get("port", "—"))),
        ("interval", str(analysis.get("interval", "60s (default)"))),
        ("threshold (failed checks before rollback)", str(analysis.get("threshold", "—"))),
    ]
    if analysis.get("stepWeights"):
        rows.append(("stepWeights", ", ".join(str(w) for w in analysis["stepWeights"])))
    else:
        rows.append(
            ("stepWeight / maxWeight", f"{analysis.get('stepWeight', '—')} / {analysis.get('maxWeight', '100 (default)')}")
        )
    if analysis.get("stepWeightPromotion"):
        rows.append(("stepWeightPromotion", str(analysis["stepWeightPromotion"])))
    rows.append(("progressDeadlineSeconds", str(spec.get("progressDeadlineSeconds", "600 (default)"))))
    metrics = []
    for mt in analysis.get("metrics") or []:
        tr = mt.get("thresholdRange") or {}
        bounds = ", ".join(f"{k} {v:g}" if isinstance(v, (int, float)) else f"{k} {v}" for k, v in tr.items()) or (
            f"threshold {mt['threshold']}" if "threshold" in mt else "—"
        )
        ref = mt.get("templateRef") or {}
        metrics.append(
            {
                "name": str(mt.get("name", "")),
                "interval": str(mt.get("interval", "1m")),
                "bounds": bounds,
                "source": f"MetricTemplate {ref.get('namespace') or ''}{'/' if ref.get('namespace') else ''}{ref.get('name')}"
                if ref
                else ("inline query" if mt.get("query") else "builtin (Traefik)"),
            }
        )
    webhooks = [
        {
            "name": str(w.get("name", "")),
            "type": str(w.get("type") or "rollout"),
            "url": str(w.get("url", "")),
            "metadata": ", ".join(f"{k}={v}" for k, v in (w.get("metadata") or {}).items()),
        }
        for w in analysis.get("webhooks") or []
    ]
    alerts = [
        {
            "name": str(a.get("name", "")),
            "severity": str(a.get("severity") or "info"),
            "provider": f"{(a.get('providerRef') or {}).get('namespace') or ''}/{(a.get('providerRef') or {}).get('name', '')}".lstrip(
                "/"
            ),
        }
        for a in analysis.get("alerts") or []
    ]
    templates = [
        {
            "name": f"{(t.get('metadata') or {}).get('namespace', '')}/{(t.get('metadata') or {}).get('name', '')}",
            "provider": str(((t.get("spec") or {}).get("provider") or {}).get("type", "")),
            "query": str((t.get("spec") or {}).get("query", "")),
        }
        for t in bundle.objects(kind="MetricTemplate")
    ]
    status = canary.get("status") or {}
    status_rows = [
        (k, str(status.get(k)))
        for k in ("phase", "canaryWeight", "failedChecks", "lastAppliedSpec", "lastPromotedSpec", "lastTransitionTime")
        if k in status
    ]
    return {
        "rows": rows,
        "metrics": metrics,
        "webhooks": webhooks,
        "alerts": alerts,
        "templates": templates,
        "status": status_rows,
    }


def workloads_section(bundle: Bundle) -> list[dict[str, str]]:
    out = []
    for role in ("workload-canary", "workload-primary"):
        for w in bundle.objects(role=role):
            tmpl = (w.get("spec") or {}).get("template") or {}
            images = ", ".join(str(c.get("image")) for c in ((tmpl.get("spec") or {}).get("containers") or []))
            out.append(
                {
                    "role": "canary" if role == "workload-canary" else "primary",
                    "name": str((w.get("metadata") or {}).get("name")),
                    "images": images or "—",
                    "hash": str(((tmpl.get("metadata") or {}).get("labels") or {}).get("pod-template-hash", "—")),
                }
            )
    return out


def provenance_section(bundle: Bundle) -> dict[str, Any]:
    m = bundle.record
    kube: dict[str, Any] = m.sources.kubernetes
    prom: dict[str, Any] = m.sources.prometheus
    ev_src: dict[str, Any] = m.sources.events
    window = f"{rfc3339(m.window.start)} → {rfc3339(m.window.end)}" if m.window else "? → ?"
    sources = [
        ("Kubernetes", f"{kube.get('kind', '?')} {kube.get('location', '?')}"),
        ("Prometheus", f"{prom.get('url', '?')}" + (f" (auth: {', '.join(prom.get('auth') or [])})" if prom.get("auth") else "")),
        (
            "Flagger events",
            f"webhook {ev_src.get('webhook', 0)}, log {ev_src.get('log', 0)}, Kubernetes Events {ev_src.get('kubernetes', 0)}",
        ),
        ("window", f"{window} ({m.window_chosen or ''})"),
        ("collected", f"{rfc3339(m.collected_at)} by evidence {m.tool.get('version', '?')}"),
    ]
    queries = [
        {
            "id": q.id,
            "status": str(q.status),
            "series": str(q.extra.get("series", "")),
            "samples": fmt_int(q.extra.get("samples")),
            "chunks": str(q.extra.get("chunks", "")),
            "query": q.promql or "",
            "error": str(q.extra.get("error") or ""),
        }
        for q in m.queries
    ]
    gaps = [dict(g, meaning=GAP_MEANING.get(g["kind"], "")) for g in grouped_gaps(m)]
    files = [
        {"name": name, "sha256": str(info.get("sha256")), "bytes": fmt_int(info.get("bytes")), "rows": fmt_int(info.get("rows"))}
        for name, info in sorted(m.files.items())
    ]
    return {
        "sources": sources,
        "queries": queries,
        "gaps": gaps,
        "warnings": list(m.warnings),
        "files": files,
        "manifest_sha256": bundle.manifest_sha256,
        "counts": json.dumps(m.counts),
    }


# Every event that starts or ends a rollout or changes a weight (``evidence.flagger`` actions),
# plus halts, readiness failures and the analysis start.
_POSTMORTEM_ACTIONS = (
    "new-revision",
    "start",
    "advance",
    "halt",
    "query-failed",
    "check-error",
    "rollback",
    "rollback-manual",
    "rollback-deadline",
    "failed",
    "promote-start",
    "promote-step",
    "route-primary",
    "route-canary",
    "promoted",
    "promotion-failed",
    "not-ready",
    "restart",
)


def postmortem_facts(ev: Evaluation, summary: list[str], workloads: list[dict[str, str]]) -> dict[str, Any]:
    """Return the pre-filled parts of the postmortem, in the usual SRE shape.

    The timeline is sorted on the times themselves, then formatted; when it spans more than
    one UTC date, every time in the postmortem carries its date.
    """
    tl, lag, blast = ev.timeline, ev.lag, ev.blast
    rows: list[tuple[dt.datetime, str]] = [
        (e.time, e.message[:MAX_MESSAGE_SHOWN]) for e in tl.entries if e.action in _POSTMORTEM_ACTIONS
    ]
    if len(rows) > MAX_EVENT_ROWS:
        # A flood: the first and the last events, and a line that says what is left out.
        gap = (rows[MAX_EVENT_ROWS // 2][0], f"… {len(rows) - MAX_EVENT_ROWS:,} more events (all in the bundle's events.parquet)")
        rows = [*rows[: MAX_EVENT_ROWS // 2], gap, *rows[-MAX_EVENT_ROWS // 2 :]]
    if lag.first_breach_at is not None:
        rows.append(
            (lag.first_breach_at, f"[policy] {FRIENDLY.get(lag.first_breach_criterion or '', '')} criterion first breached")
        )
    rows.sort(key=lambda r: r[0])
    shown = (tl.started_at, lag.first_halt_at, lag.rollback_at, lag.canary_traffic_zero_at, tl.promoted_at, tl.failed_at)
    moments = [t for t in (*shown, *(t for t, _ in rows)) if t is not None]
    several_days = len({t.astimezone(dt.UTC).date() for t in moments}) > 1
    when = _fmt_date_time if several_days else fmt_time
    canary_image = next((w["images"] for w in workloads if w["role"] == "canary"), "the new revision")
    breached = [c for c in ev.criteria if c.breached]
    impact = [
        f"The canary served {fmt_int(blast.canary_requests)} requests at up to {blast.max_weight} % of traffic for {fmt_duration(blast.exposure_seconds)}.",
        f"{fmt_int(blast.canary_errors)} of them were 5xx"
        + (
            f"; {fmt_num(blast.excess_errors, 0)} more than the primary's error share would have produced."
            if blast.excess_errors is not None
            else "."
        ),
    ]
    for c in breached:
        impact.append(
            f"{FRIENDLY.get(c.name, c.name)}: worst {fmt_value(c.kind, c.worst_value)} ({c.description}), breached for {fmt_duration(c.breached_seconds)}."
        )
    detection = [
        f"First policy breach: {when(lag.first_breach_at)}"
        + (
            f" ({FRIENDLY.get(lag.first_breach_criterion or '', lag.first_breach_criterion)})."
            if lag.first_breach_criterion
            else "."
        ),
        f"Flagger's first halt: {when(lag.first_halt_at)}"
        + (f" (+{fmt_duration(lag.breach_to_halt_seconds)})." if lag.breach_to_halt_seconds is not None else "."),
        f"Rollback decision: {when(lag.rollback_at)}"
        + (f" (+{fmt_duration(lag.halt_to_rollback_seconds)})." if lag.halt_to_rollback_seconds is not None else "."),
        f"Canary traffic back at 0: {when(lag.canary_traffic_zero_at)}"
        + (
            f" (+{fmt_duration(lag.rollback_to_traffic_zero_seconds)})."
            if lag.rollback_to_traffic_zero_seconds is not None
            else "."
        ),
        f"Detection lag (rollback decision − first breach): {fmt_duration(lag.detection_lag_seconds)}.",
    ]
    timeline = [{"time": when(t), "message": message} for t, message in rows]
    trigger = f"Rollout of {canary_image} to {ev.canary} (Flagger: 'New revision detected' at {when(tl.started_at)})."
    if breached:
        trigger += f" Under real traffic the {', '.join(FRIENDLY.get(c.name, c.name) for c in breached)} criteria were breached."
    if ev.outcome == "rolled_back":
        resolution = f"Flagger rolled back at {when(tl.rollback_at)} ({tl.rollback_reason or tl.outcome_reason}); traffic was back on the primary at {when(blast.canary_traffic_zero_at or tl.traffic_to_primary_at)}."
    elif ev.outcome == "promoted":
        resolution = f"Flagger promoted the canary at {when(tl.promoted_at)}" + (
            " although the abort policy was breached: the new revision now serves all traffic." if breached else "."
        )
    elif ev.outcome == "failed":
        resolution = f"The rollout failed at {when(tl.failed_at)}: {tl.outcome_reason}."
    else:
        resolution = f"No resolution recorded ({OUTCOME_LABEL.get(ev.outcome, ev.outcome).lower()})."
    return {
        "summary": summary,
        "impact": impact,
        "detection": detection,
        "timeline": timeline,
        "trigger": trigger,
        "resolution": resolution,
    }


#: Event rows a record shows at most, and characters of one message: a flood of 100,000 events
#: (a broken or hostile cluster) would otherwise make a 950-page PDF. The bundle keeps them all.
MAX_EVENT_ROWS = 500
MAX_HALT_ROWS = 200
MAX_MESSAGE_SHOWN = 2000
_KEY_ACTIONS = {
    "new-revision",
    "restart",
    "start",
    "advance",
    "promote-step",
    "promote-start",
    "route-primary",
    "route-canary",
    "promoted",
    "promotion-failed",
    "rollback",
    "rollback-manual",
    "rollback-deadline",
    "failed",
}


def shown_events(events: Any) -> tuple[Any, int]:
    """Return the events a record shows (time-sorted) and how many it leaves out.

    Up to ``MAX_EVENT_ROWS``: every weight change and terminal event, then the earliest and the
    latest of the rest, so the start and the end of a flood are both visible.
    """
    n = len(events)
    if n <= MAX_EVENT_ROWS:
        return events, 0
    key = events["action"].isin(_KEY_ACTIONS).to_numpy()
    keep = key.copy()
    if keep.sum() > MAX_EVENT_ROWS // 2:
        keep[:] = False
        idx = key.nonzero()[0]
        keep[idx[: MAX_EVENT_ROWS // 4]] = True
        keep[idx[-MAX_EVENT_ROWS // 4 :]] = True
    budget = MAX_EVENT_ROWS - int(keep.sum())
    rest = (~keep).nonzero()[0]
    keep[rest[: budget // 2]] = True
    keep[rest[len(rest) - (budget - budget // 2) :]] = True
    return events[keep], n - int(keep.sum())
