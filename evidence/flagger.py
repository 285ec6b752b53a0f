"""Flagger's vocabulary: its event messages parsed into fields, and how it renders query templates.

Its builtin queries are the router's (``evidence.routers``).

Formats follow Flagger 1.44 (``pkg/controller/scheduler*.go``, ``pkg/canary/deployment_ready.go``,
``pkg/metrics/observers/traefik.go``) as recorded in ../shared/reference/flagger-traefik.md
§2.2 and §4.1.  Messages are untrusted text: they are parsed, never evaluated.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from evidence.model import Action, parse_go_duration

#: Where Flagger's Helm chart and kustomize manifests install it.
DEFAULT_FLAGGER_NAMESPACE = "flagger-system"

COMBINED_PREFIX = "(combined from similar events): "
#: MetricTemplate ``spec.provider.type`` values (crd.yaml's enum; reference §7.2).
METRIC_PROVIDERS = (
    "prometheus",
    "influxdb",
    "datadog",
    "externalmetrics",
    "stackdriver",
    "cloudwatch",
    "newrelic",
    "graphite",
    "dynatrace",
    "keptn",
    "splunk",
)

_N = r"(?P<obj>[^\s]+)"  # "name.namespace" as Flagger prints it
# Go's %.2f and %v: a sign, digits, an exponent (``1e-07``), or ``+Inf`` / ``-Inf`` / ``NaN``.
_FLOAT = r"[+-]?(?:Inf|NaN|[0-9.]+(?:e[+-]?[0-9]+)?)"
_NUM = r"(?P<value>" + _FLOAT + ")"
_THR = r"(?P<threshold>" + _FLOAT + ")"

#: The actions Flagger adds 1 to ``failedChecks`` for (reference §2.2, "Messages that add 1"):
#: every ``Halt`` but the approval gates (those are ``wait``), and the query and template errors.
FAILED_CHECK_ACTIONS = frozenset({Action.HALT, Action.QUERY_FAILED, Action.CHECK_ERROR})


@dataclass(frozen=True)
class Parsed:
    """Fields read from one Flagger event message."""

    action: Action
    weight: int | None = None
    metric: str | None = None
    value: float | None = None
    threshold: float | None = None
    comparator: str | None = None
    failed_checks: int | None = None
    detail: str | None = None

    @property
    def failed_check(self) -> bool:
        """Return whether Flagger added 1 to ``failedChecks`` for this message."""
        return self.action in FAILED_CHECK_ACTIONS


def _go_duration_ms(text: str) -> float | None:
    """Return a Go time.Duration string of a halt message (``1.515s``, ``500ms``) in milliseconds, None if it is not one."""
    try:
        return parse_go_duration(text) * 1000
    except ValueError:
        return None


_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^New revision detected! Scaling up " + _N + r"$"), "new-revision"),
    (re.compile(r"^New revision detected! Restarting analysis for " + _N + r"$"), "restart"),
    (re.compile(r"^Starting canary analysis for " + _N + r"$"), "start"),
    (re.compile(r"^Advance " + _N + r" canary weight (?P<weight>\d+)$"), "advance"),
    (re.compile(r"^Advance " + _N + r" canary iteration (?P<detail>\d+/\d+)$"), "iteration"),
    (re.compile(r"^Advance " + _N + r" primary weight (?P<pweight>\d+)$"), "promote-step"),
    (re.compile(r"^Copying " + _N + r" template spec to (?P<detail>\S+)$"), "promote-start"),
    (re.compile(r"^Routing all traffic to primary$"), "route-primary"),
    (re.compile(r"^(?:Stop traffic mirroring and route|Routing) all traffic to canary$"), "route-canary"),
    (re.compile(r"^Promotion completed! Canary analysis was skipped for " + _N + r"$"), "promoted"),
    (re.compile(r"^Promotion completed! Scaling down " + _N + r"$"), "promoted"),
    (re.compile(r"^Promotion of " + _N + r" failed, primary not ready: (?P<detail>.*)$", re.S), "promotion-failed"),
    (
        re.compile(r"^Halt " + _N + r" advancement success rate " + _NUM + r"% (?P<cmp>[<>]) " + _THR + r"%$"),
        "halt:request-success-rate",
    ),
    (
        re.compile(r"^Halt " + _N + r" advancement request duration (?P<dvalue>\S+) (?P<cmp>[<>]) (?P<dthreshold>\S+)$"),
        "halt:request-duration",
    ),
    (re.compile(r"^Halt " + _N + r" advancement external check (?P<hook>\S+) failed (?P<detail>.*)$", re.S), "halt:hook"),
    (re.compile(r"^Halt " + _N + r" advancement pre-rollout check (?P<hook>\S+) failed (?P<detail>.*)$", re.S), "halt:hook"),
    (
        re.compile(
            r"^Halt " + _N + r" advancement waiting for (?P<detail>(?:traffic increase |promotion )?approval) (?P<hook>\S+)$"
        ),
        "wait",
    ),
    (
        re.compile(
            r"^Halt advancement no values found for (?P<provider>\S+) metric (?P<metric>\S+) probably (?P<obj>\S+) is not receiving traffic(?::\s*(?P<detail>.*))?$",
            re.S,
        ),
        "halt:no-values",
    ),
    (
        re.compile(r"^Halt advancement no values found for custom metric: (?P<metric>[^:]+): (?P<detail>.*)$", re.S),
        "halt:no-values",
    ),
    (re.compile(r"^Halt advancement no values found for metric: (?P<metric>.+)$"), "halt:no-values"),
    (re.compile(r"^halt " + _N + r" advancement: (?P<detail>primary deployment is scaled to zero)$"), "primary-not-ready"),
    # A custom metric's name is a free string (``404s percentage`` in Flagger's Traefik tutorial).
    (re.compile(r"^Halt " + _N + r" advancement (?P<metric>.+) " + _NUM + r" (?P<cmp>[<>]) " + _THR + r"$", re.S), "halt:custom"),
    (re.compile(r"^Rolling back " + _N + r" failed checks threshold reached (?P<failed>\d+)$"), "rollback"),
    (re.compile(r"^Rolling back " + _N + r" manual webhook invoked$"), "rollback-manual"),
    (re.compile(r"^Rolling back " + _N + r" progress deadline exceeded (?P<detail>.*)$", re.S), "rollback-deadline"),
    (re.compile(r"^Canary failed! Scaling down " + _N + r"$"), "failed"),
    (re.compile(r"^canary (?:deployment|damonset|daemonset) " + _N + r" not ready(?P<detail>.*)$", re.S), "not-ready"),
    (re.compile(r"^(?P<obj>\S+-primary\.\S+) not ready(?P<detail>.*)$", re.S), "primary-not-ready"),
    (
        re.compile(
            r"^(?P<kind>Pre-rollout|Confirm-rollout|Confirm-traffic-increase|Confirm-promotion|Post-rollout) check (?P<hook>\S+) passed$"
        ),
        "hook-passed",
    ),
    (re.compile(r"^Post-rollout hook (?P<hook>\S+) failed (?P<detail>.*)$", re.S), "hook-failed"),
    (re.compile(r"^Rollback hook (?P<hook>\S+) not signaling a rollback$"), "hook-idle"),
    (re.compile(r"^Rollback check (?P<hook>\S+) passed$"), "hook-rollback"),
    (re.compile(r"^Initialization done! " + _N + r"$"), "initialized"),
    (re.compile(r"^all the metrics providers are available!$"), "providers-ok"),
    (re.compile(r"^skipping canary run as object is suspended$"), "suspended"),
    (re.compile(r"^Terminat(?:ing|ed) canary " + _N + r"$"), "terminating"),
    # Failed checks without "Halt" (scheduler_metrics.go): the metrics server failed the query ...
    (re.compile(r"^Prometheus query failed for (?P<metric>.+?): (?P<detail>.*)$", re.S), "query-failed"),
    (re.compile(r"^Prometheus query failed: (?P<detail>.*)$", re.S), "query-failed"),
    (re.compile(r"^(?P<detail>Metric query failed for no usable metrics template and query were configured)$"), "check-error"),
    (re.compile(r"^Metric query failed for (?P<metric>.+?): (?P<detail>.*)$", re.S), "query-failed"),
    (re.compile(r"^Error building Prometheus client for (?P<detail>.*)$", re.S), "query-failed"),
    # ... or the check could not be built.
    (
        re.compile(
            r"^Metric template (?P<template>\S+) (?P<detail>(?:secret \S+ |provider \S+ |query render )?error: .*)$", re.S
        ),
        "check-error",
    ),
    (re.compile(r"^(?P<detail>Error fetching Knative service .*)$", re.S), "check-error"),
    (
        re.compile(
            r"^(?:Error checking metric providers|TraefikService|RoutingRule|scaling down canary)(?P<detail>.*)$",
            re.S,
        ),
        "error",
    ),
]


@functools.lru_cache(maxsize=65536)
def parse_message(message: str) -> Parsed:
    """Return the fields of one Flagger event message (without any combined prefix); repeated messages are parsed once."""
    for pattern, action in _PATTERNS:
        m = pattern.match(message)
        if not m:
            continue
        g: dict[str, Any] = m.groupdict()
        if action == "advance":
            return Parsed(Action.ADVANCE, weight=int(g["weight"]))
        if action == "promote-step":
            return Parsed(Action.PROMOTE_STEP, weight=100 - int(g["pweight"]), detail=f"primary weight {g['pweight']}")
        if action == "route-primary":
            return Parsed(Action.ROUTE_PRIMARY, weight=0)
        if action == "route-canary":
            return Parsed(Action.ROUTE_CANARY, weight=100)
        if action == "halt:request-success-rate":
            return Parsed(
                Action.HALT,
                metric="request-success-rate",
                value=float(g["value"]),
                threshold=float(g["threshold"]),
                comparator=g["cmp"],
            )
        if action == "halt:request-duration":
            return Parsed(
                Action.HALT,
                metric="request-duration",
                value=_go_duration_ms(g["dvalue"]),
                threshold=_go_duration_ms(g["dthreshold"]),
                comparator=g["cmp"],
            )
        if action == "halt:custom":
            return Parsed(
                Action.HALT, metric=g["metric"], value=float(g["value"]), threshold=float(g["threshold"]), comparator=g["cmp"]
            )
        if action == "halt:hook":
            return Parsed(Action.HALT, metric=f"webhook:{g['hook']}", detail=g.get("detail"))
        if action == "halt:no-values":
            return Parsed(
                Action.HALT, metric=g["metric"], detail="no values found" + (f": {g['detail']}" if g.get("detail") else "")
            )
        if action in ("query-failed", "check-error"):
            metric = g.get("metric") or (f"template:{g['template']}" if g.get("template") else None)
            return Parsed(Action(action), metric=metric, detail=g.get("detail") or None)
        if action == "rollback":
            return Parsed(Action.ROLLBACK, failed_checks=int(g["failed"]), weight=0)
        if action in ("rollback-manual", "rollback-deadline"):
            return Parsed(Action(action), weight=0, detail=g.get("detail"))
        if action == "failed":
            return Parsed(Action.FAILED, weight=0)
        if action in ("hook-passed", "hook-failed", "hook-idle", "hook-rollback", "wait"):
            return Parsed(Action(action), metric=f"webhook:{g['hook']}", detail=(g.get("kind") or g.get("detail")))
        if action == "not-ready":
            detail = (g.get("detail") or "").lstrip(": ").strip()
            deadline = "progress deadline" in detail or "progressDeadlineSeconds" in detail
            return Parsed(Action.NOT_READY, detail=("deadline: " if deadline else "") + detail)
        return Parsed(Action(action), detail=g.get("detail") or None)
    return Parsed(Action.OTHER)


def strip_combined(message: str) -> tuple[str, bool]:
    """Return the message without client-go's aggregation prefix, and whether it had one."""
    if message.startswith(COMBINED_PREFIX):
        return message[len(COMBINED_PREFIX) :], True
    return message, False


# ----- queries -----------------------------------------------------------------------------


_TEMPLATE_VAR = re.compile(r"\{\{\s*(\.?[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)?)\s*\}\}")


class TemplateError(ValueError):
    """A metric query template uses a variable Flagger would not know (missingkey=error)."""


def render_query(template: str, model: dict[str, str], variables: dict[str, str]) -> str:
    """Render a Flagger metric query template as Flagger's ``render.go`` does, then collapse whitespace."""

    def sub(m: re.Match[str]) -> str:
        key = m.group(1).lstrip(".")
        if key.startswith("variables."):
            name = key.split(".", 1)[1]
            if name not in variables:
                raise TemplateError(f"map has no entry for key {name!r} in templateVariables")
            return variables[name]
        if key not in model:
            raise TemplateError(f"function {key!r} not defined")
        return model[key]

    return " ".join(_TEMPLATE_VAR.sub(sub, template).split())


def promql_string(value: str) -> str:
    """Quote a value as a PromQL double-quoted string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


_RE2_SPECIAL = re.compile(r"([\\.+*?()|\[\]{}^$])")


def re2_escape(value: str) -> str:
    """Escape a literal for use inside an RE2 regular expression."""
    return _RE2_SPECIAL.sub(r"\\\1", value)
