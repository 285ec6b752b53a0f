"""Findings: things a reviewer must read, each with a stable code, a severity and a sentence.

The rollout limits of the policy are checked against the Canary's spec here; the other
findings (a promotion despite a breach, a traffic-share mismatch, criteria without data) are
raised by ``rollout_findings`` from the analysis results.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from evidence.canary import CanarySpec
from evidence.model import Outcome, OutcomeCause, OutcomeSource, QueryRecord, rfc3339
from evidence.policy import RolloutLimits
from evidence.routers import TrafficMetrics

if TYPE_CHECKING:
    from evidence.analysis.blast import BlastRadius
    from evidence.analysis.criteria import CriterionResult
    from evidence.analysis.lag import DetectionLag
    from evidence.analysis.replay import Replay
    from evidence.analysis.timeline import Timeline

SEVERITIES = ("error", "warning", "info")
DEFAULT_PROGRESS_DEADLINE = 600


@dataclass(frozen=True)
class Finding:
    """One finding: ``code`` is stable (for filters), ``message`` is for people."""

    code: str
    severity: str  # error | warning | info
    message: str
    at: dt.datetime | None = None


def planned_weights(canary: Mapping[str, Any]) -> list[int]:
    """Return the canary weights Flagger steps through before promotion, from the spec (scheduler.go)."""
    spec = CanarySpec.from_object(dict(canary))
    if spec.step_weights:
        return [min(100, int(s)) for s in spec.step_weights if s > 0]
    step = spec.step_weight
    if step is None or step <= 0:
        return []
    mw = spec.max_weight
    max_weight = mw if mw is not None and mw > 0 else 100
    out: list[int] = []
    w = 0
    while w < max_weight and len(out) < 100:
        w = min(100, w + int(step))
        out.append(w)
    return out


def rollback_paths(canary: Mapping[str, Any]) -> list[str]:
    """Return the rollback paths the spec sets up: rollback / pre-rollout webhooks and alerts."""
    spec = CanarySpec.from_object(dict(canary))
    out = []
    for h in spec.webhooks:
        if h.get("type") in ("rollback", "pre-rollout"):
            out.append(f"{h.get('type')} webhook {h.get('name')}")
    for al in spec.alerts:
        if isinstance(al, Mapping):
            ref = al.get("providerRef") or {}
            out.append(f"alert {al.get('name')} → provider {ref.get('name') if isinstance(ref, Mapping) else ref}")
    return out


def check_rollout_limits(canary: Mapping[str, Any], limits: RolloutLimits, max_weight_reached: int | None) -> tuple[Finding, ...]:
    """Return findings for the policy's rollout limits against the Canary's spec and the weight reached."""
    out: list[Finding] = []
    planned = planned_weights(canary)
    top = max(planned, default=0)
    if top > limits.max_weight:
        out.append(
            Finding(
                "max-weight-planned",
                "warning",
                f"the analysis steps the canary up to {top}% of traffic before promotion "
                f"(steps {', '.join(map(str, planned))}); the policy allows at most {limits.max_weight}% before full confidence",
            )
        )
    if max_weight_reached is not None and max_weight_reached > limits.max_weight and max_weight_reached < 100:
        out.append(
            Finding(
                "max-weight-reached",
                "warning",
                f"the canary reached {max_weight_reached}% of traffic; the policy allows at most {limits.max_weight}% before promotion",
            )
        )
    spec = canary.get("spec") or {}
    pds = spec.get("progressDeadlineSeconds") if isinstance(spec, Mapping) else None
    if pds is None:
        if limits.require_progress_deadline:
            out.append(
                Finding(
                    "progress-deadline-unset",
                    "warning",
                    f"spec.progressDeadlineSeconds is not set (Flagger uses {DEFAULT_PROGRESS_DEADLINE} s); "
                    f"the policy wants it set explicitly, at most {limits.progress_deadline_seconds} s",
                )
            )
    elif not isinstance(pds, (int, float)) or pds > limits.progress_deadline_seconds:
        out.append(
            Finding(
                "progress-deadline-too-long",
                "warning",
                f"spec.progressDeadlineSeconds is {pds}: a canary that never becomes ready holds the rollout that long; "
                f"the policy allows at most {limits.progress_deadline_seconds} s",
            )
        )
    if limits.require_rollback_path and not rollback_paths(canary):
        out.append(
            Finding(
                "no-rollback-path",
                "warning",
                "no rollback path in the Canary's spec: no `rollback` or `pre-rollout` webhook and no alert provider — "
                "a failing rollout is noticed only by Flagger's own checks, and nobody is told",
            )
        )
    return tuple(out)


def grpc_findings(spec: CanarySpec, protocols: list[str], router: TrafficMetrics) -> tuple[Finding, ...]:
    """Return the finding that Flagger's builtin success rate cannot see the failures of a gRPC canary."""

    builtin = [m.name for m in spec.metrics if m.name == "request-success-rate" and m.builtin]
    if not protocols or not builtin:
        return ()
    codes = ", ".join(router.grpc_error_codes)
    return (
        Finding(
            "grpc-builtin-blind",
            "warning",
            f"the canary's requests are {'/'.join(protocols)}: {router.title} v3 records the gRPC status in "
            f"`{router.code_label}`, so Flagger's builtin request-success-rate (which counts only 5xx as failures) "
            f"is blind to gRPC failures; the criteria here count the gRPC codes {codes} as errors — "
            "check gRPC canaries with a MetricTemplate on those codes",
        ),
    )


