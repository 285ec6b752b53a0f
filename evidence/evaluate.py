"""``evidence evaluate``: a bundle against the abort policy, and what Flagger did about it.

``evaluate_bundle`` reads the bundle's tables and hands them to the pure analysis
(``evidence.analysis``): the criteria at every scrape while the canary took traffic, Flagger's
timeline and outcome, the blast radius, the detection lag, and the what-if replays.
``evaluation_to_json`` and ``format_evaluation`` present the result; neither does any I/O.

The verdict is ``abort`` when at least one criterion is breached, else ``pass``.  A pass with
no criterion evaluated says so (``evidence_sufficient`` false and a finding): it is not
evidence that the canary was healthy.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evidence.analysis.blast import BlastRadius, blast_radius
from evidence.analysis.counters import CounterTable, prepare_counters
from evidence.analysis.criteria import CriterionResult, Span, duration_text, evaluate_criteria
from evidence.analysis.findings import Finding, check_rollout_limits
from evidence.analysis.lag import DetectionLag, detection_lag
from evidence.analysis.replay import Replay, analysis_ticks, replay_flagger, replay_policy
from evidence.analysis.timeline import MANIFEST_START, Timeline, build_timeline, rollout_span
from evidence.analysis.traffic import WeightSeries, canary_active, scrape_times, weight_gauge
from evidence.errors import BundleError, UsageError
from evidence.model import parse_time, rfc3339
from evidence.policy import Policy, default_policy, policy_to_json

if TYPE_CHECKING:
    from evidence.bundle import Bundle

VERDICTS = ("pass", "abort")
OUTCOMES = ("promoted", "rolled_back", "failed", "in_progress", "unknown")
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Everything ``evidence evaluate`` concludes about one rollout."""

    canary: str  # NAMESPACE/CANARY
    target: str
    bundle_id: str | None
    policy: Policy
    window_start: dt.datetime
    window_end: dt.datetime
    rollout_start: dt.datetime
    rollout_end: dt.datetime
    rollout_how: str
    outcome: str
    verdict: str
    evidence_sufficient: bool
    criteria: tuple[CriterionResult, ...]
    timeline: Timeline
    blast: BlastRadius
    lag: DetectionLag
    replay_flagger: Replay
    replay_policy: Replay
    findings: tuple[Finding, ...]
    notes: tuple[str, ...]
    evaluation_times: int
    interval_seconds: float
    threshold: int


def _interval_seconds(text: Any) -> float:
    """Return Flagger's analysis interval in seconds: default 60, at least 10 (canary.go)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return max(10.0, float(text))
    m = _DURATION.match(str(text or "").strip())
    if not text or not m or not any(m.groups()):
        return 60.0
    h, mi, s = (int(x) if x else 0 for x in m.groups())
    return max(10.0, float(h * 3600 + mi * 60 + s))


def _time(value: Any) -> dt.datetime | None:
    if not value:
        return None
    try:
        return parse_time(str(value), "manifest")
    except UsageError:  # a malformed manifest time is treated as absent
        return None


@dataclass(frozen=True, eq=False)
class RolloutRecord:
    """Which rollout of a bundle is judged, and what Flagger did in it: shared by evaluate and show."""

    canary: str  # NAMESPACE/CANARY
    target: str
    window_start: dt.datetime
    window_end: dt.datetime
    start: dt.datetime
    end: dt.datetime
    how: str
    gauge: WeightSeries
    timeline: Timeline


def reconstruct_rollout(
    manifest: Mapping[str, Any], canary: Mapping[str, Any], events: pd.DataFrame, table: CounterTable
) -> RolloutRecord:
    """Return the rollout the bundle is about and Flagger's timeline of it (``table`` needs at least the weight gauge)."""
    meta = canary.get("metadata") or {}
    spec = canary.get("spec") or {}
    found = manifest.get("canary")
    mcan: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
    namespace = str(meta.get("namespace") or mcan.get("namespace") or "")
    name = str(meta.get("name") or mcan.get("name") or "")
    target = str((spec.get("targetRef") or {}).get("name") or mcan.get("target") or name)
    window = manifest.get("window") or {}
    rollout = manifest.get("rollout") or {}
    ws, we = _time(window.get("start")), _time(window.get("end"))
    if ws is None or we is None:
        raise BundleError("the bundle's manifest has no window start/end; collect it again")
    start, end, how = rollout_span(events, ws, we, _time(rollout.get("start")))
    gauge = weight_gauge(table, target)
    timeline = build_timeline(events, start, end, canary, gauge)
    return RolloutRecord(f"{namespace}/{name}", target, ws, we, start, end, how, gauge, timeline)


