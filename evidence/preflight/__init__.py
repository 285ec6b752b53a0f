"""Checks before a rollout starts (``evidence preflight``): will Flagger, Traefik and Prometheus guard it?

``run_preflight`` reads the canary from a cluster source (live or dump), asks Prometheus as of
``at``, and runs every check of ``registry.CHECKS``.  Each returns typed results with a status:
``ok``, ``warn``, ``block`` or ``skip`` (could not run here — not a pass).  Facts about Flagger
and Traefik come from ../shared/reference/flagger-traefik.md, cited by section in each module.
"""

from __future__ import annotations

import datetime as dt

from evidence.canary import canary_spec
from evidence.errors import KubeError
from evidence.model import CanaryRef
from evidence.policy import Policy
from evidence.preflight.context import Context, FlaggerFinder
from evidence.preflight.model import CODES, CheckResult, Preflight, Status, parse_at
from evidence.preflight.output import format_preflight, preflight_to_json
from evidence.preflight.plan import read_plan
from evidence.preflight.registry import CHECKS
from evidence.sources.prometheus import PrometheusSource

__all__ = ["CODES", "CheckResult", "Preflight", "Status", "format_preflight", "parse_at", "preflight_to_json", "run_preflight"]


def run_preflight(
    ref: CanaryRef,
    source: FlaggerFinder,
    prom: PrometheusSource,
    policy: Policy,
    at: dt.datetime,
    *,
    probe_webhooks: bool = False,
    timeout_s: float = 10.0,
    now: dt.datetime | None = None,
) -> Preflight:
    """Run every check for ``ref`` as of ``at`` (``now`` is the wall clock); raise NotFoundError for an unknown canary."""
    cluster = source.read_objects(ref)  # events and Flagger's log are not needed before a rollout
    flagger_error = None
    try:
        flagger = source.find_flagger()
    except KubeError as exc:
        flagger, flagger_error = [], str(exc)
    ctx = Context(
        ref=ref,
        spec=canary_spec(ref, cluster.canary),
        plan=read_plan(cluster.canary),
        cluster=cluster,
        flagger=flagger,
        flagger_error=flagger_error,
        live=cluster.source_kind == "cluster",
        prom=prom,
        at=at,
        policy=policy,
        probe=probe_webhooks,
        timeout_s=timeout_s,
        now=now or dt.datetime.now(dt.UTC),
    )
    results = [result for check in CHECKS.values() for result in check(ctx)]
    return Preflight(str(ref), at, source.describe(), tuple(results))
