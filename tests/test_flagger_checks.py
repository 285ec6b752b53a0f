"""Flagger's failed-check messages (reference §2.2): which ones add 1 to failedChecks, and their fields."""

from __future__ import annotations

import math

import pytest

from evidence.flagger import parse_message
from evidence.model import Action

# Every message of §2.2's "Messages that add 1 to failedChecks", as Flagger 1.44 formats it.
COUNTED = [
    ("Halt podinfo.test advancement external check load-test failed exit status 1", Action.HALT, "webhook:load-test"),
    ("Halt podinfo.test advancement pre-rollout check smoke failed 500 Internal Server Error", Action.HALT, "webhook:smoke"),
    ("Halt podinfo.test advancement success rate 75.00% < 99%", Action.HALT, "request-success-rate"),
    ("Halt podinfo.test advancement success rate 99.90% > 99.5%", Action.HALT, "request-success-rate"),
    ("Halt podinfo.test advancement request duration 1.515s > 500ms", Action.HALT, "request-duration"),
    ("Halt podinfo.test advancement request duration 5ms < 10ms", Action.HALT, "request-duration"),
    ("Halt podinfo.test advancement 404s percentage 6.20 > 5", Action.HALT, "404s percentage"),
    ("Halt podinfo.test advancement error ratio +Inf > 1e-07", Action.HALT, "error ratio"),
    ("Halt podinfo.test advancement headroom -Inf < 2.5e+06", Action.HALT, "headroom"),
    (
        "Halt advancement no values found for traefik metric request-success-rate probably podinfo.test is not receiving "
        "traffic: running query failed: no values found",
        Action.HALT,
        "request-success-rate",
    ),
    (
        "Halt advancement no values found for traefik metric request-duration probably podinfo.test is not receiving traffic",
        Action.HALT,
        "request-duration",
    ),
    ("Halt advancement no values found for metric: inline errors", Action.HALT, "inline errors"),
    (
        "Halt advancement no values found for custom metric: 404s percentage: running query failed: no values found",
        Action.HALT,
        "404s percentage",
    ),
    (
        'Prometheus query failed: Post "http://prometheus:9090/api/v1/query": dial tcp 10.0.0.1:9090: connect: '
        "connection refused",
        Action.QUERY_FAILED,
        None,
    ),
    ("Prometheus query failed for inline errors: bad_data: parse error", Action.QUERY_FAILED, "inline errors"),
    ("Metric query failed for 404s percentage: error response: 503 Service Unavailable", Action.QUERY_FAILED, "404s percentage"),
    (
        "Metric template not-found.test error: metrictemplates.flagger.app not found",
        Action.CHECK_ERROR,
        "template:not-found.test",
    ),
    ("Metric template dd.test secret dd-keys error: secrets not found", Action.CHECK_ERROR, "template:dd.test"),
    ("Metric template dd.test provider datadog error: api key missing", Action.CHECK_ERROR, "template:dd.test"),
    ("Metric template e404.test query render error: function 'x' not defined", Action.CHECK_ERROR, "template:e404.test"),
    ("Metric query failed for no usable metrics template and query were configured", Action.CHECK_ERROR, None),
    ("Error building Prometheus client for http://prom:bad parse error", Action.QUERY_FAILED, None),
    ("Error fetching Knative service test/podinfo not found", Action.CHECK_ERROR, None),
]

# Messages that look like checks but add nothing (approval gates, readiness).
NOT_COUNTED = [
    "Halt podinfo.test advancement waiting for approval gate",
    "Halt podinfo.test advancement waiting for traffic increase approval gate",
    "Halt podinfo.test advancement waiting for promotion approval gate",
    "halt podinfo.test advancement: primary deployment is scaled to zero",
    "canary deployment podinfo.test not ready: waiting for rollout to finish: 0 of 1 (readyThreshold 100%) updated replicas are available",
    "podinfo-primary.test not ready: waiting for rollout to finish: 1 old replicas are pending termination",
    "Error checking metric providers: no such host",
    "TraefikService podinfo.test query error: not found",
]


@pytest.mark.parametrize(("message", "action", "metric"), COUNTED)
def test_every_failed_check_message_counts(message: str, action: Action, metric: str | None) -> None:
    parsed = parse_message(message)
    assert parsed.action is action
    assert parsed.failed_check
    assert parsed.metric == metric


@pytest.mark.parametrize("message", NOT_COUNTED)
def test_gates_and_readiness_count_nothing(message: str) -> None:
    assert not parse_message(message).failed_check


def test_custom_halt_values_infinities_and_exponents() -> None:
    p = parse_message("Halt podinfo.test advancement 404s percentage 6.20 > 5")
    assert (p.value, p.threshold, p.comparator) == (6.2, 5.0, ">")
    inf = parse_message("Halt podinfo.test advancement error ratio +Inf > 1e-07")
    assert inf.value == math.inf and inf.threshold == 1e-07
    neg = parse_message("Halt podinfo.test advancement headroom -Inf < 2.5e+06")
    assert neg.value == -math.inf and neg.threshold == 2.5e06 and neg.comparator == "<"


def test_query_failure_keeps_the_cause() -> None:
    p = parse_message("Metric query failed for 404s percentage: error response: 503 Service Unavailable")
    assert p.detail == "error response: 503 Service Unavailable"
