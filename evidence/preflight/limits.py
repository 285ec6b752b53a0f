"""``limits``: the policy's rollout limits, the intervals, and the worst-case exposure.

Weight semantics are scheduler.go's (reference §1.4, §4.2): each good tick adds ``stepWeight``
(or the next ``stepWeights`` element) and promotion starts once the weight reaches
``maxWeight`` — so ``stepWeight`` 20 with ``maxWeight`` 50 reaches 60.  A rollback is decided
one tick after the ``threshold``-th failed check, so a canary that goes bad at its highest
weight serves it for up to ``(threshold + 1) × interval``: the exposure printed here.
"""

from __future__ import annotations

from dataclasses import dataclass

from evidence.model import parse_go_duration
from evidence.preflight.context import Context
from evidence.preflight.model import CheckResult, Status
from evidence.render.formatting import fmt_duration

CODE = "limits"
PROMOTION_TICKS = 3  # copy the spec, route all traffic to primary, finalise (§2.2 lifecycle)


@dataclass(frozen=True)
class Exposure:
    """What a bad canary can cost before Flagger rolls it back, and how long a rollout can last."""

    max_weight: int
    rollback_s: float
    rollout_s: float

    @property
    def traffic_minutes(self) -> float:
        """Return the exposure as minutes of all traffic (weight × time)."""
        return self.max_weight / 100 * self.rollback_s / 60


def exposure_of(ctx: Context) -> Exposure:
    """Return the worst-case exposure and the worst-case rollout duration (ready wait, steps, halts, promotion)."""
    weights = ctx.plan.weights()
    interval = ctx.spec.interval_s
    threshold = ctx.spec.threshold
    deadline = float(ctx.plan.progress_deadline_s or 600)
    ticks = max(len(weights), ctx.plan.iterations) + (threshold - 1) + PROMOTION_TICKS
    return Exposure(max(weights, default=0), (threshold + 1) * interval, deadline + ticks * interval)


def check_limits(ctx: Context) -> list[CheckResult]:
    """Check weights, the progress deadline, the intervals and the exposure against the policy."""
    return [_weights(ctx), _deadline(ctx), _intervals(ctx), _exposure(ctx)]


def _weights(ctx: Context) -> CheckResult:
    plan, limit = ctx.plan, ctx.policy.limits.max_weight
    if plan.skip_analysis:
        return CheckResult(
            CODE,
            "block",
            "skipAnalysis is set (or there is no analysis): Flagger promotes without any check",
            "remove skipAnalysis",
        )
    weights = plan.weights()
    if not weights:
        return CheckResult(
            CODE,
            "warn" if plan.strategy == "ab-testing" else "block",
            f"strategy {plan.strategy}: no weight steps (stepWeight/stepWeights) to bound the canary's share",
            "set analysis.stepWeight and maxWeight",
        )
    steps = ", ".join(str(w) for w in weights) + " %"
    top = max(weights)
    over = top > plan.max_weight() and not plan.step_weights
    overshoot = f" (maxWeight {plan.max_weight()} is overshot by one step, reference §4.2)" if over else ""
    if plan.strategy == "blue-green":
        steps = f"blue/green with {plan.iterations} iterations, then all traffic"
    facts = f"steps {steps}: the canary takes up to {top} % before promotion{overshoot}; policy limit {limit} %"
    if top > limit:
        return CheckResult(
            CODE,
            "block",
            facts,
            f"lower maxWeight/stepWeights so that no step exceeds {limit} %, or raise limits.max_weight in the policy",
        )
    return CheckResult(CODE, "ok", facts)


def _deadline(ctx: Context) -> CheckResult:
    lim = ctx.policy.limits
    d = ctx.plan.progress_deadline_s
    if d is None:
        status: Status = "block" if lim.require_progress_deadline else "ok"
        return CheckResult(
            CODE,
            status,
            "progressDeadlineSeconds is not set (Flagger uses 600 s, reference §1.2)"
            + ("; the policy requires it set" if status == "block" else ""),
            f"set spec.progressDeadlineSeconds (at most {lim.progress_deadline_seconds})" if status == "block" else "",
        )
    if d > lim.progress_deadline_seconds:
        return CheckResult(
            CODE,
            "block",
            f"progressDeadlineSeconds {d} is above the policy's limit {lim.progress_deadline_seconds}",
            f"set it to {lim.progress_deadline_seconds} or less",
        )
    return CheckResult(CODE, "ok", f"progressDeadlineSeconds {d} (policy limit {lim.progress_deadline_seconds})")


def _intervals(ctx: Context) -> CheckResult:
    interval = ctx.spec.interval_s
    scrape = ctx.primary().scrape_interval_s
    windows = []
    for m in ctx.spec.metrics:
        try:
            windows.append((m.name, parse_go_duration(m.interval_text)))
        except ValueError:
            return CheckResult(CODE, "block", f"metric {m.name}: interval {m.interval!r} is not a duration", "write e.g. 1m")
    facts = (
        f"analysis interval {fmt_duration(interval)}, scrape interval {fmt_duration(scrape) if scrape else 'unknown'}, metric windows "
        + (", ".join(f"{n} {fmt_duration(w)}" for n, w in windows) or "none")
    )
    if scrape:
        short = [n for n, w in windows if w < 2 * scrape]
        if short:
            return CheckResult(
                CODE,
                "block",
                f"{facts}: {', '.join(short)} rate over less than 2 scrape intervals, so rate() has fewer than two samples and returns nothing",
                f"set those metrics' interval to at least {fmt_duration(2 * scrape)}",
            )
        if interval < 2 * scrape:
            return CheckResult(
                CODE,
                "warn",
                f"{facts}: each tick sees at most one new scrape",
                f"set analysis.interval to at least {fmt_duration(2 * scrape)}",
            )
    overlap = [n for n, w in windows if interval < w]
    if overlap:
        return CheckResult(
            CODE,
            "warn",
            f"{facts}: the windows of {', '.join(overlap)} are longer than the interval, so one bad minute counts in several checks",
            "set analysis.interval at least as long as each metric's interval",
        )
    return CheckResult(
        CODE,
        "ok" if scrape else "warn",
        facts + ("" if scrape else ": the scrape interval could not be measured (see traefik-series)"),
    )


def _exposure(ctx: Context) -> CheckResult:
    plan = ctx.plan
    can_fail = bool(ctx.spec.metrics) or bool(plan.hooks_of("", "rollout", "pre-rollout", "rollback"))
    e = exposure_of(ctx)
    if not can_fail or plan.skip_analysis:
        return CheckResult(
            CODE,
            "block",
            f"nothing can fail the analysis (no metrics, no rollout, pre-rollout or rollback hook): a bad canary keeps up to {e.max_weight} % of the traffic until promotion",
            "add metric checks (request-success-rate, request-duration) to the analysis",
        )
    if not plan.weights():
        return CheckResult(
            CODE,
            "warn",
            f"strategy {plan.strategy}: no weight steps, so the exposure is not bounded by a weight (A/B testing exposes the matched requests)",
            "bound the matched share, or use stepWeight/maxWeight",
        )
    return CheckResult(
        CODE,
        "ok",
        f"worst-case exposure {e.max_weight} % × {fmt_duration(e.rollback_s)} = {e.traffic_minutes:.1f} min of all traffic "
        f"(threshold {ctx.spec.threshold} failed checks + the tick that rolls back, one tick every {fmt_duration(ctx.spec.interval_s)}; reference §4.2); "
        f"a rollout lasts at most {fmt_duration(e.rollout_s)} without approval gates",
    )
