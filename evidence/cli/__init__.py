"""The ``evidence`` command: parse options, call one library function, print.

This is the one place where ``EvidenceError`` becomes an exit code (see ``errors.py``).
Heavy libraries (pandas, pyarrow, plotly, the kubernetes client) are imported inside the
commands so that ``evidence --help`` answers quickly.
"""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any, TypeVar

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


# auto_envvar_prefix: every option also reads EVIDENCE_<COMMAND>_<OPTION> (e.g. EVIDENCE_COLLECT_OUT,
# EVIDENCE_LIST_NAMESPACE), for scheduled jobs; options with an envvar of their own keep it.
@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100, "auto_envvar_prefix": "EVIDENCE"})
@click.version_option(__version__, prog_name="evidence")
def cli() -> None:
    """Prove what happened in a Flagger + Traefik canary rollout.

    Collect a rollout into a verifiable bundle, evaluate it against an abort policy, and
    render decision records. Run `evidence COMMAND --help` for a command's options.
    """


from evidence.cli.helpformat import GroupedCommand  # noqa: E402

cli.command_class = GroupedCommand


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


if TYPE_CHECKING:
    _ParamType = click.ParamType[Any]  # generic from click 8.2 on; the floor is 8.1
else:
    _ParamType = click.ParamType


class _ParsedType(_ParamType):
    """An option value read by one of the model's parsers; a bad one is a usage error (exit 2) naming the option."""

    def __init__(self, name: str, parse: Callable[[str, str], Any], kind: type) -> None:
        self.name, self._parse, self._kind = name, parse, kind

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from evidence.errors import UsageError

        if isinstance(value, self._kind):
            return value
        option = param.opts[0] if param is not None and param.opts else self.name
        try:
            return self._parse(value, option)
        except UsageError as exc:
            self.fail(str(exc), param, ctx)


def _user_time(text: str, option: str) -> dt.datetime:
    from evidence.model import parse_user_time

    return parse_user_time(text, option, warn=lambda m: click.echo(m, err=True))


def _user_duration(text: str, option: str) -> dt.timedelta:
    from evidence.model import parse_user_duration

    return parse_user_duration(text, option)


# Times as people paste them (RFC3339 with or without zone, Unix s/ms, now-2h); durations in ms s m h d w.
TIME, DURATION = _ParsedType("time", _user_time, dt.datetime), _ParsedType("duration", _user_duration, dt.timedelta)


_NAMESPACE = click.option(
    "-n",
    "--namespace",
    metavar="NS",
    help="The canary's namespace (default: the kubeconfig context's namespace, else `default`).",
)
_REQUEST_TIMEOUT = click.option(
    "--request-timeout",
    metavar="SECONDS",
    type=click.FloatRange(min=0, min_open=True, max=3600),
    help="Seconds to wait for one answer from the API server (default: --timeout), like kubectl's flag.",
)


_KUBECONFIG = click.option(
    "--kubeconfig", metavar="PATH", help="Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)."
)
_CONTEXT = click.option("--context", metavar="NAME", help="Kubeconfig context to use.")
_FLAGGER_NAMESPACE = click.option(
    "--flagger-namespace",
    metavar="NS",
    help="Where Flagger runs, to read its logs (default: found by its pod labels in any namespace, else flagger-system).",
)
_FLAGGER_SELECTOR = click.option(
    "--flagger-selector", default="app.kubernetes.io/name=flagger", show_default=True, help="Label selector of Flagger's pods."
)


def _prometheus_option(help: str) -> Callable[[F], F]:
    return click.option("--prometheus", "prometheus_url", envvar="EVIDENCE_PROMETHEUS_URL", metavar="URL", help=help)


def _canary_ref(text: str, namespace: str | None, source: Any = None) -> Any:
    """Return the CanaryRef ``text`` names; the source gives the default namespace (the context's)."""
    from evidence.names import parse_canary

    return parse_canary(text, namespace, getattr(source, "default_namespace", None))