def evaluate_bundle(bundle: Bundle, policy: Policy | None = None) -> Evaluation:
    """Evaluate a bundle against a policy (the default policy when None)."""
    try:
        canary: Mapping[str, Any] = bundle.canary
    except BundleError:
        if not isinstance(bundle.manifest.get("canary"), Mapping):
            raise
        canary = {}
    return evaluate_rollout(
        manifest=bundle.manifest,
        canary=canary,
        series=bundle.table("series"),
        samples=bundle.table("samples"),
        events=bundle.table("events"),
        checks=bundle.table("checks"),
        policy=policy or default_policy(),
    )


def evaluate_rollout(
    *,
    manifest: Mapping[str, Any],
    canary: Mapping[str, Any],
    series: pd.DataFrame,
    samples: pd.DataFrame,
    events: pd.DataFrame,
    checks: pd.DataFrame,
    policy: Policy,
) -> Evaluation:
    """Evaluate one rollout from the bundle's tables (pure: DataFrames in, an Evaluation out)."""
    notes: list[str] = []
    spec = canary.get("spec") or {}
    if not canary:
        notes.append("the bundle holds no Canary object: its spec (interval, threshold, metrics, limits) is unknown")
    analysis = spec.get("analysis") or spec.get("canaryAnalysis") or {}
    interval = _interval_seconds(analysis.get("interval"))
    thr = analysis.get("threshold")
    threshold = int(thr) if isinstance(thr, (int, float)) and thr > 0 else 1

    table = prepare_counters(series, samples)
    record = reconstruct_rollout(manifest, canary, events, table)
    ws, we, target = record.window_start, record.window_end, record.target
    span_start, span_end, how = record.start, record.end, record.how
    gauge, timeline = record.gauge, record.timeline
    weights = gauge if not gauge.empty else timeline.weights()

    scrapes = scrape_times(table, _ms(span_start), _ms(span_end))
    active = canary_active(table, weights, scrapes)
    times = scrapes[active]
    if scrapes.size == 0:
        empty = "no Traefik sample of the primary or canary services during the rollout"
    elif timeline.max_weight == 0 and not active.any():
        empty = "the canary took no traffic during the rollout (its weight stayed 0)"
    else:
        empty = "the canary took no traffic during the rollout"
    criteria = evaluate_criteria(table, policy, times, empty)
    verdict = "abort" if any(c.breached for c in criteria) else "pass"
    sufficient = any(c.evaluated > 0 for c in criteria)

    blast = blast_radius(table, timeline, span_start, span_end, scrapes)
    lag = detection_lag(criteria, timeline.first_halt_at, timeline.rollback_at, blast.canary_traffic_zero_at)

    tick_weights = timeline.weights() if any(s.action != "gauge" for s in timeline.weight_steps) else weights
    stops = [t for t in (timeline.rollback_at, timeline.failed_at) if t is not None]
    ticks = analysis_ticks(
        checks, interval, span_start, span_end, tick_weights, timeline.promotion_started_at, min(stops) if stops else None
    )
    metric_names = [str(m.get("name")) for m in analysis.get("metrics") or [] if isinstance(m, Mapping) and m.get("name")]
    if not metric_names and len(checks):
        metric_names = sorted(str(m) for m in checks["metric"].dropna().unique())
    queried = {
        str(q.get("metric"))
        for q in manifest.get("queries") or []
        if isinstance(q, Mapping) and q.get("kind") == "range" and q.get("metric") and q.get("status") != "failed"
    }
    rf = replay_flagger(checks, metric_names, threshold, interval, ticks, queried)
    rp = replay_policy(table, policy, threshold, interval, ticks)

    findings = list(check_rollout_limits(canary, policy.limits, timeline.max_weight if timeline.outcome != "failed" else None))
    findings.extend(_findings(timeline, criteria, blast, lag, rf, rp, verdict, sufficient))
    notes.extend(timeline.notes)
    notes.extend(blast.notes)
    notes.extend(_gap_notes(manifest, span_start, span_end))
    if how != MANIFEST_START:
        notes.append(f"the evaluated rollout: {how}")
    traefik = np.flatnonzero(table.series["role"].isin(["primary", "canary"]).to_numpy())
    restarted = table.restarted_between(traefik, _ms(span_start), _ms(span_end))
    if restarted.size:
        notes.append(
            f"{restarted.size} Traefik series restarted from 0 or were re-created during the rollout "
            "(a Traefik restart, or the canary's service added again): handled as counter resets"
        )

    return Evaluation(
        canary=record.canary,
        target=target,
        bundle_id=str(manifest["bundle_id"]) if manifest.get("bundle_id") else None,
        policy=policy,
        window_start=ws,
        window_end=we,
        rollout_start=span_start,
        rollout_end=span_end,
        rollout_how=how,
        outcome=timeline.outcome,
        verdict=verdict,
        evidence_sufficient=sufficient,
        criteria=criteria,
        timeline=timeline,
        blast=blast,
        lag=lag,
        replay_flagger=rf,
        replay_policy=rp,
        findings=tuple(findings),
        notes=tuple(dict.fromkeys(notes)),
        evaluation_times=int(times.size),
        interval_seconds=interval,
        threshold=threshold,
    )


