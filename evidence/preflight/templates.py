"""``metric-templates``: referenced MetricTemplates exist, render as Flagger renders them, and answer.

Rendering follows ``render.go`` (reference §7.2): ``name``, ``namespace``, ``target``,
``service``, ``ingress``, ``route``, ``interval``, ``variables`` with ``missingkey=error``; a
template that is missing or does not render is a failed check on every tick (§2.2).  Only the
``prometheus`` provider (and unknown types, which Flagger runs as prometheus, §7.2) can be
checked here, and it is run against ``--prometheus``, not the template's own address.
"""

from __future__ import annotations

from evidence.canary import MetricCheck
from evidence.errors import PrometheusError
from evidence.flagger import METRIC_PROVIDERS, TemplateError, render_query
from evidence.preflight.context import Context
from evidence.preflight.model import CheckResult

CODE = "metric-templates"
KNOWN_PROVIDERS = METRIC_PROVIDERS


def check_templates(ctx: Context) -> list[CheckResult]:
    """Check every templateRef and inline-query metric of the canary."""
    out: list[CheckResult] = []
    for m in ctx.spec.metrics:
        if m.template_ref is not None:
            out.append(_template(ctx, m, m.name, *m.template_ref))
        elif m.query:
            out.append(_run(ctx, m, m.name, f"inline query of {m.name}", m.query, None))
    return out or [CheckResult(CODE, "ok", "the canary references no MetricTemplate and no inline query")]


def _template(ctx: Context, m: MetricCheck, name: str, ns: str, tname: str) -> CheckResult:
    found = next(
        (
            t
            for t in ctx.cluster.metric_templates
            if (t.get("metadata") or {}).get("name") == tname and ((t.get("metadata") or {}).get("namespace") or ns) == ns
        ),
        None,
    )
    what = f"{name}: MetricTemplate {ns}/{tname}"
    if found is None:
        return CheckResult(
            CODE,
            "block",
            f"{what} not found: Flagger reports `Metric template {tname}.{ns} error` and counts a failed check on every tick (reference §2.2)",
            f"create the MetricTemplate {ns}/{tname}, or fix templateRef",
        )
    spec = found.get("spec") or {}
    provider = spec.get("provider") or {}
    ptype = str(provider.get("type") or "prometheus")
    if ptype != "prometheus" and ptype in KNOWN_PROVIDERS:
        return CheckResult(
            CODE,
            "skip",
            f"{what} uses provider {ptype}: not checkable here (only Prometheus queries are run)",
            "check it in that provider",
        )
    return _run(ctx, m, name, what, str(spec.get("query") or ""), str(provider.get("address") or "") or None)


def _run(ctx: Context, m: MetricCheck, name: str, what: str, template: str, address: str | None) -> CheckResult:
    if reason := ctx.unpasteable():
        return CheckResult(CODE, "block", f"{what} was not run: {reason}", "fix the Canary's names")
    variables = m.template_variables
    model = {
        "name": ctx.ref.name,
        "namespace": ctx.ref.namespace,
        "target": ctx.spec.target,
        "service": ctx.spec.apex,
        "ingress": ctx.spec.target,
        "route": ctx.spec.target,
        "interval": m.interval_text,
    }
    try:
        query = render_query(template, model, variables)
    except TemplateError as exc:
        return CheckResult(
            CODE,
            "block",
            f"{what} does not render ({exc}): Flagger reports a query render error and counts a failed check on every tick (reference §2.2)",
            "fix the template or the metric's templateVariables",
        )
    where = f" (run against --prometheus, not its address {address})" if address else ""
    try:
        value = ctx.value(query)
        on_primary = None if value is not None or "-canary" not in query else ctx.value(query.replace("-canary", "-primary"))
    except PrometheusError as exc:
        return CheckResult(CODE, "block", f"{what}: Prometheus refuses the rendered query{where}: {exc}", "fix the query")
    if value is not None:
        return CheckResult(CODE, "ok", f"{what} renders and returns {value:g}{where}")
    if on_primary is not None:
        return CheckResult(
            CODE,
            "ok",
            f"{what} renders and returns {on_primary:g} with -canary read as -primary (the canary has no traffic yet){where}",
        )
    return CheckResult(
        CODE,
        "warn",
        f"{what} renders but returns no value at --at{where}, neither for the canary nor with -canary read as -primary: {query}",
        "check that the query selects series Prometheus holds (names, labels, interval)",
    )