def _flagger_prometheus(source: Any, auth: Any) -> tuple[str, Any]:
    """Return the Prometheus URL (and auth) of Flagger's -metrics-server, saying on stderr how it is reached."""
    from evidence.discovery import discover_prometheus, service_proxy_url
    from evidence.errors import UsageError

    found = discover_prometheus(source)
    if found is None:
        raise UsageError(
            "--prometheus URL is required: no Flagger Deployment was found to read its -metrics-server from "
            "(pass --prometheus or set EVIDENCE_PROMETHEUS_URL)"
        )
    click.echo(f"note: --prometheus not given: using Flagger's -metrics-server {found.flagger_url} ({found.where})", err=True)
    if not found.proxied or found.service is None:
        return found.flagger_url, auth
    url = service_proxy_url(source.server, found.service)
    click.echo(
        f"note: {found.flagger_url} is not reachable from here; through the API server's service proxy: {url} "
        f"(needs RBAC get services/proxy in namespace {found.service.namespace})",
        err=True,
    )
    return url, source.service_proxy_auth()


def _cluster_source(
    dump: str | None,
    kubeconfig: str | None,
    context: str | None,
    request_timeout: float,
    flagger_namespace: str | None = None,
    flagger_selector: str = "app.kubernetes.io/name=flagger",
) -> Any:
    """Return the folder (--from-dump) or the live cluster as a source (DumpSource or KubeSource)."""
    from evidence.errors import UsageError

    if dump:
        if kubeconfig or context:
            raise UsageError("--from-dump reads a folder: drop --kubeconfig/--context, or drop --from-dump to read the cluster")
        from evidence.sources.dump import DumpSource

        return DumpSource(dump)
    from evidence.sources.kube import KubeSource

    return KubeSource(
        kubeconfig=kubeconfig,
        context=context,
        flagger_namespace=flagger_namespace,
        flagger_selector=flagger_selector,
        request_timeout=request_timeout,
    )


