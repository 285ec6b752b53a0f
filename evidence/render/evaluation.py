"""The evaluation as JSON (``evidence evaluate --json``) and as a terminal summary.

Both are pure: an ``Evaluation`` in, a dict or a string out.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import TYPE_CHECKING, Any

from evidence.analysis.criteria import CriterionResult, Span, duration_text
from evidence.analysis.replay import Replay
from evidence.model import rfc3339
from evidence.policy import policy_to_json
from evidence.render.formatting import fmt_threshold, fmt_value

if TYPE_CHECKING:
    from evidence.evaluate import Evaluation


def _num(x: float | None, digits: int = 6) -> float | None:
    if x is None or not math.isfinite(float(x)):
        return None
    return round(float(x), digits)


def _span(s: Span) -> dict[str, Any]:
    d: dict[str, Any] = {"start": rfc3339(s.start), "end": rfc3339(s.end), "points": s.points}
    if s.reason is not None:
        d["reason"] = s.reason
    return d


def _criterion_json(c: CriterionResult, include_series: bool) -> dict[str, Any]:
    d: dict[str, Any] = {
        "name": c.name,
        "threshold": c.threshold,
        "breached": c.breached,
        "first_breach_at": rfc3339(c.first_breach_at),
        "worst_value": _num(c.worst_value),
        "comparator": c.comparator,
        "status": c.status,
        "kind": c.kind,
        "description": c.description,
        "unit": c.unit,
        "window_seconds": c.window_seconds,
        "min_requests": c.min_requests,
        "worst_at": rfc3339(c.worst_at),
        "last_value": _num(c.last_value),
        "evaluated_points": c.evaluated,
        "no_data_points": c.no_data_points,
        "no_data_reason": c.no_data_reason,
        "breached_seconds": c.breached_seconds,
        "breached_spans": [_span(s) for s in c.breached_spans],
        "no_data_spans": [_span(s) for s in c.no_data_spans],
    }
    if include_series:
        p = c.points
        d["series"] = [
            {"t": rfc3339(t.to_pydatetime()), "value": _num(v), "state": st, "canary_requests": _num(r, 3)}
            for t, v, st, r in zip(p["time"], p["value"], p["state"], p["canary_requests"], strict=True)
        ]
    return d


def _replay_json(r: Replay) -> dict[str, Any]:
    return {
        "threshold": r.threshold,
        "interval_seconds": r.interval_seconds,
        "checks": list(r.checks),
        "ticks": len(r.ticks),
        "failed_checks": r.failed_checks,
        "first_failure_at": rfc3339(r.first_failure_at),
        "threshold_reached_at": rfc3339(r.threshold_reached_at),
        "rollback_at": rfc3339(r.rollback_at),
        "would_roll_back": r.would_roll_back,
        "failures": [
            {
                "at": rfc3339(t.time),
                "check": t.check,
                "value": _num(t.value),
                "reason": t.reason,
                "failed_checks": t.failed_checks,
            }
            for t in r.ticks
            if t.failed
        ],
        "notes": list(r.notes),
    }


def evaluation_to_json(ev: Evaluation, *, include_series: bool = False) -> dict[str, Any]:
    """Return the evaluation as JSON-ready values (``include_series``: every criterion's values too)."""
    tl, b, lag = ev.timeline, ev.blast, ev.lag
    return {
        "canary": ev.canary,
        "verified": ev.verified,
        **({"unverified_reason": ev.unverified_reason} if ev.verified is False else {}),
        "outcome": ev.outcome,
        "verdict": ev.verdict,
        "criteria": [_criterion_json(c, include_series) for c in ev.criteria],
        "flagger": {
            "first_halt_at": rfc3339(tl.first_halt_at),
            "rollback_at": rfc3339(tl.rollback_at),
            "rollback_inferred": tl.rollback_inferred,
            "promoted_at": rfc3339(tl.promoted_at),
            "max_weight": int(tl.max_weight),
            "outcome_reason": tl.outcome_reason,
            "outcome_source": tl.outcome_source,
            "confidence": tl.confidence,
            "started_at": rfc3339(tl.started_at),
            "first_traffic_at": rfc3339(tl.first_traffic_at),
            "promotion_started_at": rfc3339(tl.promotion_started_at),
            "failed_at": rfc3339(tl.failed_at),
            "traffic_to_primary_at": rfc3339(tl.traffic_to_primary_at),
            "failed_checks_reported": tl.failed_checks_reported,
            "failed_checks": tl.failed_checks,
            "restarts": tl.restarts,
            "halts": [
                {
                    "at": rfc3339(h.time),
                    "metric": h.metric,
                    "value": _num(h.value),
                    "threshold": _num(h.threshold),
                    "comparator": h.comparator,
                    "occurrences": h.occurrences,
                    "kind": h.kind,
                    "message": h.message,
                }
                for h in tl.halts
            ],
            "weight_steps": [{"at": rfc3339(s.time), "weight": s.weight, "by": s.action} for s in tl.weight_steps],
        },
        "detection_lag_seconds": _num(lag.detection_lag_seconds, 3),
        "detection_lag": {
            "first_breach_at": rfc3339(lag.first_breach_at),
            "first_breach_criterion": lag.first_breach_criterion,
            "first_halt_at": rfc3339(lag.first_halt_at),
            "rollback_at": rfc3339(lag.rollback_at),
            "canary_traffic_zero_at": rfc3339(lag.canary_traffic_zero_at),
            "breach_to_halt_seconds": _num(lag.breach_to_halt_seconds, 3),
            "halt_to_rollback_seconds": _num(lag.halt_to_rollback_seconds, 3),
            "rollback_to_traffic_zero_seconds": _num(lag.rollback_to_traffic_zero_seconds, 3),
            "breach_to_traffic_zero_seconds": _num(lag.breach_to_traffic_zero_seconds, 3),
        },
        "blast_radius": {
            "max_weight": int(b.max_weight),
            "canary_requests": int(b.canary_requests),
            "canary_errors": int(b.canary_errors),
            "exposure_seconds": _num(b.exposure_seconds, 3) or 0.0,
            "exposure_start": rfc3339(b.exposure_start),
            "exposure_end": rfc3339(b.exposure_end),
            "exposure_open": b.exposure_open,
            "primary_requests": b.primary_requests,
            "primary_errors": b.primary_errors,
            "primary_error_share": _num(b.primary_error_share),
            "expected_errors": _num(b.expected_errors, 3),
            "excess_errors": _num(b.excess_errors, 3),
            "first_canary_request_at": rfc3339(b.first_canary_request_at),
            "canary_traffic_zero_at": rfc3339(b.canary_traffic_zero_at),
            "traffic_shares": [
                {
                    "start": rfc3339(s.start),
                    "end": rfc3339(s.end),
                    "weight": s.weight,
                    "observed_percent": _num(s.observed_percent, 3),
                    "tolerance_points": _num(s.tolerance_points, 3),
                    "canary_requests": s.canary_requests,
                    "primary_requests": s.primary_requests,
                    "mismatch": s.mismatch,
                }
                for s in b.shares
            ],
        },
        "replay": {
            "actual_rollback_at": rfc3339(tl.rollback_at),
            "flagger": _replay_json(ev.replay_flagger),
            "policy": _replay_json(ev.replay_policy),
        },
        "findings": [{"code": f.code, "severity": f.severity, "message": f.message, "at": rfc3339(f.at)} for f in ev.findings],
        "evidence_sufficient": ev.evidence_sufficient,
        "confidence": {"timeline": tl.confidence, "notes": list(ev.notes)},
        "timeline": [
            {
                "at": rfc3339(e.time),
                "action": e.action,
                "type": e.type,
                "message": e.message,
                "weight": e.weight,
                "metric": e.metric,
                "value": _num(e.value),
                "threshold": _num(e.threshold),
                "comparator": e.comparator,
                "sources": e.sources,
                "k8s_count": e.count,
                "lossy": e.lossy,
            }
            for e in tl.entries
        ],
        "bundle_id": ev.bundle_id,
        "target": ev.target,
        "window": {"start": rfc3339(ev.window_start), "end": rfc3339(ev.window_end)},
        "evaluated_span": {"start": rfc3339(ev.rollout_start), "end": rfc3339(ev.rollout_end), "how": ev.rollout_how},
        "analysis": {"interval_seconds": ev.interval_seconds, "threshold": ev.threshold, "evaluation_times": ev.evaluation_times},
        "policy": policy_to_json(ev.policy),
    }


def _t(t: dt.datetime | None) -> str:
    return rfc3339(t) or "-"


def _delta(s: float | None) -> str:
    return "" if s is None else f"  (+{s:.0f} s)" if s >= 0 else f"  ({s:.0f} s)"


def format_evaluation(ev: Evaluation) -> str:
    """Return a readable terminal summary of an evaluation."""
    tl, b, lag = ev.timeline, ev.blast, ev.lag
    lines = [f"evidence evaluate: {ev.canary}" + (f"  (bundle {ev.bundle_id[:8]})" if ev.bundle_id else "")]
    if ev.verified is False:
        lines.insert(0, f"UNVERIFIED: {ev.unverified_reason}")
    lines.append(f"evaluated from the rollout start {_t(ev.rollout_start)} to {_t(ev.rollout_end)}   policy: {ev.policy.source}")
    lines.append("")
    n_breached = sum(c.breached for c in ev.criteria)
    if ev.verdict == "abort":
        lines.append(f"VERDICT   ABORT: {n_breached} of {len(ev.criteria)} criteria breached")
    elif ev.evidence_sufficient:
        lines.append("VERDICT   PASS: no criterion breached")
    else:
        lines.append("VERDICT   PASS (NO DATA): no criterion could be evaluated; this is not evidence of a healthy canary")
    lines.append(f"OUTCOME   {ev.outcome} ({tl.outcome_reason}; confidence {tl.confidence})")
    lines.append("")
    lines.append(f"Criteria, evaluated at {ev.evaluation_times} scrape(s) while the canary took traffic")
    width = max((len(c.name) for c in ev.criteria), default=10)
    for c in ev.criteria:
        mark = {"breached": "x", "pass": "ok", "no_data": "--"}[c.status]
        status = {"breached": "BREACHED", "pass": "pass", "no_data": "NO DATA"}[c.status]
        head = f"  [{mark:>2}] {c.name:<{width}}  {status:<8}  breach {fmt_threshold(c.kind, c.comparator, c.threshold, terminal=True):<9} {duration_text(c.window_seconds)} window"
        if c.status == "no_data":
            lines.append(f"{head}  -- {c.no_data_reason}")
            continue
        detail = f"  worst {fmt_value(c.kind, c.worst_value, terminal=True)}"
        if c.first_breach_at:
            detail = f"  first {_t(c.first_breach_at)}" + detail + f"  breached {c.breached_seconds:.0f} s"
        detail += f"  ({c.evaluated}/{c.evaluated + c.no_data_points} with data)"
        lines.append(head + detail)
    lines.append("")
    lines.append("Detection lag")
    lines.append(
        f"  first policy breach      {_t(lag.first_breach_at)}"
        + (f"  ({lag.first_breach_criterion})" if lag.first_breach_criterion else "")
    )
    lines.append(f"  Flagger's first halt     {_t(lag.first_halt_at)}{_delta(lag.breach_to_halt_seconds)}")
    lines.append(f"  rollback decision        {_t(lag.rollback_at)}{_delta(lag.halt_to_rollback_seconds)}")
    lines.append(f"  canary traffic at 0      {_t(lag.canary_traffic_zero_at)}{_delta(lag.rollback_to_traffic_zero_seconds)}")
    dl = lag.detection_lag_seconds
    lines.append(
        "  detection lag (rollback - first breach): "
        + (f"{dl:.0f} s" if dl is not None else "n/a (needs both a breach and a rollback)")
    )
    if tl.promoted_at:
        lines.append(f"  promoted                 {_t(tl.promoted_at)}")
    lines.append("")
    lines.append("Blast radius")
    lines.append(f"  max weight {b.max_weight}%, canary requests {b.canary_requests}, 5xx {b.canary_errors}")
    if b.expected_errors is not None and b.primary_error_share is not None and b.canary_requests > 0:
        lines.append(
            f"  at the primary's 5xx share ({b.primary_error_share * 100:.2f}%) the canary would have served "
            f"{b.expected_errors:.1f} errors: excess {b.excess_errors or 0:.1f}"
        )
    exp = f"  exposure {b.exposure_seconds:.0f} s"
    if b.exposure_start:
        exp += f" ({_t(b.exposure_start)} -> {_t(b.exposure_end)}{', still open' if b.exposure_open else ''})"
    lines.append(exp)
    lines.append("")
    lines.append(
        f"Replay over Flagger's analysis ticks (threshold {ev.threshold}, interval {duration_text(ev.interval_seconds)})"
    )
    for label, r in (("Flagger's checks", ev.replay_flagger), ("abort policy", ev.replay_policy)):
        if r.rollback_at:
            lines.append(f"  {label:<17} {r.failed_checks} failed tick(s): would roll back at {_t(r.rollback_at)}")
        else:
            lines.append(f"  {label:<17} {r.failed_checks} failed tick(s) of {len(r.ticks)}: would not roll back")
    if tl.rollback_at:
        actual = f"rolled back at {_t(tl.rollback_at)}" + (" (inferred)" if tl.rollback_inferred else "")
    elif not tl.ended:
        actual = f"unknown: no terminal event in the record ({ev.outcome})"
    else:
        actual = f"no rollback ({ev.outcome})"
    lines.append(f"  {'actual':<17} {actual}")
    if ev.findings:
        lines.append("")
        lines.append("Findings")
        for f in ev.findings:
            lines.append(f"  [{f.severity}] {f.code}: {f.message}")
    if ev.notes:
        lines.append("")
        lines.append("Notes on the evidence")
        for n in ev.notes:
            lines.append(f"  - {n}")
    return "\n".join(lines) + "\n"
