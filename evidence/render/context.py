"""Build a report's context: plain, already-formatted values and chart specs from a bundle.

Python computes, templates lay out: every number a report shows is formatted here, from the
bundle and its evaluation, so that the HTML, the PDF and the Markdown show the same figures.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np

from evidence import __version__
from evidence.analysis.components import criterion_components, request_rates
from evidence.analysis.counters import prepare_counters
from evidence.analysis.traffic import scrape_times
from evidence.render.charts import ChartSpec, Line, Marker

if TYPE_CHECKING:
    import pandas as pd

    from evidence.bundle import Bundle
    from evidence.evaluate import Evaluation

UTC = dt.UTC
FRIENDLY = {"error_rate_ratio": "error-rate", "p95_latency_increase": "p95-latency", "success_rate": "success-rate"}
OUTCOME_LABEL = {
    "promoted": "Promoted",
    "rolled_back": "Rolled back",
    "failed": "Failed",
    "in_progress": "In progress",
    "unknown": "Unknown",
}
MARKER_KIND = {
    "advance": "advance",
    "promote-step": "promote",
    "halt": "halt",
    "rollback": "rollback",
    "rollback-manual": "rollback",
    "rollback-deadline": "rollback",
    "failed": "rollback",
    "promotion-failed": "rollback",
    "promote-start": "promote",
    "route-primary": "promote",
    "promoted": "promote",
    "not-ready": "halt",
}
GAP_MEANING = {
    "query_failed": "this evidence is missing from the bundle; anything computed from it (charts, criteria, counts) is incomplete — lower confidence",
    "query_empty": "Prometheus held no data for this query in the window",
    "scrape_gap": "no samples in this span: rates and criteria across it rest on fewer points",
}


# ----- formatting ------------------------------------------------------------------------------
def fmt_time(t: dt.datetime | None) -> str:
    """Return HH:MM:SS (UTC), or an em dash."""
    return t.astimezone(UTC).strftime("%H:%M:%S") if t else "—"


def fmt_datetime(t: dt.datetime | None) -> str:
    """Return ``YYYY-MM-DD HH:MM:SS UTC``, milliseconds when present, or an em dash."""
    if t is None:
        return "—"
    t = t.astimezone(UTC)
    ms = f".{t.microsecond // 1000:03d}" if t.microsecond // 1000 else ""
    return t.strftime("%Y-%m-%d %H:%M:%S") + ms + " UTC"


def fmt_duration(seconds: float | None) -> str:
    """Return a duration as ``4 min 8 s``, ``45 s``, ``1 h 2 min``; ``—`` when unknown."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "—"
    sign = "−" if seconds < 0 else ""
    s = round(abs(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    parts = [f"{h} h"] if h else []
    if m:
        parts.append(f"{m} min")
    if sec or not parts:
        parts.append(f"{sec} s")
    return sign + " ".join(parts[:2])


def fmt_int(n: float | int | None) -> str:
    return "—" if n is None else f"{round(n):,}"


def fmt_num(v: float | None, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{v:,.{digits}f}"


def fmt_value(name: str, kind: str, v: float | None) -> str:
    """Return a criterion value in its natural unit."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if kind == "error_rate_ratio":
        return f"{v:.2f}×"
    if kind == "p95_latency_increase":
        return f"{v * 100:+.1f} %"
    if kind == "success_rate":
        return f"{v:.2f} %"
    return f"{v:.4g}"


_CMP = {">=": "≥", "<=": "≤"}


def fmt_threshold(kind: str, comparator: str, threshold: float) -> str:
    """Return when a criterion aborts, in its natural unit."""
    cmp = _CMP.get(comparator, comparator)
    if kind == "error_rate_ratio":
        return f"{cmp} {threshold:g}× primary's 5xx share"
    if kind == "p95_latency_increase":
        return f"{cmp} +{threshold * 100:g} % vs primary p95"
    if kind == "success_rate":
        return f"{cmp} {threshold:g} %"
    return f"{cmp} {threshold:g}"


def _ms(t: dt.datetime) -> int:
    return round(t.timestamp() * 1000)


def _dt(ms: int | float) -> dt.datetime:
    return dt.datetime.fromtimestamp(float(ms) / 1000, tz=UTC)


def _opt(v: Any) -> Any:
    if v is None:
        return None
    try:
        import pandas as pd

        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return v


# ----- the context ---------------------------------------------------------------------------
def build_context(bundle: Bundle, ev: Evaluation) -> dict[str, Any]:
    """Return the report context of a bundle and its evaluation."""
    m = bundle.manifest
    canary = bundle.canary
    window_start = ev.window_start
    window_end = ev.window_end
    tl = ev.timeline
    lag = ev.lag
    blast = ev.blast
    spec = canary.get("spec") or {}
    analysis = spec.get("analysis") or spec.get("canaryAnalysis") or {}

    header = {
        "canary": ev.canary,
        "namespace": m["canary"]["namespace"],
        "name": m["canary"]["name"],
        "target": ev.target,
        "window": f"{fmt_datetime(window_start)} → {fmt_datetime(window_end)}",
        "rollout_start": fmt_datetime(tl.started_at or ev.rollout_start),
        "outcome": ev.outcome,
        "outcome_label": OUTCOME_LABEL.get(ev.outcome, ev.outcome),
        "outcome_reason": tl.outcome_reason,
        "verdict": ev.verdict,
        "verdict_label": "ABORT" if ev.verdict == "abort" else "PASS",
        "evidence_sufficient": ev.evidence_sufficient,
        "bundle_id": bundle.bundle_id,
        "bundle_short": bundle.bundle_id[:8],
        "manifest_sha256": bundle.manifest_sha256,
        "collected_at": fmt_datetime(_parse(m.get("collected_at"))),
        "policy": ev.policy.source,
        "confidence": tl.confidence,
        "tool_version": __version__,
        "generated_at": fmt_datetime(dt.datetime.now(UTC).replace(microsecond=0)),
    }

    criteria_rows = []
    for c in ev.criteria:
        criteria_rows.append(
            {
                "name": c.name,
                "friendly": FRIENDLY.get(c.name, c.name),
                "description": c.description,
                "threshold": fmt_threshold(c.kind, c.comparator, c.threshold),
                "window": fmt_duration(c.window_seconds),
                "status": c.status,
                "status_label": {"breached": "BREACHED", "pass": "pass", "no_data": "no data"}.get(c.status, c.status),
                "first_breach": fmt_time(c.first_breach_at) if c.first_breach_at else "—",
                "worst": fmt_value(c.name, c.kind, c.worst_value),
                "breached_for": fmt_duration(c.breached_seconds) if c.breached else "—",
                "evaluated": f"{c.evaluated} of {c.evaluated + c.no_data_points}",
                "no_data_reason": c.no_data_reason or "",
                "chart_id": f"criterion-{c.name}",
            }
        )

    summary = summary_sentences(ev)
    table = prepare_counters(bundle.table("series"), bundle.table("samples"))
    charts = build_charts(bundle, ev, table)

    lag_steps = []
    points = [
        (
            "first policy breach",
            lag.first_breach_at,
            FRIENDLY.get(lag.first_breach_criterion or "", lag.first_breach_criterion or ""),
        ),
        ("Flagger's first halt", lag.first_halt_at, ""),
        ("rollback decision", lag.rollback_at, ""),
        ("canary traffic at 0", lag.canary_traffic_zero_at, ""),
    ]
    known = [t for _, t, _ in points if t is not None]
    lo = min(known) if known else None
    hi = max(known) if known else None
    span = (hi - lo).total_seconds() if lo and hi else 0.0
    prev: dt.datetime | None = None
    for label, t, note in points:
        pos = None
        if t is not None and lo is not None:
            pos = 2 + 96 * ((t - lo).total_seconds() / span if span > 0 else 0.0)
        lag_steps.append(
            {
                "label": label,
                "time": fmt_time(t),
                "note": note,
                "delta": (f"+{fmt_duration((t - prev).total_seconds())}" if t is not None and prev is not None else ""),
                "x": f"{pos:.1f}" if pos is not None else None,
                "anchor": "start" if pos is not None and pos < 20 else "end" if pos is not None and pos > 80 else "middle",
                # Labels near the right edge are placed from the right so they stay on the page.
                "side": "right" if pos is not None and pos > 80 else "left",
                "pos": f"{(100 - pos) if pos is not None and pos > 80 else (pos or 0):.1f}",
            }
        )
        if t is not None:
            prev = t
    lag_ctx = {
        "steps": lag_steps,
        "detection_lag": fmt_duration(lag.detection_lag_seconds),
        "has_lag": lag.detection_lag_seconds is not None,
        "breach_to_traffic_zero": fmt_duration(lag.breach_to_traffic_zero_seconds),
    }

    blast_rows = [
        ("highest canary weight", f"{blast.max_weight} %"),
        ("requests served by the canary", fmt_int(blast.canary_requests)),
        ("5xx served by the canary", fmt_int(blast.canary_errors)),
        (
            "5xx at the primary's error share",
            f"{fmt_num(blast.expected_errors, 1)} (primary share {fmt_num((blast.primary_error_share or 0) * 100, 3)} %)"
            if blast.expected_errors is not None
            else "—",
        ),
        ("excess 5xx (hurt by the canary)", fmt_num(blast.excess_errors, 0) if blast.excess_errors is not None else "—"),
        (
            "exposure",
            f"{fmt_duration(blast.exposure_seconds)} ({fmt_time(blast.exposure_start)} → {fmt_time(blast.exposure_end)})"
            + (" — still open at the window's end" if blast.exposure_open else ""),
        ),
        ("first canary request", fmt_time(blast.first_canary_request_at)),
        ("canary traffic back at 0", fmt_time(blast.canary_traffic_zero_at)),
    ]
    shares = [
        {
            "from": fmt_time(s.start),
            "to": fmt_time(s.end),
            "weight": f"{s.weight} %",
            "observed": f"{s.observed_percent:.1f} %" if s.observed_percent is not None else "—",
            "requests": fmt_int(s.canary_requests),
            "mismatch": s.mismatch,
        }
        for s in blast.shares
    ]

    events = bundle.table("events")
    timeline_rows = []
    for row in events.sort_values("time").itertuples(index=False):
        when: dt.datetime = row.time.to_pydatetime()  # type: ignore[union-attr,assignment]
        flags = []
        if bool(row.aggregated):
            flags.append("aggregated by client-go: only the latest message is known")
        if bool(row.cross_rollout):
            flags.append("Event deduplicated with an earlier rollout")
        count = _opt(row.k8s_count)
        if count is not None and int(count) > 1:
            flags.append(f"Event count {int(count)}")
        timeline_rows.append(
            {
                "time": fmt_time(when) + (f".{when.microsecond // 1000:03d}" if when.microsecond else ""),
                "sources": str(row.sources),
                "type": str(row.type),
                "action": str(row.action),
                "message": str(row.message),
                "flags": "; ".join(flags),
                "warning": str(row.type) == "Warning",
            }
        )

    settings = _settings(canary, analysis, bundle)
    policy_rows = [
        {
            "name": c.name,
            "description": c.description,
            "threshold": fmt_threshold(c.kind, c.comparator, c.threshold),
            "window": fmt_duration(c.window_seconds),
            "min_requests": str(c.min_requests),
        }
        for c in ev.policy.criteria
    ]
    limits = ev.policy.limits
    policy_limits = [
        ("max canary weight before full confidence", f"{limits.max_weight} %"),
        (
            "progressDeadlineSeconds",
            f"set and ≤ {limits.progress_deadline_seconds} s"
            if limits.require_progress_deadline
            else f"≤ {limits.progress_deadline_seconds} s",
        ),
        (
            "rollback path",
            "required (rollback or pre-rollout webhook, or an alert provider)"
            if limits.require_rollback_path
            else "not required",
        ),
    ]
    findings = [
        {"severity": f.severity, "code": f.code, "message": f.message, "at": fmt_time(f.at) if f.at else ""}
        for f in sorted(ev.findings, key=lambda f: {"error": 0, "warning": 1, "info": 2}.get(f.severity, 3))
    ]
    replay = []
    for label, r in (("Flagger's own checks", ev.replay_flagger), ("the abort policy", ev.replay_policy)):
        replay.append(
            {
                "label": label,
                "checks": ", ".join(r.checks) or "—",
                "failed": f"{r.failed_checks} of {len(r.ticks)} ticks",
                "first_failure": fmt_time(r.first_failure_at),
                "rollback": fmt_time(r.rollback_at) if r.would_roll_back else "would not roll back",
                "notes": "; ".join(r.notes),
            }
        )
    actual = fmt_time(tl.rollback_at) if tl.rollback_at else f"no rollback ({OUTCOME_LABEL.get(ev.outcome, ev.outcome).lower()})"

    provenance = _provenance(bundle)
    notes = list(dict.fromkeys([*ev.notes, *tl.notes, *blast.notes]))

    halts = [
        {
            "time": fmt_time(h.time),
            "metric": h.metric or "—",
            "value": fmt_num(h.value) if h.value is not None else "—",
            "threshold": (f"{h.comparator} {fmt_num(h.threshold)}" if h.threshold is not None else "—"),
            "message": h.message,
        }
        for h in tl.halts
    ]
    steps = [{"time": fmt_time(s.time), "weight": f"{s.weight} %", "action": s.action} for s in tl.weight_steps]
    workloads = _workloads(bundle)

    return {
        "title": f"Decision record — {ev.canary}",
        "header": header,
        "summary": summary,
        "criteria": criteria_rows,
        "charts": charts,
        "lag": lag_ctx,
        "blast": blast_rows,
        "shares": shares,
        "timeline": timeline_rows,
        "halts": halts,
        "weight_steps": steps,
        "settings": settings,
        "policy": {"source": ev.policy.source, "criteria": policy_rows, "limits": policy_limits},
        "findings": findings,
        "replay": replay,
        "replay_actual": actual,
        "provenance": provenance,
        "notes": notes,
        "workloads": workloads,
        "postmortem": postmortem_facts(ev, summary, workloads),
    }


def _parse(text: Any) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def summary_sentences(ev: Evaluation) -> list[str]:
    """Return the decision summary in plain words."""
    tl, lag, blast = ev.timeline, ev.lag, ev.blast
    out = []
    n_failed = tl.failed_checks_reported if tl.failed_checks_reported is not None else len(tl.halts)
    if ev.outcome == "rolled_back":
        first = (
            f"Rolled back by Flagger at {fmt_time(tl.rollback_at)} after {n_failed} failed check{'s' if n_failed != 1 else ''}"
        )
    elif ev.outcome == "promoted":
        first = f"Promoted by Flagger at {fmt_time(tl.promoted_at)} after reaching {tl.max_weight} % canary weight"
        if tl.halts:
            first += f" ({len(tl.halts)} failed check{'s' if len(tl.halts) != 1 else ''} on the way)"
    elif ev.outcome == "failed":
        first = f"Failed at {fmt_time(tl.failed_at or tl.rollback_at)}: {tl.outcome_reason}"
    elif ev.outcome == "in_progress":
        first = f"Still in progress at the end of the window, at {tl.max_weight} % canary weight"
    else:
        first = "Flagger's outcome is unknown: no terminal event was collected"
    breached = sorted(
        (c for c in ev.criteria if c.breached and c.first_breach_at), key=lambda c: c.first_breach_at or ev.window_end
    )
    if breached:
        c0 = breached[0]
        names = ", ".join(FRIENDLY.get(c.name, c.name) for c in breached)
        crit = f"the {FRIENDLY.get(c0.name, c0.name)} criterion was breached from {fmt_time(c0.first_breach_at)}"
        if len(breached) > 1:
            crit += f" ({len(breached)} criteria breached: {names})"
        if lag.detection_lag_seconds is not None:
            crit += f" — detection lag {fmt_duration(lag.detection_lag_seconds)}"
        elif ev.outcome == "promoted":
            crit += " — yet Flagger promoted the canary"
        out.append(f"{first}; {crit}.")
    else:
        evaluated = sum(c.evaluated for c in ev.criteria)
        if evaluated:
            out.append(f"{first}; no abort criterion was breached.")
        else:
            reasons = "; ".join(sorted({c.no_data_reason for c in ev.criteria if c.no_data_reason})) or "no canary traffic"
            out.append(f"{first}; the abort policy could not be evaluated ({reasons}) — this is no evidence of health.")
    if blast.canary_requests or blast.max_weight:
        served = f"The canary served {fmt_int(blast.canary_requests)} request{'s' if blast.canary_requests != 1 else ''}"
        served += f", {fmt_int(blast.canary_errors)} of them 5xx"
        if blast.excess_errors is not None and blast.canary_requests:
            served += f" ({fmt_num(blast.excess_errors, 0)} more than the primary's rate would give)"
        served += f", at up to {blast.max_weight} % weight for {fmt_duration(blast.exposure_seconds)}."
        out.append(served)
    else:
        out.append("The canary took no traffic.")
    out.append(
        f"Policy verdict: {'ABORT' if ev.verdict == 'abort' else 'pass'}"
        + ("" if ev.evidence_sufficient else " (insufficient evidence)")
        + "."
    )
    return out


def _marker_list(ev: Evaluation, start: dt.datetime, end: dt.datetime) -> tuple[Marker, ...]:
    out = []
    for e in ev.timeline.entries:
        kind = MARKER_KIND.get(e.action)
        if kind and start <= e.time <= end:
            out.append(Marker(e.time, kind, f"{fmt_time(e.time)} {e.message}"))
    return tuple(out)


def _weight_line(ev: Evaluation, start: dt.datetime, end: dt.datetime) -> Line:
    w = ev.timeline.weights()
    times = [start]
    values: list[float | None] = [float(w.at(np.array([_ms(start)]))[0])]
    for t_ms, v in zip(w.times.tolist(), w.weights.tolist()):
        t = _dt(t_ms)
        if start < t <= end:
            times.append(t)
            values.append(float(v))
    times.append(end)
    values.append(values[-1])
    return Line("canary weight set by Flagger (%)", "weight", times, values, shape="hv")


def build_charts(bundle: Bundle, ev: Evaluation, table: Any) -> list[ChartSpec]:
    """Return the report's chart specs: one per criterion, Flagger's checks, traffic."""
    start, end = ev.window_start, ev.window_end
    weight = _weight_line(ev, start, end)
    markers = _marker_list(ev, start, end)
    charts: list[ChartSpec] = []
    for c in ev.criteria:
        crit = ev.policy.criterion(c.name)
        pts = c.points
        title = f"{FRIENDLY.get(c.name, c.name)}: {c.description}"
        if crit is None or pts is None or len(pts) == 0:
            charts.append(
                ChartSpec(
                    f"criterion-{c.name}",
                    title,
                    "",
                    (),
                    x_range=(start, end),
                    no_data=c.no_data_reason or "never evaluated: the canary took no traffic",
                )
            )
            continue
        times = [t.to_pydatetime() for t in pts["time"]]
        values = pts["value"].to_numpy(dtype=float)
        comps = criterion_components(table, crit, np.array([_ms(t) for t in times], dtype=np.int64), values)
        lines = tuple(Line(comp.label, comp.role, times, comp.values.tolist()) for comp in comps.lines)
        charts.append(
            ChartSpec(
                f"criterion-{c.name}",
                title,
                comps.unit,
                lines,
                y2_title="weight (%)",
                y2_lines=(weight,),
                breach_spans=tuple((s.start, s.end) for s in c.breached_spans),
                nodata_spans=tuple((s.start, s.end) for s in c.no_data_spans),
                markers=markers,
                x_range=(start, end),
            )
        )
    charts.extend(_checks_charts(bundle, ev, markers, weight))
    charts.append(_traffic_chart(ev, table, weight))
    return charts


def _checks_charts(bundle: Bundle, ev: Evaluation, markers: tuple[Marker, ...], weight: Line) -> list[ChartSpec]:
    """Return one chart per Flagger metric: its value at each analysis tick against its thresholds."""
    checks: pd.DataFrame = bundle.table("checks")
    start, end = ev.window_start, ev.window_end
    spec = bundle.canary.get("spec") or {}
    metrics = [str(m.get("name")) for m in ((spec.get("analysis") or spec.get("canaryAnalysis") or {}).get("metrics") or [])]
    halts = tuple(m for m in markers if m.kind in ("halt", "rollback"))
    if not metrics:
        return [
            ChartSpec(
                "flagger-check", "Flagger's checks", "", (), x_range=(start, end), no_data="the Canary has no metrics to re-run"
            )
        ]
    charts = []
    for i, metric in enumerate(metrics):
        df = checks[checks["metric"] == metric]
        unit = "%" if metric == "request-success-rate" else "ms" if metric == "request-duration" else "value"
        title = f"Flagger's check {metric} at each analysis tick"
        cid = f"flagger-check-{i}"
        query = next((q for q in bundle.manifest.get("queries", []) if q.get("id") == f"check:{metric}"), None)
        if len(df) == 0 or df["value"].notna().sum() == 0:
            if query is None:
                why = "its query could not be re-run (see Evidence and provenance)"
            elif query.get("status") == "failed":
                why = f"the query failed: {query.get('error')}"
            else:
                why = "the query returned no values at any tick — Flagger's 'no values found'"
            charts.append(ChartSpec(cid, title, "", (), x_range=(start, end), no_data=why))
            continue
        times = [t.to_pydatetime() for t in df["timestamp"]]
        lines = [Line(f"{metric} ({unit})", "canary", times, df["value"].astype(float).tolist())]
        lo = df["threshold_min"].dropna()
        hi = df["threshold_max"].dropna()
        if len(lo):
            lines.append(Line(f"halt below {float(lo.iloc[0]):g} {unit}", "threshold", [start, end], [float(lo.iloc[0])] * 2))
        if len(hi):
            lines.append(Line(f"halt above {float(hi.iloc[0]):g} {unit}", "threshold", [start, end], [float(hi.iloc[0])] * 2))
        charts.append(
            ChartSpec(
                cid,
                title,
                f"{metric} ({unit})",
                tuple(lines),
                y2_title="weight (%)",
                y2_lines=(weight,),
                markers=halts,
                x_range=(start, end),
                height=300,
            )
        )
    return charts


def _traffic_chart(ev: Evaluation, table: Any, weight: Line) -> ChartSpec:
    start, end = ev.window_start, ev.window_end
    scrapes = scrape_times(table, _ms(start), _ms(end))
    title = "Traffic: requests per second, and the canary's observed share next to the weight Flagger set"
    if scrapes.size < 2:
        return ChartSpec("traffic", title, "", (), x_range=(start, end), no_data="fewer than two Traefik scrapes in the window")
    rates = request_rates(table, scrapes)
    times = [_dt(t) for t in scrapes.tolist()]
    total = rates["primary"] + rates["canary"]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total > 0, rates["canary"] / total * 100, np.nan)
    return ChartSpec(
        "traffic",
        title,
        "requests per second",
        (
            Line("primary req/s", "primary", times, rates["primary"].tolist()),
            Line("canary req/s", "canary", times, rates["canary"].tolist()),
        ),
        y2_title="share (%)",
        y2_lines=(weight, Line("canary's observed share (%)", "value", times, share.tolist())),
        x_range=(start, end),
    )


def _settings(canary: dict[str, Any], analysis: dict[str, Any], bundle: Bundle) -> dict[str, Any]:
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


def _workloads(bundle: Bundle) -> list[dict[str, str]]:
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


def _provenance(bundle: Bundle) -> dict[str, Any]:
    m = bundle.manifest
    src = m.get("sources", {})
    kube = src.get("kubernetes", {})
    prom = src.get("prometheus", {})
    ev_src = src.get("events", {})
    sources = [
        ("Kubernetes", f"{kube.get('kind', '?')} {kube.get('location', '?')}"),
        ("Prometheus", f"{prom.get('url', '?')}" + (f" (auth: {', '.join(prom.get('auth') or [])})" if prom.get("auth") else "")),
        (
            "Flagger events",
            f"webhook {ev_src.get('webhook', 0)}, log {ev_src.get('log', 0)}, Kubernetes Events {ev_src.get('kubernetes', 0)}",
        ),
        ("window", f"{m['window']['start']} → {m['window']['end']} ({m['window'].get('chosen', '')})"),
        ("collected", f"{m.get('collected_at')} by evidence {m.get('tool', {}).get('version', '?')}"),
    ]
    queries = [
        {
            "id": str(q.get("id")),
            "status": str(q.get("status")),
            "series": str(q.get("series", "")),
            "samples": fmt_int(q.get("samples")),
            "chunks": str(q.get("chunks", "")),
            "query": str(q.get("query", "")),
            "error": str(q.get("error") or ""),
        }
        for q in m.get("queries", [])
    ]
    gaps = []
    for g in m.get("gaps", []):
        where = g.get("query") or f"{g.get('from', '')} → {g.get('to', '')}"
        gaps.append(
            {
                "kind": str(g.get("kind")),
                "where": str(where),
                "detail": str(g.get("detail") or ""),
                "meaning": GAP_MEANING.get(str(g.get("kind")), ""),
            }
        )
    files = [
        {"name": name, "sha256": str(info.get("sha256")), "bytes": fmt_int(info.get("bytes")), "rows": fmt_int(info.get("rows"))}
        for name, info in sorted(m.get("files", {}).items())
    ]
    return {
        "sources": sources,
        "queries": queries,
        "gaps": gaps,
        "warnings": [str(w) for w in m.get("warnings", [])],
        "files": files,
        "manifest_sha256": bundle.manifest_sha256,
        "counts": json.dumps(m.get("counts", {})),
    }


def postmortem_facts(ev: Evaluation, summary: list[str], workloads: list[dict[str, str]]) -> dict[str, Any]:
    """Return the pre-filled parts of the postmortem, in the usual SRE shape."""
    tl, lag, blast = ev.timeline, ev.lag, ev.blast
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
            f"{FRIENDLY.get(c.name, c.name)}: worst {fmt_value(c.name, c.kind, c.worst_value)} ({c.description}), breached for {fmt_duration(c.breached_seconds)}."
        )
    detection = [
        f"First policy breach: {fmt_time(lag.first_breach_at)}"
        + (
            f" ({FRIENDLY.get(lag.first_breach_criterion or '', lag.first_breach_criterion)})."
            if lag.first_breach_criterion
            else "."
        ),
        f"Flagger's first halt: {fmt_time(lag.first_halt_at)}"
        + (f" (+{fmt_duration(lag.breach_to_halt_seconds)})." if lag.breach_to_halt_seconds is not None else "."),
        f"Rollback decision: {fmt_time(lag.rollback_at)}"
        + (f" (+{fmt_duration(lag.halt_to_rollback_seconds)})." if lag.halt_to_rollback_seconds is not None else "."),
        f"Canary traffic back at 0: {fmt_time(lag.canary_traffic_zero_at)}"
        + (
            f" (+{fmt_duration(lag.rollback_to_traffic_zero_seconds)})."
            if lag.rollback_to_traffic_zero_seconds is not None
            else "."
        ),
        f"Detection lag (rollback decision − first breach): {fmt_duration(lag.detection_lag_seconds)}.",
    ]
    timeline = []
    for e in tl.entries:
        if e.action in (
            "new-revision",
            "start",
            "advance",
            "halt",
            "rollback",
            "rollback-manual",
            "failed",
            "promote-start",
            "route-primary",
            "promoted",
            "promotion-failed",
            "not-ready",
            "restart",
        ):
            timeline.append({"time": fmt_time(e.time), "message": e.message})
    if ev.lag.first_breach_at is not None:
        timeline.append(
            {
                "time": fmt_time(ev.lag.first_breach_at),
                "message": f"[policy] {FRIENDLY.get(ev.lag.first_breach_criterion or '', '')} criterion first breached",
            }
        )
        timeline.sort(key=lambda r: r["time"])
    trigger = f"Rollout of {canary_image} to {ev.canary} (Flagger: 'New revision detected' at {fmt_time(tl.started_at)})."
    if breached:
        trigger += f" Under real traffic the {', '.join(FRIENDLY.get(c.name, c.name) for c in breached)} criteria were breached."
    if ev.outcome == "rolled_back":
        resolution = f"Flagger rolled back at {fmt_time(tl.rollback_at)} ({tl.rollback_reason or tl.outcome_reason}); traffic was back on the primary at {fmt_time(blast.canary_traffic_zero_at or tl.traffic_to_primary_at)}."
    elif ev.outcome == "promoted":
        resolution = f"Flagger promoted the canary at {fmt_time(tl.promoted_at)}" + (
            " although the abort policy was breached: the new revision now serves all traffic." if breached else "."
        )
    elif ev.outcome == "failed":
        resolution = f"The rollout failed at {fmt_time(tl.failed_at)}: {tl.outcome_reason}."
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
