"""``evidence preflight``: check the guardrails before a canary starts."""

from __future__ import annotations

import datetime as dt
import sys

import click

from evidence.cli import (
    _CONTEXT,
    _KUBECONFIG,
    _NAMESPACE,
    _canary_ref,
    _cluster_source,
    _flagger_prometheus,
    _prometheus_option,
    cli,
    handle_errors,
)


@cli.command(short_help="Check the guardrails before a canary starts (exit 4 when a check blocks).")
@click.argument("canary", metavar="NAME")
@_NAMESPACE
@_prometheus_option("Prometheus-compatible API that holds Traefik's series. Env: EVIDENCE_PROMETHEUS_URL.")
@_KUBECONFIG
@_CONTEXT
@click.option(
    "--from-dump", "dump", metavar="DIR", type=click.Path(), help="Read kubectl output from DIR; live-only checks are skipped."
)
@click.option(
    "--policy", "policy_file", metavar="FILE", type=click.Path(), help="Abort policy YAML (default: the built-in policy)."
)
@click.option("--at", "at_text", metavar="TIME", help="Judge as of TIME (RFC3339 or Unix seconds/ms) instead of now.")
@click.option(
    "--probe-webhooks", is_flag=True, help="POST Flagger's payload to the rollback and confirm hooks and judge the answers."
)
@click.option(
    "-o", "--output", "fmt", default="table", show_default=True, type=click.Choice(["table", "json"]), help="Output format."
)
@click.option(
    "--timeout", default=10.0, show_default=True, help="Seconds to wait for Prometheus, the API server or one webhook probe."
)
@handle_errors
def preflight(
    canary: str,
    namespace: str | None,
    prometheus_url: str | None,
    kubeconfig: str | None,
    context: str | None,
    dump: str | None,
    policy_file: str | None,
    at_text: str | None,
    probe_webhooks: bool,
    fmt: str,
    timeout: float,
) -> None:
    """Check the canary NAME's guardrails before a rollout: Flagger, Traefik's series, limits, rollback path.

    \b
    Exit codes: 0 nothing blocks, 4 at least one check blocks, 1 error, 2 usage.
    A check that cannot run here (live-only checks on a dump) is `skip`: not checked, not passed.
    """
    import json

    from evidence.errors import UsageError
    from evidence.policy import default_policy, load_policy
    from evidence.preflight import format_preflight, parse_at, preflight_to_json, run_preflight
    from evidence.preflight.context import FlaggerFinder
    from evidence.sources.prometheus import PrometheusSource

    _canary_ref(canary, namespace)  # a bad name is a usage error before any kubeconfig is read
    if not prometheus_url and dump:
        raise UsageError("--prometheus URL is required with --from-dump (or set EVIDENCE_PROMETHEUS_URL)")
    if timeout <= 0:
        raise UsageError(f"--timeout {timeout:g}: give a positive number of seconds")
    at = parse_at(at_text) if at_text else dt.datetime.now(dt.UTC)
    policy = load_policy(policy_file) if policy_file else default_policy()
    source: FlaggerFinder = _cluster_source(dump, kubeconfig, context, timeout)
    from evidence.sources.prometheus import PrometheusAuth

    prometheus_url, auth = (
        _flagger_prometheus(source, PrometheusAuth()) if not prometheus_url else (prometheus_url, PrometheusAuth())
    )
    prom = PrometheusSource(prometheus_url, auth=auth, timeout=timeout)
    ref = _canary_ref(canary, namespace, source)
    result = run_preflight(ref, source, prom, policy, at, probe_webhooks=probe_webhooks, timeout_s=timeout)
    if fmt == "json":
        click.echo(json.dumps(preflight_to_json(result), indent=2, ensure_ascii=False))
    else:
        click.echo(format_preflight(result), nl=False)
    sys.exit(4 if result.blocked else 0)
