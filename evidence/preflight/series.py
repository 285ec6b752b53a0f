"""``traefik-series`` and ``flagger-queries-match``: does Prometheus hold what Flagger will query?

Flagger renders its builtin Traefik queries with ``{{ target }}`` = ``targetRef.name`` and selects
the canary's leaf services by name (reference §4.1, ``evidence.routers.traefik``); Traefik names its leaf
services after the apex ``spec.service.name`` (§1.3, §4.2, §6.3).  When the two differ the
queries match nothing (flagger#1767).  Before a rollout the canary has no series, so each
query is also run on the primary's traffic: the same text with ``-canary-`` read as ``-primary-``.
"""

from __future__ import annotations

from evidence.flagger import TemplateError, render_query
from evidence.model import Role
from evidence.preflight.context import Context, PrimaryTraffic
from evidence.preflight.model import CheckResult
from evidence.render.formatting import fmt_duration
from evidence.routers import TRAEFIK

SERIES = "traefik-series"
QUERIES = "flagger-queries-match"
BUILTIN_QUERIES = TRAEFIK.builtin_queries
CANARY_PART = TRAEFIK.leaf_pattern(Role.CANARY)
PRIMARY_PART = TRAEFIK.leaf_pattern(Role.PRIMARY)
SERVICE = TRAEFIK.service_label
V3_SWITCH = (
    "on Traefik v3, check that observability.metrics is not false on the router, the IngressRoute route "
    "or the entry point (reference §6.1)"
)


def check_series(ctx: Context) -> list[CheckResult]:
    """Report the primary's Traefik series at --at and the TraefikService's routes."""
    return [_series(ctx, ctx.primary()), _traefik_service(ctx)]


def _series(ctx: Context, p: PrimaryTraffic) -> CheckResult:
    where = "{" + "|".join(TRAEFIK.service_labels) + f"=~{ctx.primary_regex()!r}}}"
    if p.label is None or p.last_sample is None:
        return CheckResult(
            SERIES,
            "block",
            f"no {TRAEFIK.requests} series for the primary {where} in the 5 minutes before --at",
            "check that traffic goes through the TraefikService and that Traefik exports service metrics (addServicesLabels); "
            + V3_SWITCH,
        )
    age = (ctx.at - p.last_sample).total_seconds()
    scrape = p.scrape_interval_s
    facts = (
        f"the primary's leaf service {', '.join(p.services)} is stored under `{p.label}`"
        + f", last sample {fmt_duration(age)} before --at"
        + (f" (scrape interval {fmt_duration(scrape)})" if scrape else " (one sample only)")
        + (f", {p.rps:.1f} req/s" if p.rps is not None else "")
        + (f" (also under `{p.also_under}`: two scrapes of Traefik)" if p.also_under else "")
    )
    if scrape is None or age > 2 * scrape:
        limit = f"2 scrape intervals ({fmt_duration(2 * scrape)})" if scrape else "a second sample"
        return CheckResult(
            SERIES, "block", f"{facts}: stale, older than {limit}", "check Traefik's scrape target in Prometheus; " + V3_SWITCH
        )
    if p.label != SERVICE:
        return CheckResult(
            SERIES,
            "warn",
            f"{facts}: the scrape renamed Traefik's `service` label to `{p.label}` (kube-prometheus-stack without honorLabels)",
            "set honorLabels: true on the ServiceMonitor/PodMonitor that scrapes Traefik",
        )
    return CheckResult(SERIES, "ok", facts)


def _traefik_service(ctx: Context) -> CheckResult:
    ns, apex = ctx.ref.namespace, ctx.spec.apex
    if not ctx.cluster.traefik_services:
        return CheckResult(
            SERIES,
            "block",
            f"no TraefikService {ns}/{apex} (traefik.io/v1alpha1): Flagger creates it, named after the apex service, when it initializes the canary (reference §4.2)",
            "check that Flagger runs with the traefik provider and has initialized the canary; route the IngressRoute to this TraefikService",
        )
    ts = ctx.cluster.traefik_services[0]
    entries = [e for e in ((ts.get("spec") or {}).get("weighted") or {}).get("services") or [] if isinstance(e, dict)]
    weights = {str(e.get("name")): e.get("weight") for e in entries}
    primary, canary = f"{apex}-primary", f"{apex}-canary"
    if primary not in weights:
        return CheckResult(
            SERIES,
            "block",
            f"TraefikService {ns}/{apex} routes to {', '.join(weights) or 'nothing'}, not to {primary}",
            "let Flagger reconcile the TraefikService (do not edit it by hand)",
        )
    routes = f"TraefikService {ns}/{apex} routes to {primary} (weight {weights[primary]})"
    if canary in weights:
        return CheckResult(SERIES, "ok", f"{routes} and {canary} (weight {weights[canary]})")
    return CheckResult(
        SERIES, "ok", f"{routes}; Flagger adds {canary} at the first step and removes it at weight 0 (reference §4.2)"
    )


