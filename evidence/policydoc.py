"""The policy toolchain's documents: the default policy as commented YAML, and the policy's JSON Schema.

``default_policy_yaml()`` is written from ``default_policy()`` itself, so the file a user starts
from holds exactly the built-in values; ``policy_schema()`` is the structure ``policy.py``
reads (editors validate with ``# yaml-language-server: $schema=…``).  The reader stays the
judge: the schema cannot say everything it checks (RE2 syntax of ``match:``, per-criterion
threshold ranges), and ``evidence policy check`` reports what the reader says.
"""

from __future__ import annotations

from typing import Any

from evidence.policy import AGGREGATES, BUILTIN, COMPARATORS, ROLES, Criterion, RolloutLimits, default_policy
from evidence.routers.traefik import TRAEFIK

SCHEMA_ID = "https://evidence.dev/schemas/policy.schema.json"


def _duration(seconds: float) -> str:
    if seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def default_policy_yaml() -> str:
    """Return the default policy as a commented YAML file (parsing it gives ``default_policy()``)."""
    p = default_policy()
    c: dict[str, Criterion] = {x.name: x for x in p.criteria}
    e, l95, s = c["error_rate_ratio"], c["p95_latency_increase"], c["success_rate"]
    lim = p.limits
    return f"""\
# yaml-language-server: $schema={SCHEMA_ID}
# The default abort policy of `evidence evaluate`. Edit, then check with `evidence policy check FILE`.
version: 1
# A window in which the canary served fewer requests than this is "no data", never a breach.
min_requests: {p.min_requests}
criteria:
  # The canary's 5xx share divided by the primary's; breached when >= threshold.
  error_rate_ratio:
    threshold: {e.threshold:g}
    window: {_duration(e.window_seconds)}            # trailing window: 30s, 5m, 1h, 1m30s or seconds
    primary_floor: {e.primary_floor:g}     # the primary's share is floored here (no division by zero)
  # Canary p95 / primary p95 - 1 (histogram_quantile over all codes); breached when >= threshold.
  p95_latency_increase:
    threshold: {l95.threshold:g}
    window: {_duration(l95.window_seconds)}
  # The canary's non-5xx share in percent; breached below the threshold.
  success_rate:
    threshold: {s.threshold:g}
    window: {_duration(s.window_seconds)}
  # `NAME: false` disables a built-in criterion. A custom criterion has a kind:
  # errors_4xx:
  #   kind: ratio                 # sum of increase(numerator) / sum of increase(denominator) * scale
  #   numerator:   {{metric: {TRAEFIK.requests}, role: canary, match: {{code: "4.."}}}}
  #   denominator: {{metric: {TRAEFIK.requests}, role: canary}}
  #   scale: 100
  #   window: 2m
  #   breach_when: ">="           # one of {", ".join(COMPARATORS)}
  #   threshold: 5
  # match: label -> regular expression in RE2 syntax (as PromQL), matched against the whole value.
limits:
  max_weight: {lim.max_weight}                  # highest canary weight before promotion, percent
  progress_deadline_seconds: {lim.progress_deadline_seconds}  # highest allowed progressDeadlineSeconds
  require_progress_deadline: {str(lim.require_progress_deadline).lower()}  # progressDeadlineSeconds must be set
  require_rollback_path: {str(lim.require_rollback_path).lower()}      # a rollback or pre-rollout webhook, or an alert provider
"""


def policy_schema() -> dict[str, Any]:
    """Return the JSON Schema (draft 2020-12) of a policy file."""
    duration = {
        "description": "a duration from 1s to 24h: 30s, 5m, 1h, 1m30s, or a number of seconds",
        "oneOf": [
            {"type": "string", "pattern": r"^\s*(?:\d+(?:\.\d+)?(?:ms|s|m|h))+\s*$"},
            {"type": "number", "minimum": 1, "maximum": 86400},
        ],
    }
    count = {"type": "integer", "minimum": 0, "maximum": 10**9}
    selector = {
        "type": "object",
        "additionalProperties": False,
        "required": ["metric"],
        "properties": {
            "metric": {"type": "string", "pattern": "^[a-zA-Z_:][a-zA-Z0-9_:]*$"},
            "role": {"enum": list(ROLES)},
            "match": {
                "type": "object",
                "description": "label -> RE2 regular expression, matched against the whole label value",
                "propertyNames": {"pattern": "^[a-zA-Z_][a-zA-Z0-9_]*$"},
                "additionalProperties": {"type": ["string", "integer"]},
            },
        },
    }
    common = {
        "enabled": {"type": "boolean"},
        "window": duration,
        "min_requests": count,
    }
    positive = {"type": "number", "exclusiveMinimum": 0}
    builtin: dict[str, Any] = {
        "error_rate_ratio": {
            "threshold": positive,
            "primary_floor": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        },
        "p95_latency_increase": {"threshold": positive},
        "success_rate": {"threshold": {"type": "number", "minimum": 0, "maximum": 100}},
    }
    assert tuple(builtin) == BUILTIN
    custom_common = {
        **common,
        "kind": {"enum": ["ratio", "gauge"]},
        "description": {"type": "string"},
        "breach_when": {"enum": list(COMPARATORS)},
        "threshold": {"type": "number"},
    }
    ratio = {
        "type": "object",
        "additionalProperties": False,
        "required": ["kind", "numerator", "denominator", "window", "breach_when", "threshold"],
        "properties": {
            **custom_common,
            "kind": {"const": "ratio"},
            "numerator": selector,
            "denominator": selector,
            "scale": positive,
        },
    }
    gauge = {
        "type": "object",
        "additionalProperties": False,
        "required": ["kind", "series", "window", "breach_when", "threshold"],
        "properties": {**custom_common, "kind": {"const": "gauge"}, "series": selector, "aggregate": {"enum": list(AGGREGATES)}},
    }
    limits = RolloutLimits()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "evidence abort policy",
        "description": "The abort policy of `evidence evaluate` (`--policy FILE`); every key is optional.",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "version": {"const": 1},
            "min_requests": count,
            "criteria": {
                "type": "object",
                "propertyNames": {"pattern": "^[a-z][a-z0-9_-]{0,62}$"},
                "properties": {
                    name: {
                        "oneOf": [
                            {"type": ["boolean", "null"]},
                            {"type": "object", "additionalProperties": False, "properties": {**common, **fields}},
                        ]
                    }
                    for name, fields in builtin.items()
                },
                "additionalProperties": {"oneOf": [ratio, gauge]},
            },
            "limits": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "max_weight": {"type": "integer", "minimum": 1, "maximum": 100, "default": limits.max_weight},
                    "progress_deadline_seconds": {
                        "type": "integer",
                        "minimum": 1,
                        "maximum": 10**7,
                        "default": limits.progress_deadline_seconds,
                    },
                    "require_progress_deadline": {"type": "boolean", "default": limits.require_progress_deadline},
                    "require_rollback_path": {"type": "boolean", "default": limits.require_rollback_path},
                },
            },
        },
    }