def _ms(t: dt.datetime) -> int:
    return round(t.timestamp() * 1000)


def _gap_notes(manifest: Mapping[str, Any], start: dt.datetime, end: dt.datetime) -> list[str]:
    out = []
    for g in manifest.get("gaps") or []:
        if not isinstance(g, Mapping):
            continue
        if g.get("kind") == "scrape_gap":
            a, b = _time(g.get("from")), _time(g.get("to"))
            if a is not None and b is not None and a <= end and b >= start:
                out.append(
                    f"scrape gap {rfc3339(a)} → {rfc3339(b)}: criteria have no evaluation inside it; counts across it are exact"
                )
        elif g.get("kind") in ("query_failed", "query_empty"):
            out.append(f"query {g.get('query')}: {str(g.get('kind')).replace('_', ' ')} — {g.get('detail')}")
    return out


def _findings(
    tl: Timeline,
    criteria: tuple[CriterionResult, ...],
    blast: BlastRadius,
    lag: DetectionLag,
    rf: Replay,
    rp: Replay,
    verdict: str,
    sufficient: bool,
) -> list[Finding]:
    out: list[Finding] = []
    breached = [c for c in criteria if c.breached]
    names = ", ".join(c.name for c in breached)
    if verdict == "abort" and tl.outcome == "promoted":
        out.append(
            Finding(
                "promoted-despite-breach",
                "error",
                f"Flagger promoted the canary although the abort policy was breached ({names}); "
                "Flagger's own thresholds did not catch it",
                lag.first_breach_at,
            )
        )
    if verdict == "abort" and tl.outcome == "in_progress":
        out.append(
            Finding("breach-in-progress", "error", f"the abort policy is breached ({names}) and the rollout is still running")
        )
    if tl.outcome == "failed" and tl.failed_at is not None and "never became ready" in tl.outcome_reason:
        out.append(
            Finding(
                "silent-failure",
                "warning",
                "Flagger failed the canary because it never became ready: no 'Rolling back' line and no alert is sent "
                "(flagger#1816) — only this record shows it",
                tl.failed_at,
            )
        )
    if any(e.action == "promotion-failed" for e in tl.entries):
        out.append(
            Finding(
                "promotion-failed",
                "error",
                "the promotion failed because the primary was not ready: Flagger sent all traffic back to the canary (weight 100)",
                tl.failed_at,
            )
        )
    if blast.exposure_open:
        out.append(Finding("exposure-open", "warning", _open_exposure_text(tl, blast)))
    for c in criteria:
        if c.status == "no_data":
            out.append(Finding("criterion-no-data", "warning", f"{c.name}: no data — {c.no_data_reason}; it was not evaluated"))
    if not sufficient and criteria:
        out.append(
            Finding(
                "no-evidence",
                "warning",
                "no criterion could be evaluated: the 'pass' verdict is not evidence that the canary was healthy",
            )
        )
    for s in blast.shares:
        if s.mismatch and s.observed_percent is not None:
            out.append(
                Finding(
                    "traffic-share-mismatch",
                    "warning",
                    f"while Flagger set the canary's weight to {s.weight}%, it served {s.observed_percent:.1f}% of requests "
                    f"({s.canary_requests} of {s.canary_requests + s.primary_requests}) between {rfc3339(s.start)} and "
                    f"{rfc3339(s.end)}: the route may not go through the TraefikService",
                    s.start,
                )
            )
    if lag.detection_lag_seconds is not None and lag.detection_lag_seconds > 0:
        out.append(
            Finding(
                "detection-lag",
                "info",
                f"Flagger decided to roll back {lag.detection_lag_seconds:.0f} s after the policy's first breach "
                f"({lag.first_breach_criterion} at {rfc3339(lag.first_breach_at)})",
                lag.first_breach_at,
            )
        )
    if tl.halts and not breached:
        out.append(
            Finding(
                "halt-without-breach",
                "info",
                f"Flagger halted {len(tl.halts)} time(s) although no policy criterion was breached",
                tl.first_halt_at,
            )
        )
    if rp.rollback_at is not None and (tl.rollback_at is None or (tl.rollback_at - rp.rollback_at).total_seconds() >= 1):
        out.append(
            Finding(
                "policy-would-roll-back",
                "info",
                f"with Flagger's threshold of {rp.threshold} failed checks, the abort policy would have rolled back at "
                f"{rfc3339(rp.rollback_at)}; {_flagger_rollback_text(tl, rp.rollback_at)}",
                rp.rollback_at,
            )
        )
    if rf.checks and tl.rollback_at is not None and rf.rollback_at is not None:
        diff = abs((rf.rollback_at - tl.rollback_at).total_seconds())
        if diff > rf.interval_seconds:
            out.append(
                Finding(
                    "replay-differs",
                    "info",
                    f"replaying Flagger's checks over the bundle gives a rollback at {rfc3339(rf.rollback_at)}, "
                    f"Flagger rolled back at {rfc3339(tl.rollback_at)}",
                )
            )
    return out


