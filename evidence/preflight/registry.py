"""The checks in the order they run and print: one function per code, each returning typed results."""

from __future__ import annotations

from collections.abc import Callable

from evidence.preflight.capture import check_capture
from evidence.preflight.context import Context
from evidence.preflight.controller import check_flagger
from evidence.preflight.criteria import check_policy
from evidence.preflight.hooks import check_rollback_path
from evidence.preflight.limits import check_limits
from evidence.preflight.model import CODES, CheckResult
from evidence.preflight.series import check_queries, check_series
from evidence.preflight.templates import check_templates

Check = Callable[[Context], list[CheckResult]]

CHECKS: dict[str, Check] = {
    "flagger-healthy": check_flagger,
    "traefik-series": check_series,
    "flagger-queries-match": check_queries,
    "metric-templates": check_templates,
    "limits": check_limits,
    "rollback-path": check_rollback_path,
    "evidence-capture": check_capture,
    "abort-policy": check_policy,
}
assert tuple(CHECKS) == CODES
