"""Findings: things a reviewer must read, each with a stable code, a severity and a sentence.

The rollout limits of the policy are checked against the Canary's spec here; the other
findings (a promotion despite a breach, a traffic-share mismatch, criteria without data) are
raised by ``evidence.evaluate`` from the analysis results.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from evidence.policy import RolloutLimits

SEVERITIES = ("error", "warning", "info")
DEFAULT_PROGRESS_DEADLINE = 600


@dataclass(frozen=True)
class Finding:
    """One finding: ``code`` is stable (for filters), ``message`` is for people."""

    code: str
    severity: str  # error | warning | info
    message: str
    at: dt.datetime | None = None


def _analysis(canary: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = canary.get("spec") or {}
    a = spec.get("analysis") or spec.get("canaryAnalysis") or {}
    return a if isinstance(a, Mapping) else {}


def planned_weights(canary: Mapping[str, Any]) -> list[int]:
    """Return the canary weights Flagger steps through before promotion, from the spec (scheduler.go)."""
    a = _analysis(canary)
    steps = a.get("stepWeights")
    if isinstance(steps, list) and steps:
        cleaned = [min(100, int(s)) for s in steps if isinstance(s, (int, float)) and s > 0]
        return cleaned
    step = a.get("stepWeight")
    if not isinstance(step, (int, float)) or step <= 0:
        return []
    mw = a.get("maxWeight")
    max_weight = int(mw) if isinstance(mw, (int, float)) and mw > 0 else 100
    out: list[int] = []
    w = 0
    while w < max_weight and len(out) < 100:
        w = min(100, w + int(step))
        out.append(w)
    return out


def rollback_paths(canary: Mapping[str, Any]) -> list[str]:
    """Return the rollback paths the spec sets up: rollback / pre-rollout webhooks and alerts."""
    a = _analysis(canary)
    out = []
    for h in a.get("webhooks") or []:
        if isinstance(h, Mapping) and h.get("type") in ("rollback", "pre-rollout"):
            out.append(f"{h.get('type')} webhook {h.get('name')}")
    for al in a.get("alerts") or []:
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