@cli.command(short_help="Snapshot one rollout into a verifiable parquet bundle.")
@click.argument("canary", metavar="NAME")
@_NAMESPACE
@_prometheus_option("Prometheus-compatible API (Prometheus, Thanos, Mimir, VictoriaMetrics). Env: EVIDENCE_PROMETHEUS_URL.")
@click.option(
    "--from-dump", "dump", metavar="DIR", type=click.Path(), help="Read kubectl output from DIR instead of the live cluster."
)
@_KUBECONFIG
@_CONTEXT
@_FLAGGER_NAMESPACE
@_FLAGGER_SELECTOR
@click.option(
    "--start",
    type=TIME,
    metavar="TIME",
    help="Window start: RFC3339 (no zone: UTC), Unix seconds or ms, or now-2h (default: the latest rollout's start minus --lead).",
)
@click.option(
    "--end", type=TIME, metavar="TIME", help="Window end, written like --start (default: the latest rollout's end plus --tail)."
)
@click.option(
    "--since", type=DURATION, metavar="DURATION", help="Window from this long ago until now, e.g. 2h (instead of --start/--end)."
)
@click.option(
    "--lookback",
    type=DURATION,
    default="24h",
    show_default=True,
    metavar="DURATION",
    help="How far back to look for the latest rollout, e.g. 7d.",
)
@click.option("--lead", type=DURATION, default="10m", show_default=True, help="Time before the rollout to include.")
@click.option("--tail", type=DURATION, default="10m", show_default=True, help="Time after the rollout to include.")
@click.option("--max-window", type=DURATION, default="168h", show_default=True, help="Refuse windows longer than this.")
@click.option(
    "--out",
    default="bundles",
    show_default=True,
    metavar="DIR|s3://BUCKET/PREFIX",
    help="Parent folder for the bundle, or an archive store.",
)
@click.option("--s3-endpoint", metavar="URL", help="S3 endpoint for an s3:// --out (default: $AWS_ENDPOINT_URL, else AWS).")
@click.option("--legal-hold", is_flag=True, help="Record legal_hold in the manifest (an S3 store then puts its objects on hold).")
@click.option(
    "--supersede", is_flag=True, help="With an s3:// --out: store a rollout already archived as the successor of the stored copy."
)
@click.option(
    "--cluster",
    metavar="NAME",
    help="Cluster name for the manifest and the rollout id (default: the kubeconfig context's cluster).",
)
@click.option("--allow-partial", is_flag=True, help="Write the bundle even if some queries failed (gaps are recorded).")
@click.option(
    "--service-label",
    metavar="LABEL",
    help="The label Traefik's service name is stored under (default: detected, also without honorLabels).",
)
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
@click.option(
    "--journal", metavar="DIR", type=click.Path(), help="Also read the capture journal in DIR (webhook payloads, Events)."
)
@_REQUEST_TIMEOUT
@click.option(
    "-o",
    "--output",
    "output",
    type=click.Choice(["name", "json", "yaml"]),
    default="name",
    show_default=True,
    help="name: the bundle's path; json/yaml: a BundleSummary (path and manifest summary).",
)
@click.option("-q", "--quiet", is_flag=True, help="No progress display.")
@handle_errors
def collect(
    canary: str,
    namespace: str | None,
    prometheus_url: str | None,
    dump: str | None,
    kubeconfig: str | None,
    context: str | None,
    flagger_namespace: str | None,
    flagger_selector: str,
    start: dt.datetime | None,
    end: dt.datetime | None,
    since: dt.timedelta | None,
    lookback: dt.timedelta,
    lead: dt.timedelta,
    tail: dt.timedelta,
    max_window: dt.timedelta,
    out: str,
    s3_endpoint: str | None,
    legal_hold: bool,
    supersede: bool,
    cluster: str | None,
    allow_partial: bool,
    service_label: str | None,
    prometheus_token: str | None,
    prometheus_token_file: str | None,
    prometheus_user: str | None,
    prometheus_ca_file: str | None,
    prometheus_insecure_skip_verify: bool,
    headers: tuple[str, ...],
    timeout: float,
    concurrency: int,
    journal: str | None,
    request_timeout: float | None,
    output: str,
    quiet: bool,
) -> None:
    """Snapshot one rollout of the canary NAME into a verifiable parquet bundle.

    \b
    NAME is written as kubectl and Flagger write it: `podinfo -n shop`, `shop/podinfo`,
    `canary/podinfo`, `canaries/podinfo` or `podinfo.shop`. Prints the bundle's path as the
    last line of stdout (-o json|yaml: a BundleSummary instead).
    """
    import os
    from dataclasses import replace
    from pathlib import Path

    from evidence.bundle import inside_bundle
    from evidence.collect import CollectOptions, check_options, collect_rollout
    from evidence.errors import UsageError
    from evidence.progress import Progress
    from evidence.sources import ClusterSource
    from evidence.sources.prometheus import PrometheusAuth, PrometheusSource, read_token_file

    _canary_ref(canary, namespace)  # a bad name is a usage error before any kubeconfig is read
    if not prometheus_url and dump:
        raise UsageError("--prometheus URL is required with --from-dump (or set EVIDENCE_PROMETHEUS_URL)")
    into = inside_bundle(Path(out))
    if into is not None:
        raise UsageError(f"--out {out} is inside the bundle {into}: a bundle never holds another; choose another folder")

    if since is not None:
        if start is not None or end is not None:
            raise UsageError("--since sets the window's start: drop --start/--end, or drop --since")
        start = dt.datetime.now(dt.UTC) - since

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
    from evidence.archive.store import collect_into_store, is_store_url, open_store

    store = open_store(out, endpoint=s3_endpoint) if is_store_url(out) else None
    if supersede and store is None:
        raise UsageError(
            "--supersede applies to an archive store: give --out s3://BUCKET/PREFIX, or use `evidence push --supersede`"
        )
    options = CollectOptions(
        out=Path("." if store else out),
        start=start,
        end=end,
        lead=lead,
        tail=tail,
        max_window=max_window,
        lookback=lookback,
        allow_partial=allow_partial,
        concurrency=concurrency,
        cluster=cluster,
        legal_hold=legal_hold,
        service_label=service_label,
    )
    check_options(options, dt.datetime.now(dt.UTC))
    source: ClusterSource = _cluster_source(
        dump, kubeconfig, context, request_timeout or timeout, flagger_namespace, flagger_selector
    )
    if not prometheus_url:
        prometheus_url, auth = _flagger_prometheus(source, auth)
    prom = PrometheusSource(prometheus_url, auth=auth, timeout=timeout)
    ref = _canary_ref(canary, namespace, source)
    if journal:
        from evidence.sources.journal import JournalSource

        source = JournalSource(source, journal)
    progress = Progress(quiet=quiet)
    from evidence.bundle import open_bundle
    from evidence.documents import dumps
    from evidence.summary import summary_document

    docs: list[dict[str, Any]] = []
    if store is not None:

        def collect_to(tmp: Path) -> Path:
            path = collect_rollout(ref, source, prom, replace(options, out=tmp), progress)
            if output != "name":  # the summary is read before the temporary copy goes
                docs.append(summary_document(open_bundle(path)))
            return path

        result = collect_into_store(store, collect_to, supersede=supersede)
        if not result.created:
            progress.warn(f"a bundle of this rollout is already in {store.url}: {result.location} (nothing stored)")
        location = result.location
    else:
        location = str(collect_rollout(ref, source, prom, options, progress))
        if output != "name":
            docs.append(summary_document(open_bundle(location)))
    if output == "name":
        click.echo(location)
    else:
        click.echo(dumps({**docs[-1], "location": location}, output), nl=False)


