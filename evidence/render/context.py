"""Build a report's context: plain, already-formatted values and chart specs from a bundle.

Python computes, templates lay out: every number a report shows is formatted here, from the
bundle and its evaluation, so that the HTML, the PDF and the Markdown show the same figures.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from evidence import __version__
from evidence.canary import CanarySpec
from evidence.model import OutcomeCause
from evidence.render.formatting import (
    FRIENDLY,
    OUTCOME_LABEL,
    UTC,
    fmt_datetime,
    fmt_duration,
    fmt_int,
    fmt_num,
    fmt_threshold,
    fmt_time,
    fmt_value,
    none_if_na,
)
from evidence.render.panels import build_charts
from evidence.render.sections import (
    MAX_HALT_ROWS,
    MAX_MESSAGE_SHOWN,
    postmortem_facts,
    provenance_section,
    settings_section,
    shown_events,
    workloads_section,
)

if TYPE_CHECKING:
    from evidence.bundle import Bundle
    from evidence.evaluate import Evaluation


def build_context(bundle: Bundle, ev: Evaluation) -> dict[str, Any]:
    """Return the report context of a bundle and its evaluation."""
    m = bundle.record
    canary = bundle.canary
    window_start = ev.window_start
    window_end = ev.window_end
    tl = ev.timeline
    lag = ev.lag
    blast = ev.blast
    analysis = CanarySpec.from_object(canary).block

    header = {
        "canary": ev.canary,
        "namespace": m.canary.namespace,
        "name": m.canary.name,
        "target": ev.target,
        "window": f"{fmt_datetime(window_start)} → {fmt_datetime(window_end)}",
        "rollout_start": fmt_datetime(tl.started_at or ev.rollout_start),
        "outcome": ev.outcome,
        "outcome_label": OUTCOME_LABEL.get(ev.outcome, ev.outcome),
        "outcome_reason": tl.outcome_reason,
        "verdict": ev.verdict,
        "verdict_label": "ABORT" if ev.verdict == "abort" else "PASS",
        "unverified": f"UNVERIFIED: {bundle.unverified_reason}" if bundle.verified is False else "",
        "evidence_sufficient": ev.evidence_sufficient,
        "bundle_id": bundle.bundle_id,
        "bundle_short": bundle.bundle_id[:8],
        "manifest_sha256": bundle.manifest_sha256,
        "collected_at": fmt_datetime(m.collected_at),
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
                "worst": fmt_value(c.kind, c.worst_value),
                "breached_for": fmt_duration(c.breached_seconds) if c.breached else "—",
                "evaluated": f"{c.evaluated}/{c.evaluated + c.no_data_points}",
                "no_data_reason": c.no_data_reason or "",
                "chart_id": f"criterion-{c.name}",
            }
        )

    summary = summary_sentences(ev)
    charts = build_charts(bundle, ev)

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

    events, omitted = shown_events(bundle.table("events").sort_values("time"))
    timeline_rows = []
    for row in events.itertuples(index=False):
        when: dt.datetime = row.time.to_pydatetime()
        flags = []
        if bool(row.aggregated):
            flags.append("aggregated by client-go: only the latest message is known")
        if bool(row.cross_rollout):
            flags.append("Event deduplicated with an earlier rollout")
        count = none_if_na(row.k8s_count)
        if count is not None and int(count) > 1:
            flags.append(f"Event count {int(count)}")
        timeline_rows.append(
            {
                "time": fmt_time(when) + (f".{when.microsecond // 1000:03d}" if when.microsecond else ""),
                "sources": str(row.sources),
                "type": str(row.type),
                "action": str(row.action),
                "message": str(row.message)
                if len(str(row.message)) <= MAX_MESSAGE_SHOWN
                else str(row.message)[:MAX_MESSAGE_SHOWN]
                + f"… [{len(str(row.message)):,} characters; the whole text is in events.parquet]",
                "flags": "; ".join(flags),
                "warning": str(row.type) == "Warning",
            }
        )

    settings = settings_section(canary, analysis, bundle)
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
    label = OUTCOME_LABEL.get(ev.outcome, ev.outcome).lower()
    if tl.rollback_at:
        actual = fmt_time(tl.rollback_at) + (" (inferred)" if tl.rollback_inferred else "")
    elif not tl.ended:
        actual = f"unknown: no terminal event in the record ({label})"
    else:
        actual = f"no rollback ({label})"

    provenance = provenance_section(bundle)
    notes = list(dict.fromkeys([*ev.notes, *tl.notes, *blast.notes]))

    halts = [
        {
            "time": fmt_time(h.time),
            "metric": h.metric or "—",
            "value": fmt_num(h.value) if h.value is not None else "—",
            "threshold": (f"{h.comparator} {fmt_num(h.threshold)}" if h.threshold is not None else "—"),
            "message": h.message[:MAX_MESSAGE_SHOWN],
        }
        for h in (
            tl.halts if len(tl.halts) <= MAX_HALT_ROWS else (*tl.halts[: MAX_HALT_ROWS // 2], *tl.halts[-MAX_HALT_ROWS // 2 :])
        )
    ]
    if len(tl.halts) > MAX_HALT_ROWS:
        halts.insert(
            MAX_HALT_ROWS // 2,
            {
                "time": "…",
                "metric": "",
                "value": "",
                "threshold": "",
                "message": f"{len(tl.halts) - MAX_HALT_ROWS:,} more halts (all in events.parquet)",
            },
        )
    steps = [{"time": fmt_time(s.time), "weight": f"{s.weight} %", "action": s.action} for s in tl.weight_steps]
    workloads = workloads_section(bundle)

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
        "timeline_omitted": f"{omitted:,} more events are not shown here; every one is in the bundle's events.parquet"
        if omitted
        else "",
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


def summary_sentences(ev: Evaluation) -> list[str]:
    """Return the decision summary in plain words."""
    tl, lag, blast = ev.timeline, ev.lag, ev.blast
    out = []
    n_failed = tl.failed_checks if tl.failed_checks is not None else len(tl.halts)
    if ev.outcome == "rolled_back" and tl.failed_checks_reported is None and not tl.halts:
        # No rollback event and no halt in the record: how many checks failed is unknown, not 0.
        first = f"Rolled back by Flagger at {fmt_time(tl.rollback_at)} ({tl.outcome_reason})"
    elif ev.outcome == "rolled_back":
        first = (
            f"Rolled back by Flagger at {fmt_time(tl.rollback_at)} after {n_failed} failed check{'s' if n_failed != 1 else ''}"
        )
        if tl.outcome_cause == OutcomeCause.METRICS_UNAVAILABLE:
            first += ", each a metrics query that failed (the metrics server was unavailable), not a measured breach"
    elif ev.outcome == "promoted":
        first = f"Promoted by Flagger at {fmt_time(tl.promoted_at)} after reaching {tl.max_weight} % canary weight"
        if n_failed:
            first += f" ({n_failed} failed check{'s' if n_failed != 1 else ''} on the way)"
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