def _open_exposure_text(tl: Timeline, blast: BlastRadius) -> str:
    """Say why the exposure is open, without claiming more than the record shows."""
    if tl.ended and not (tl.weight_steps and tl.weight_steps[-1].weight == 100):
        return (
            f"the rollout ended ({tl.outcome}) but the record does not show when the canary's traffic stopped: "
            "its exposure is counted to the end of the record"
        )
    if blast.first_canary_request_at is not None and blast.canary_traffic_zero_at is None:
        return "the canary still took traffic at the end of the record"
    return (
        "the record ends with the canary's weight above 0 and no terminal event: it may still take traffic, "
        "or the events that ended the rollout are missing"
    )


def _flagger_rollback_text(tl: Timeline, policy_at: dt.datetime) -> str:
    """Say what Flagger did next to the policy's rollback, as far as the record knows it."""
    if tl.rollback_at is not None:
        inferred = " (as inferred from the Canary's status and its weight)" if tl.outcome_source == "canary-status" else ""
        return f"{(tl.rollback_at - policy_at).total_seconds():.0f} s before Flagger did{inferred}"
    if tl.outcome == "promoted":
        how = "its events" if tl.outcome_source == "events" else "the Canary's status"
        return f"Flagger promoted the canary instead (from {how})"
    if not tl.ended:
        return f"whether Flagger rolled back is unknown: the record holds no terminal event of this rollout ({tl.outcome_reason})"
    if tl.outcome_source == "events":
        return "Flagger did not roll back"
    return f"the record does not show a rollback by Flagger ({tl.outcome_reason})"


# ----- presentation --------------------------------------------------------------------------


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
        "outcome": ev.outcome,
        "verdict": ev.verdict,
        "criteria": [_criterion_json(c, include_series) for c in ev.criteria],
        "flagger": {
            "first_halt_at": rfc3339(tl.first_halt_at),
            "rollback_at": rfc3339(tl.rollback_at),
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
            "restarts": tl.restarts,
            "halts": [
                {
                    "at": rfc3339(h.time),
                    "metric": h.metric,
                    "value": _num(h.value),
                    "threshold": _num(h.threshold),
                    "comparator": h.comparator,
                    "occurrences": h.occurrences,
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


def _fmt_value(c: CriterionResult, v: float | None) -> str:
    if v is None:
        return "-"
    if c.kind == "error_rate_ratio":
        return f"{v:.2f}x"
    if c.kind == "p95_latency_increase":
        return f"{v * 100:+.1f}%"
    if c.kind == "success_rate":
        return f"{v:.2f}%"
    return f"{v:.4g}"


def _fmt_threshold(c: CriterionResult) -> str:
    if c.kind == "p95_latency_increase":
        return f"{c.comparator} {c.threshold * 100:+.0f}%"
    if c.kind == "success_rate":
        return f"{c.comparator} {c.threshold:g}%"
    if c.kind == "error_rate_ratio":
        return f"{c.comparator} {c.threshold:g}x"
    return f"{c.comparator} {c.threshold:g}"


def _t(t: dt.datetime | None) -> str:
    return rfc3339(t) or "-"


def _delta(s: float | None) -> str:
    return "" if s is None else f"  (+{s:.0f} s)" if s >= 0 else f"  ({s:.0f} s)"


def format_evaluation(ev: Evaluation) -> str:
    """Return a readable terminal summary of an evaluation."""
    tl, b, lag = ev.timeline, ev.blast, ev.lag
    lines = [f"evidence evaluate: {ev.canary}" + (f"  (bundle {ev.bundle_id[:8]})" if ev.bundle_id else "")]
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
        head = f"  [{mark:>2}] {c.name:<{width}}  {status:<8}  breach {_fmt_threshold(c):<9} {duration_text(c.window_seconds)} window"
        if c.status == "no_data":
            lines.append(f"{head}  -- {c.no_data_reason}")
            continue
        detail = f"  worst {_fmt_value(c, c.worst_value)}"
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
        actual = f"rolled back at {_t(tl.rollback_at)}" + (" (inferred)" if tl.outcome_source == "canary-status" else "")
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