_ALLOW_UNVERIFIED = click.option(
    "--allow-unverified",
    is_flag=True,
    help="Use the bundle even if it fails verification; every output then says UNVERIFIED.",
)


def _output_option(choices: tuple[str, ...], default: str = "table") -> Callable[[F], F]:
    return click.option(
        "-o", "--output", "output", default=default, show_default=True, type=click.Choice(choices), help="Output format."
    )


@cli.command(short_help="Summarise a bundle in the terminal.")
@click.argument("bundle", type=click.Path())
@_ALLOW_UNVERIFIED
@_output_option(("text", "json", "yaml"), "text")
@handle_errors
def show(bundle: str, allow_unverified: bool, output: str) -> None:
    """Summarise BUNDLE: canary, window, Flagger's outcome, weights, counts, gaps (verified first).

    -o json|yaml prints a BundleSummary (schemas/bundlesummary.schema.json).
    """
    from evidence.bundle import open_bundle
    from evidence.summary import summarise_bundle, summary_document

    b = open_bundle(bundle, allow_unverified)
    if output == "text":
        click.echo(_printable(summarise_bundle(b)))
    else:
        from evidence.documents import dumps

        click.echo(dumps(summary_document(b), output), nl=False)


@cli.command(short_help="Judge a bundle against the abort policy (exit 3 on a breach).")
@click.argument("bundle", type=click.Path())
@click.option(
    "--policy", "policy_file", metavar="FILE", type=click.Path(), help="Abort policy YAML (default: the built-in policy)."
)
@_output_option(("text", "json", "yaml"), "text")
@click.option("--json", "as_json", is_flag=True, help="Same as -o json.")
@click.option(
    "--fail-on",
    metavar="LIST",
    default="breach",
    show_default=True,
    help="Exit 3 when any of these holds (comma-separated): breach, promoted-despite-breach, silent-failure, "
    "no-data, low-confidence, unverified.",
)
@_ALLOW_UNVERIFIED
@handle_errors
def evaluate(bundle: str, policy_file: str | None, output: str, as_json: bool, fail_on: str, allow_unverified: bool) -> None:
    """Judge BUNDLE against the abort policy and reconstruct what Flagger did.

    \b
    Exit codes: 0 none of the --fail-on conditions holds (by default: no
    abort criterion breached), 3 at least one holds, 1 error, 2 usage.
    """
    from evidence.bundle import open_bundle
    from evidence.documents import document, dumps
    from evidence.evaluate import evaluate_bundle
    from evidence.gate import failing_conditions, parse_fail_on
    from evidence.policy import default_policy, load_policy
    from evidence.render.evaluation import evaluation_to_json, format_evaluation

    conditions = parse_fail_on(fail_on)
    policy = load_policy(policy_file) if policy_file else default_policy()
    ev = evaluate_bundle(open_bundle(bundle, allow_unverified), policy)
    if as_json or output != "text":
        click.echo(dumps(document("Evaluation", evaluation_to_json(ev)), "json" if as_json else output), nl=False)
    else:
        click.echo(_printable(format_evaluation(ev)), nl=False)
    failing = failing_conditions(ev, conditions)
    if failing and failing != ["breach"]:
        click.echo("evaluate: failing on " + ", ".join(failing) + " (--fail-on)", err=True)
    sys.exit(3 if failing else 0)


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
    import datetime as dt
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


@cli.command(short_help="Create an ECDSA P-256 key pair for signing bundles.")
@click.argument("prefix")
@handle_errors
def keygen(prefix: str) -> None:
    """Write PREFIX.key (PKCS#8 PEM, mode 0600) and PREFIX.pub (PEM public key).

    P-256 keys are what cosign uses, so other tools can check the signatures. Keys are never
    overwritten and never enter a bundle.
    """
    from evidence.archive.sign import generate_keypair

    for path in generate_keypair(prefix):
        click.echo(str(path))


