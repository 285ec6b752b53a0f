"""``abort-policy``: can the policy's criteria be computed from the series Prometheus holds now?

The built-in criteria read the router's request counter (5xx by status code) and its
duration buckets of the primary and canary (``evidence.routers.traefik``), selected by
``service`` as ``evidence collect`` does; a window with fewer than ``min_requests`` canary
requests is "no data" (``evidence.policy``).  On Traefik v3, gRPC requests carry the gRPC
status in ``code`` (reference §6.2), which no 5xx rule sees.
"""

from __future__ import annotations

from evidence.errors import PrometheusError
from evidence.flagger import promql_string
from evidence.policy import Criterion
from evidence.preflight.context import Context, PrimaryTraffic
from evidence.preflight.model import CheckResult
from evidence.render.formatting import fmt_duration
from evidence.routers import TRAEFIK

CODE = "abort-policy"


def check_policy(ctx: Context) -> list[CheckResult]:
    """Check each enabled criterion of the policy against the primary's series at --at."""
    p = ctx.primary()
    if p.label is None:
        return [
            CheckResult(
                CODE,
                "block",
                "no primary Traefik series at --at: no criterion of the policy can be computed",
                "see traefik-series",
            )
        ]
    if p.label != TRAEFIK.service_label:
        return [
            CheckResult(
                CODE,
                "block",
                f"Traefik's service name is stored as `{p.label}`; evidence collects service=~… like Flagger, so no criterion can be computed",
                "set honorLabels: true where Prometheus scrapes Traefik",
            )
        ]
    out = [_criterion(ctx, p, c) for c in ctx.policy.criteria]
    return out or [
        CheckResult(CODE, "warn", f"the policy ({ctx.policy.source}) enables no criterion", "enable at least one criterion")
    ]


def _criterion(ctx: Context, p: PrimaryTraffic, c: Criterion) -> CheckResult:
    name = f"{c.name} ({fmt_duration(c.window_seconds)} window)"
    if c.kind in ("ratio", "gauge"):
        return _custom(ctx, c, name)
    if c.kind == "p95_latency_increase":
        finite = [b for b in p.buckets if b not in ("+Inf", "Inf")]
        if len(finite) < 2:
            return CheckResult(
                CODE,
                "block",
                f"{name}: the primary has {len(finite)} finite latency bucket(s) ({', '.join(p.buckets) or 'none'}); a p95 needs a histogram",
                "keep Traefik's request-duration histogram (metrics.prometheus.buckets)",
            )
    grpc = [x for x in p.protocols if x.startswith("grpc")]
    if c.kind in ("error_rate_ratio", "success_rate") and grpc:
        return CheckResult(
            CODE,
            "warn",
            f"{name}: the primary's traffic is {', '.join(grpc)}; Traefik v3 puts the gRPC status in `code` (0-16), which no 5xx rule matches (reference §6.2)",
            'add a custom ratio criterion on code!="0" for gRPC',
        )
    return _first_step(ctx, p, c, name)


def _first_step(ctx: Context, p: PrimaryTraffic, c: Criterion, name: str) -> CheckResult:
    weights = ctx.plan.weights()
    if p.rps is None or not weights:
        return CheckResult(
            CODE, "warn", f"{name}: the primary's request rate could not be measured at --at", "check traefik-series"
        )
    expected = p.rps * weights[0] / 100 * c.window_seconds
    facts = (
        f"{name}: at the first step ({weights[0]} %) the canary gets about {expected:.0f} requests per window "
        f"({p.rps:.1f} req/s on the primary now; minimum {c.min_requests})"
    )
    if expected < c.min_requests:
        return CheckResult(
            CODE,
            "warn",
            f'{facts}: the first step will be "no data"',
            "raise the first step weight or the criterion's window, or lower min_requests in the policy",
        )
    return CheckResult(CODE, "ok", facts)


def _custom(ctx: Context, c: Criterion, name: str) -> CheckResult:
    selectors = [s for s in (c.numerator, c.denominator, c.series) if s is not None]
    missing = []
    for s in selectors:
        try:
            value = ctx.value(f"count({{__name__={promql_string(s.metric)}}})")
        except PrometheusError as exc:
            return CheckResult(CODE, "warn", f"{name}: Prometheus could not count {s.metric}: {exc}", "check the selector")
        if value is None:
            missing.append(s.metric)
    if missing:
        return CheckResult(
            CODE,
            "warn",
            f"{name}: no series of {', '.join(missing)} at --at, so the criterion has no data (canary series appear only during a rollout)",
            "check the metric names of the criterion's selectors",
        )
    return CheckResult(CODE, "ok", f"{name}: the metrics it reads ({', '.join(s.metric for s in selectors)}) exist")
