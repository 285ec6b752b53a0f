"""The ``evidence`` command: parse options, call one library function, print.

This is the one place where ``EvidenceError`` becomes an exit code (see ``errors.py``).
Heavy libraries (pandas, pyarrow, plotly, the kubernetes client) are imported inside the
commands so that ``evidence --help`` answers quickly.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from evidence import __version__
from evidence.errors import EvidenceError

F = TypeVar("F", bound=Callable[..., Any])


def handle_errors(fn: F) -> F:
    """Turn library errors into a one-line message on stderr and their exit code."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except EvidenceError as exc:
            click.echo(f"error: {_printable(str(exc))}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("error: interrupted; nothing partial was left behind", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="evidence")
def cli() -> None:
    """Prove what happened in a Flagger + Traefik canary rollout.

    Collect a rollout into a verifiable bundle, evaluate it against an abort policy, and
    render decision records. Run `evidence COMMAND --help` for a command's options.
    """


def _printable(text: str) -> str:
    """Return text safe for a terminal: control characters (escape sequences, bidi overrides) shown, not obeyed."""
    from evidence.textsafe import terminal_safe

    return terminal_safe(text)


class _Terminated(BaseException):
    """SIGTERM, turned into an exception so that temporary folders are removed on the way out."""


def _on_sigterm(signum: int, frame: Any) -> None:
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not interrupt the clean-up
    raise _Terminated()


def _env_or(value: str | None, env: str) -> str | None:
    import os

    return value if value else os.environ.get(env) or None


@cli.command(short_help="Snapshot one rollout into a verifiable parquet bundle.")
@click.argument("canary", metavar="NAMESPACE/CANARY")
@click.option(
    "--prometheus",
    "prometheus_url",
    envvar="EVIDENCE_PROMETHEUS_URL",
    metavar="URL",
    help="Prometheus-compatible API (Prometheus, Thanos, Mimir, VictoriaMetrics). Env: EVIDENCE_PROMETHEUS_URL.",
)
@click.option(
    "--from-dump", "dump", metavar="DIR", type=click.Path(), help="Read kubectl output from DIR instead of the live cluster."
)
@click.option("--kubeconfig", metavar="PATH", help="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster).")
@click.option("--context", metavar="NAME", help="Kubeconfig context to use.")
@click.option(
    "--flagger-namespace", default="flagger-system", show_default=True, help="Where Flagger runs (its logs are read from there)."
)
@click.option(
    "--flagger-selector", default="app.kubernetes.io/name=flagger", show_default=True, help="Label selector of Flagger's pods."
)
@click.option("--start", metavar="RFC3339", help="Window start (default: the latest rollout's start minus --lead).")
@click.option("--end", metavar="RFC3339", help="Window end (default: the latest rollout's end plus --tail).")
@click.option("--lead", default="10m", show_default=True, help="Time before the rollout to include.")
@click.option("--tail", default="10m", show_default=True, help="Time after the rollout to include.")
@click.option("--max-window", default="168h", show_default=True, help="Refuse windows longer than this.")
@click.option("--out", default="bundles", show_default=True, type=click.Path(), help="Parent folder for the bundle.")
@click.option(
    "--cluster",
    metavar="NAME",
    help="Cluster name for the manifest and the rollout id (default: the kubeconfig context's cluster).",
)
@click.option("--allow-partial", is_flag=True, help="Write the bundle even if some queries failed (gaps are recorded).")
@click.option(
    "--prometheus-token",
    envvar="EVIDENCE_PROMETHEUS_TOKEN",
    metavar="TOKEN",
    help="Bearer token. Env: EVIDENCE_PROMETHEUS_TOKEN.",
)
@click.option("--prometheus-token-file", metavar="PATH", help="File holding a bearer token.")
@click.option("--prometheus-user", metavar="USER", help="Basic-auth user (password from EVIDENCE_PROMETHEUS_PASSWORD).")
@click.option("--prometheus-ca-file", metavar="PATH", help="CA bundle to verify Prometheus' TLS certificate.")
@click.option("--prometheus-insecure-skip-verify", is_flag=True, help="Do not verify Prometheus' TLS certificate.")
@click.option(
    "--prometheus-header",
    "headers",
    multiple=True,
    metavar="NAME=VALUE",
    help="Extra header, e.g. X-Scope-OrgID=tenant-a for Mimir/Cortex. Repeatable.",
)
@click.option(
    "--timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True, max=3600),
    help="Seconds to wait for one whole answer from Prometheus or the API server.",
)
@click.option(
    "--concurrency", default=4, show_default=True, type=click.IntRange(1, 64), help="Prometheus queries in flight at once."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress display.")
@handle_errors
def collect(
    canary: str,
    prometheus_url: str | None,
    dump: str | None,
    kubeconfig: str | None,
    context: str | None,
    flagger_namespace: str,
    flagger_selector: str,
    start: str | None,
    end: str | None,
    lead: str,
    tail: str,
    max_window: str,
    out: str,
    cluster: str | None,
    allow_partial: bool,
    prometheus_token: str | None,
    prometheus_token_file: str | None,
    prometheus_user: str | None,
    prometheus_ca_file: str | None,
    prometheus_insecure_skip_verify: bool,
    headers: tuple[str, ...],
    timeout: float,
    concurrency: int,
    quiet: bool,
) -> None:
    """Snapshot one rollout of NAMESPACE/CANARY into a verifiable parquet bundle.

    Prints the bundle's path as the last line of stdout.
    """
    import datetime as dt
    import os
    from pathlib import Path

    from evidence.bundle import inside_bundle
    from evidence.canary import parse_duration
    from evidence.collect import CollectOptions, check_options, collect_rollout
    from evidence.errors import UsageError
    from evidence.model import CanaryRef, parse_time
    from evidence.progress import Progress
    from evidence.sources import ClusterSource
    from evidence.sources.prometheus import PrometheusAuth, PrometheusSource, read_token_file

    ref = CanaryRef.parse(canary)
    if not prometheus_url:
        raise UsageError("--prometheus URL is required (or set EVIDENCE_PROMETHEUS_URL)")
    into = inside_bundle(Path(out))
    if into is not None:
        raise UsageError(f"--out {out} is inside the bundle {into}: a bundle never holds another; choose another folder")

    def duration(text: str, option: str) -> dt.timedelta:
        try:
            return dt.timedelta(seconds=parse_duration(text))
        except ValueError:
            raise UsageError(f"{option} {text!r}: not a duration; write e.g. 10m, 90s or 2h") from None

    hdrs: dict[str, str] = {}
    for h in headers:
        k, sep, v = h.partition("=")
        if not sep or not k.strip():
            raise UsageError(f"--prometheus-header {h!r}: write NAME=VALUE, e.g. X-Scope-OrgID=tenant-a")
        hdrs[k.strip()] = v.strip()
    token = prometheus_token or (read_token_file(prometheus_token_file) if prometheus_token_file else None)
    auth = PrometheusAuth(
        bearer_token=token,
        username=prometheus_user,
        password=os.environ.get("EVIDENCE_PROMETHEUS_PASSWORD") if prometheus_user else None,
        ca_file=prometheus_ca_file,
        insecure_skip_verify=prometheus_insecure_skip_verify,
        headers=hdrs,
    )
    options = CollectOptions(
        out=Path(out),
        start=parse_time(start, "--start") if start else None,
        end=parse_time(end, "--end") if end else None,
        lead=duration(lead, "--lead"),
        tail=duration(tail, "--tail"),
        max_window=duration(max_window, "--max-window"),
        allow_partial=allow_partial,
        concurrency=concurrency,
        cluster=cluster,
    )
    check_options(options, dt.datetime.now(dt.UTC))
    prom = PrometheusSource(prometheus_url, auth=auth, timeout=timeout)
    source: ClusterSource
    if dump:
        if kubeconfig or context:
            raise UsageError("--from-dump reads a folder: drop --kubeconfig/--context, or drop --from-dump to read the cluster")
        from evidence.sources.dump import DumpSource

        source = DumpSource(dump)
    else:
        from evidence.sources.kube import KubeSource

        source = KubeSource(
            kubeconfig=kubeconfig,
            context=context,
            flagger_namespace=flagger_namespace,
            flagger_selector=flagger_selector,
            request_timeout=timeout,
        )
    path = collect_rollout(ref, source, prom, options, Progress(quiet=quiet))
    click.echo(str(path))


@cli.command(short_help="Check a bundle's files against its manifest.")
@click.argument("bundle", type=click.Path())
@handle_errors
def verify(bundle: str) -> None:
    """Check every file of BUNDLE against its manifest (exit 0 when all match)."""
    from evidence.bundle import verify_bundle

    info = verify_bundle(bundle)
    click.echo(
        f"ok: {info['files']} files match the manifest (bundle {info['bundle_id']}, manifest sha256 {info['manifest_sha256']})"
    )


_ALLOW_UNVERIFIED = click.option(
    "--allow-unverified",
    is_flag=True,
    help="Use the bundle even if it fails verification; every output then says UNVERIFIED.",
)


@cli.command(short_help="Summarise a bundle in the terminal.")
@click.argument("bundle", type=click.Path())
@_ALLOW_UNVERIFIED
@handle_errors
def show(bundle: str, allow_unverified: bool) -> None:
    """Summarise BUNDLE: canary, window, Flagger's outcome, weights, counts, gaps (verified first)."""
    from evidence.bundle import open_bundle
    from evidence.summary import summarise_bundle

    click.echo(_printable(summarise_bundle(open_bundle(bundle, allow_unverified))))


@cli.command(short_help="Judge a bundle against the abort policy (exit 3 on a breach).")
@click.argument("bundle", type=click.Path())
@click.option(
    "--policy", "policy_file", metavar="FILE", type=click.Path(), help="Abort policy YAML (default: the built-in policy)."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of the summary.")
@_ALLOW_UNVERIFIED
@handle_errors
def evaluate(bundle: str, policy_file: str | None, as_json: bool, allow_unverified: bool) -> None:
    """Judge BUNDLE against the abort policy and reconstruct what Flagger did.

    \b
    Exit codes: 0 no abort criterion breached, 3 at least one breached,
    1 error, 2 usage.
    """
    import json

    from evidence.bundle import open_bundle
    from evidence.evaluate import evaluate_bundle
    from evidence.policy import default_policy, load_policy
    from evidence.render.evaluation import evaluation_to_json, format_evaluation

    policy = load_policy(policy_file) if policy_file else default_policy()
    ev = evaluate_bundle(open_bundle(bundle, allow_unverified), policy)
    if as_json:
        click.echo(json.dumps(evaluation_to_json(ev), indent=2, ensure_ascii=True))
    else:
        click.echo(_printable(format_evaluation(ev)), nl=False)
    sys.exit(3 if ev.verdict == "abort" else 0)


@cli.command(short_help="Write the HTML/PDF decision record and the postmortem pack.")
@click.argument("bundle", type=click.Path())
@click.option(
    "--format",
    "fmt",
    default="html",
    show_default=True,
    type=click.Choice(["html", "pdf", "all"]),
    help="html: interactive, self-contained; pdf: A4 print layout; all: both plus the postmortem pack.",
)
@click.option("--postmortem", is_flag=True, help="Also write the postmortem pack (HTML and Markdown).")
@click.option("--out", default="reports", show_default=True, type=click.Path(), help="Folder for the reports.")
@click.option("--template-dir", metavar="DIR", type=click.Path(), help="Templates that override report_templates/ by file name.")
@click.option(
    "--policy", "policy_file", metavar="FILE", type=click.Path(), help="Abort policy YAML (default: the built-in policy)."
)
@_ALLOW_UNVERIFIED
@handle_errors
def render(
    bundle: str, fmt: str, postmortem: bool, out: str, template_dir: str | None, policy_file: str | None, allow_unverified: bool
) -> None:
    """Render BUNDLE's decision record (and postmortem pack) from the bundle alone.

    Prints each written file's path, one a line. Never contacts a cluster or Prometheus.
    """
    from evidence.render import formats_for, render_bundle

    paths = render_bundle(
        bundle,
        formats_for(fmt, postmortem),
        out,
        template_dir=template_dir,
        policy_path=policy_file,
        allow_unverified=allow_unverified,
    )
    for path in paths:
        click.echo(str(path))


@cli.command(short_help="Check the guardrails before a canary starts (exit 4 when a check blocks).")
@click.argument("canary", metavar="NAMESPACE/CANARY")
@click.option(
    "--prometheus",
    "prometheus_url",
    envvar="EVIDENCE_PROMETHEUS_URL",
    metavar="URL",
    help="Prometheus-compatible API that holds Traefik's series. Env: EVIDENCE_PROMETHEUS_URL.",
)
@click.option("--kubeconfig", metavar="PATH", help="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster).")
@click.option("--context", metavar="NAME", help="Kubeconfig context to use.")
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
    """Check NAMESPACE/CANARY's guardrails before a rollout: Flagger, Traefik's series, limits, rollback path.

    \b
    Exit codes: 0 nothing blocks, 4 at least one check blocks, 1 error, 2 usage.
    A check that cannot run here (live-only checks on a dump) is `skip`: not checked, not passed.
    """
    import datetime as dt
    import json

    from evidence.errors import UsageError
    from evidence.model import CanaryRef
    from evidence.policy import default_policy, load_policy
    from evidence.preflight import format_preflight, parse_at, preflight_to_json, run_preflight
    from evidence.preflight.context import FlaggerFinder
    from evidence.sources.prometheus import PrometheusSource

    ref = CanaryRef.parse(canary)
    if not prometheus_url:
        raise UsageError("--prometheus URL is required (or set EVIDENCE_PROMETHEUS_URL)")
    if timeout <= 0:
        raise UsageError(f"--timeout {timeout:g}: give a positive number of seconds")
    at = parse_at(at_text) if at_text else dt.datetime.now(dt.UTC)
    policy = load_policy(policy_file) if policy_file else default_policy()
    prom = PrometheusSource(prometheus_url, timeout=timeout)
    source: FlaggerFinder
    if dump:
        if kubeconfig or context:
            raise UsageError("--from-dump reads a folder: drop --kubeconfig/--context, or drop --from-dump to read the cluster")
        from evidence.sources.dump import DumpSource

        source = DumpSource(dump)
    else:
        from evidence.sources.kube import KubeSource

        source = KubeSource(kubeconfig=kubeconfig, context=context, request_timeout=timeout)
    result = run_preflight(ref, source, prom, policy, at, probe_webhooks=probe_webhooks, timeout_s=timeout)
    if fmt == "json":
        click.echo(json.dumps(preflight_to_json(result), indent=2, ensure_ascii=False))
    else:
        click.echo(format_preflight(result), nl=False)
    sys.exit(4 if result.blocked else 0)


def main() -> None:
    """Run the CLI; SIGTERM cleans up like Ctrl-C (no hidden temporary folders are left)."""
    import signal

    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        cli()
    except _Terminated:
        click.echo("error: terminated (SIGTERM); nothing partial was left behind", err=True)
        sys.exit(143)