@cli.command(short_help="Sign a bundle: in-toto attestation in DSSE, and a Sigstore bundle.")
@click.argument("bundle", type=click.Path())
@click.option("--key", "key", required=True, metavar="PREFIX.key", help="Private key from `evidence keygen`.")
@click.option("--force", is_flag=True, help="Replace an existing attestation.")
@handle_errors
def sign(bundle: str, key: str, force: bool) -> None:
    """Verify BUNDLE, then write attestation.intoto.jsonl and attestation.sigstore.json into it.

    The statement's subjects are every file of the bundle (manifest included) by sha256; its
    predicate is the rollout's decision. Prints the two paths.
    """
    from evidence.archive.sign import sign_bundle

    for path in sign_bundle(bundle, key, force=force):
        click.echo(str(path))


@cli.command(short_help="Copy a bundle into an archive store (folder or s3://).")
@click.argument("bundle", type=click.Path())
@click.argument("store")
@click.option("--s3-endpoint", metavar="URL", help="S3 endpoint (default: $AWS_ENDPOINT_URL, else AWS).")
@click.option(
    "--supersede", is_flag=True, help="Store it even if the rollout is archived: keep the old copy, record this as its successor."
)
@click.option(
    "--retain-until",
    metavar="RFC3339|YYYY-MM-DD",
    help="S3 Object Lock retention in compliance mode (bucket must have Object Lock).",
)
@handle_errors
def push(bundle: str, store: str, s3_endpoint: str | None, supersede: bool, retain_until: str | None) -> None:
    """Verify BUNDLE and copy it into STORE under cluster=/namespace=/canary=/date=/<bundle-id>/.

    \b
    Prints the stored location. A rollout already in the store is not stored again (a warning,
    exit 0) unless --supersede. Credentials: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    AWS_SESSION_TOKEN, AWS_REGION.
    """
    from pathlib import Path

    from evidence.archive.store import open_store, parse_retention

    target = open_store(store, endpoint=s3_endpoint)
    result = target.put_bundle(Path(bundle), supersede=supersede, retain_until=parse_retention(retain_until))
    if not result.created:
        click.echo(f"Warning: this rollout is already in {target.url}: {result.location} (nothing stored)", err=True)
    click.echo(result.location)


@cli.command(short_help="Check bundles: files, manifest pin, signature; or a whole archive.")
@click.argument("target")
@click.option("--key", "key", metavar="PUB", help="Public key: require a valid signature whose subjects match the files.")
@click.option("--expect-sha256", metavar="HASH", help="Require this sha256 of manifest.json.")
@click.option("--s3-endpoint", metavar="URL", help="S3 endpoint for an s3:// store.")
@_output_option(("table", "json", "yaml"))
@handle_errors
def verify(target: str, key: str | None, expect_sha256: str | None, s3_endpoint: str | None, output: str) -> None:
    """Check TARGET, a bundle folder or an archive store (folder or s3://BUCKET/PREFIX).

    \b
    A bundle: every file against the manifest, --expect-sha256, and with --key the signature
    and its subjects. Without --key the signature is reported as `unsigned` or `signed, not
    checked`. A store: every bundle, one line per bad bundle. Exit 0 when everything
    verifies, 1 otherwise.
    """
    from evidence import documents
    from evidence.archive.check import check_bundle, check_store, is_store_target
    from evidence.archive.store import open_store
    from evidence.errors import UsageError

    if is_store_target(target):
        if expect_sha256:
            raise UsageError("--expect-sha256 pins one bundle's manifest; give a bundle folder, not a store")
        checked = check_store(open_store(target, endpoint=s3_endpoint), key)
        if output != "table":
            click.echo(documents.dumps(documents.document("ArchiveVerification", checked.to_json()), output), nl=False)
        else:
            for b in checked.bundles:
                if not b.ok:
                    click.echo(f"bad: {b.location}: {'; '.join(b.problems)}", err=True)
            good = sum(b.ok for b in checked.bundles)
            click.echo(f"{good} of {len(checked.bundles)} bundles verify in {checked.store}")
        sys.exit(0 if checked.ok else 1)
    result = check_bundle(target, key, expect_sha256)
    if output != "table":
        click.echo(documents.dumps(documents.document("Verification", result.to_json()), output), nl=False)
    elif result.ok:
        click.echo(
            f"ok: {result.files} files match the manifest (bundle {result.bundle_id}, manifest sha256 "
            f"{result.manifest_sha256}); signature: {result.signature}"
        )
    else:
        for problem in result.problems:
            click.echo(f"error: {target}: {problem}", err=True)
    sys.exit(0 if result.ok else 1)