def check_query_findings(queries: Sequence[QueryRecord]) -> tuple[Finding, ...]:
    """Return a finding for each Flagger check whose query returned several series.

    Flagger does not fail such a check: ``RunQuery`` keeps the last element of the vector
    (``pkg/metrics/providers/prometheus.go:155-169``), so the check compares whichever series
    Prometheus lists last with its threshold, and ignores the others.
    """
    out = []
    for q in queries:
        series = q.extra.get("series")
        if q.kind != "range" or not q.metric or not isinstance(series, int) or series < 2:
            continue
        last = q.extra.get("last_series")
        used = ", ".join(f"{k}={v}" for k, v in last.items()) if isinstance(last, dict) and last else "no labels"
        out.append(
            Finding(
                "check-several-series",
                "warning",
                f"Flagger's check {q.metric} returned {series} series: Flagger does not fail it but reads the last "
                f"series Prometheus lists and ignores the others (the replay used {{{used}}}, the last in the range "
                "query's order; Flagger's instant query may list them in another order, so which series Flagger read "
                "is approximate here); aggregate the query to one series (e.g. sum()) so the check measures what it means",
            ),
        )
    return tuple(out)


def rollout_findings(
    tl: Timeline,
    criteria: tuple[CriterionResult, ...],
    blast: BlastRadius,
    lag: DetectionLag,
    rf: Replay,
    rp: Replay,
    verdict: str,
    sufficient: bool,
) -> list[Finding]:
    """Return the findings about the rollout and the evidence, most serious first in the order raised."""
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
    if (
        tl.outcome == Outcome.FAILED
        and tl.failed_at is not None
        and tl.outcome_cause == OutcomeCause.NEVER_READY
        and tl.outcome_source == OutcomeSource.EVENTS  # "Canary failed!" seen, no "Rolling back" line
    ):
        out.append(
            Finding(
                "silent-failure",
                "warning",
                "Flagger failed the canary because it never became ready: no 'Rolling back' line and no alert is sent "
                "(flagger#1816) — only this record shows it",
                tl.failed_at,
            )
        )
    if tl.outcome_cause == OutcomeCause.METRICS_UNAVAILABLE:
        out.append(
            Finding(
                "metrics-unavailable",
                "warning",
                f"Flagger rolled back after {tl.failed_checks} failed check(s), each a metrics query that failed "
                "(the metrics server was unreachable or refused it): the canary was not measured bad",
                tl.rollback_at,
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
                f"Flagger recorded {len(tl.halts)} failed check(s) although no policy criterion was breached",
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
        source = "Flagger's status gauge" if tl.outcome_source == "status-gauge" else "the Canary's status and its weight"
        inferred = f" (as inferred from {source})" if tl.rollback_inferred else ""
        return f"{(tl.rollback_at - policy_at).total_seconds():.0f} s before Flagger did{inferred}"
    if tl.outcome == "promoted":
        how = {"events": "its events", "status-gauge": "Flagger's status gauge"}.get(tl.outcome_source, "the Canary's status")
        return f"Flagger promoted the canary instead (from {how})"
    if not tl.ended:
        return f"whether Flagger rolled back is unknown: the record holds no terminal event of this rollout ({tl.outcome_reason})"
    if tl.outcome_source == "events":
        return "Flagger did not roll back"
    return f"the record does not show a rollback by Flagger ({tl.outcome_reason})"


# ----- presentation --------------------------------------------------------------------------