def check_queries(ctx: Context) -> list[CheckResult]:
    """Run each builtin check as Flagger renders it, on the primary's traffic at --at."""
    builtin = [m for m in ctx.spec.metrics if m.name in BUILTIN_QUERIES and m.builtin]
    if not builtin:
        return [CheckResult(QUERIES, "ok", "the canary uses no builtin Traefik metric check")]
    if reason := ctx.unpasteable():
        return [CheckResult(QUERIES, "block", f"Flagger's builtin queries were not run: {reason}", "fix the Canary's names")]
    return [_builtin(ctx, m.name, m.interval_text) for m in builtin]


def _builtin(ctx: Context, name: str, interval: str) -> CheckResult:
    template = BUILTIN_QUERIES[name]
    assert CANARY_PART in template, "Flagger's builtin query no longer selects the canary by that pattern"
    model = {"namespace": ctx.ref.namespace, "target": ctx.spec.target, "interval": interval}
    try:
        flagger_query = render_query(template, model, {})
        twin = render_query(template.replace(CANARY_PART, PRIMARY_PART), model, {})
    except TemplateError as exc:  # pragma: no cover - the builtin templates only use these three names
        return CheckResult(QUERIES, "block", f"{name}: Flagger's template does not render ({exc})", "report this")
    selects = f"{ctx.ref.namespace}-{ctx.spec.target}-canary-…{TRAEFIK.leaf_suffix}"
    value = ctx.value(twin)
    p = ctx.primary()
    if value is not None:
        shown = f"{value:.2f}" + (" %" if name == "request-success-rate" else " ms")
        grpc = [x for x in p.protocols if x.startswith("grpc")]
        if name == "request-success-rate" and grpc:
            return CheckResult(
                QUERIES,
                "warn",
                f"{name}: Flagger's query selects service=~{selects!r} and returns {shown} on the primary, but its traffic is {', '.join(grpc)}: "
                'Traefik v3 puts the gRPC status in `code`, so code!~"5.." never sees a gRPC failure (reference §6.2)',
                'add a MetricTemplate on code!="0" for protocol=~"grpc|grpc-web" instead of the builtin success rate',
            )
        return CheckResult(
            QUERIES,
            "ok",
            f"{name}: Flagger's query (service=~{selects!r}, [{interval}]) returns {shown} on the primary's traffic",
        )
    return _blind(ctx, name, interval, selects, flagger_query, p)


def _blind(ctx: Context, name: str, interval: str, selects: str, query: str, p: PrimaryTraffic) -> CheckResult:
    target, apex = ctx.spec.target, ctx.spec.apex
    if p.label == SERVICE and apex != target:
        return CheckResult(
            QUERIES,
            "block",
            f"{name}: Flagger renders its query with targetRef.name {target!r} (service=~{selects!r}), but Traefik's series carry the apex "
            f'spec.service.name {apex!r} ({", ".join(p.services)}): it selects nothing, so Flagger halts with "no values found" on every tick '
            "and rolls back a healthy canary (flagger#1767, reference §4.1)",
            f"make spec.service.name equal to targetRef.name ({target}), or replace the builtin {name} with a MetricTemplate that selects "
            "{{ namespace }}-{{ service }}-canary-…",
        )
    if p.label is not None and p.label != SERVICE:
        return CheckResult(
            QUERIES,
            "block",
            f"{name}: Prometheus stores Traefik's service name as `{p.label}`, and Flagger's builtin query selects `{SERVICE}`: it is blind "
            'and every tick will say "no values found" (reference §4.1)',
            "set honorLabels: true where Prometheus scrapes Traefik, or use MetricTemplates that select "
            + TRAEFIK.service_labels[1],
        )
    if p.label is None:
        return CheckResult(
            QUERIES,
            "block",
            f"{name}: neither Flagger's query (service=~{selects!r}) nor the primary has any Traefik series at --at; Flagger would see "
            '"no values found" and roll back',
            "get the primary's Traefik series into Prometheus first (see traefik-series)",
        )
    return CheckResult(
        QUERIES,
        "warn",
        f"{name}: Flagger's query returns no value on the primary's traffic over [{interval}] (no requests in that window?): {query}",
        f"make sure the canary will get traffic within {interval} of each tick, or lengthen the metric's interval",
    )