@cli.command(short_help="One row per archived rollout, or fleet figures (--summary).")
@click.argument("store")
@click.option("-n", "--namespace", metavar="NS", help="Only this namespace.")
@click.option("--canary", metavar="NAME", help="Only this canary.")
@click.option("--since", metavar="RFC3339", help="Only rollouts that started at or after this time.")
@click.option(
    "--outcome", type=click.Choice(["promoted", "rolled_back", "failed", "in_progress", "unknown"]), help="Only this outcome."
)
@click.option("--summary", is_flag=True, help="Fleet figures per cluster, namespace and canary instead of rows.")
@click.option(
    "--key", "key", metavar="PUB", help="Public key: fill `verified` (the row's manifest and summary are signed by it)."
)
@click.option("--s3-endpoint", metavar="URL", help="S3 endpoint for an s3:// store.")
@_output_option(("table", "json", "csv"))
@handle_errors
def history(
    store: str,
    namespace: str | None,
    canary: str | None,
    since: str | None,
    outcome: str | None,
    summary: bool,
    key: str | None,
    s3_endpoint: str | None,
    output: str,
) -> None:
    """Read every bundle's summary in STORE with DuckDB: history rows or fleet figures.

    Bad bundles are skipped with a warning on stderr; the rest still answer.
    """
    from evidence.archive.check import dumps
    from evidence.archive.ledger import Filters
    from evidence.archive.ledger import history as run_history
    from evidence.archive.report import ledger_csv, ledger_table
    from evidence.archive.store import open_store
    from evidence.model import parse_time

    filters = Filters(namespace, canary, parse_time(since, "--since") if since else None, outcome)
    doc = run_history(open_store(store, endpoint=s3_endpoint), filters, key=key, summary=summary)
    for w in doc["warnings"]:
        click.echo(f"Warning: {w}", err=True)
    if output == "json":
        click.echo(dumps(doc))
    else:
        click.echo(ledger_csv(doc) if output == "csv" else ledger_table(doc), nl=False)


def kubectl_main() -> None:
    """Run as the kubectl plugin ``kubectl evidence``: kubectl's global flags may come before the command."""
    from evidence.cli.meta import kubectl_argv

    sys.argv = ["kubectl evidence", *kubectl_argv(sys.argv[1:])]
    main()


def main() -> None:
    """Run the CLI; SIGTERM cleans up like Ctrl-C (no hidden temporary folders are left)."""
    import signal

    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        cli()
    except _Terminated:
        click.echo("error: terminated (SIGTERM); nothing partial was left behind", err=True)
        sys.exit(143)


# Commands kept in their own modules register themselves on `cli` when imported.
from evidence.cli import listing as _listing  # noqa: E402, F401
from evidence.cli import meta as _meta  # noqa: E402, F401
from evidence.cli import policyfile as _policyfile  # noqa: E402, F401
from evidence.cli import watch as _watch  # noqa: E402, F401


def _name_envvars(group: click.Group, prefix: str) -> None:
    """Give every option without an envvar of its own EVIDENCE_<COMMAND>_<OPTION>, from its long flag.

    click's auto_envvar_prefix would use the parameter's Python name (``--from-dump`` is
    ``dump``); the flag is what a user reads in --help, so the variable is named after it.
    """
    for name, command in group.commands.items():
        if command.name != name:
            continue  # an alias (get = list) shares its command's variables
        here = f"{prefix}_{name.upper().replace('-', '_')}"
        if isinstance(command, click.Group):
            _name_envvars(command, here)
            continue
        for param in command.params:
            if isinstance(param, click.Option) and param.envvar is None and param.name != "help":
                flag = max(param.opts, key=len).lstrip("-")
                param.envvar = f"{here}_{flag.upper().replace('-', '_')}"


_name_envvars(cli, "EVIDENCE")
