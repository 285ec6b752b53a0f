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


_COMPRESSION = click.option(
    "--prometheus-compression",
    "compression",
    type=click.Choice(["auto", "gzip", "none"]),
    default="auto",
    show_default=True,
    help="Ask Prometheus for gzip answers. auto: not when it answers a test query within 5 ms "
    "(loopback, the same cluster), where compressing costs it more than the link saves.",
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


def _s3_endpoint_option(target: str = "an s3:// store") -> Callable[[F], F]:
    return click.option("--s3-endpoint", metavar="URL", help=f"S3 endpoint for {target} (default: $AWS_ENDPOINT_URL, else AWS).")


def _bundles_out_option(help: str) -> Callable[[F], F]:
    return click.option("--out", default="bundles", show_default=True, metavar="DIR|s3://BUCKET/PREFIX", help=help)


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


_ALLOW_UNVERIFIED = click.option(
    "--allow-unverified",
    is_flag=True,
    help="Use the bundle even if it fails verification; every output then says UNVERIFIED.",
)


def _output_option(choices: tuple[str, ...], default: str = "table") -> Callable[[F], F]:
    return click.option(
        "-o", "--output", "output", default=default, show_default=True, type=click.Choice(choices), help="Output format."
    )


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
from evidence.cli import archiving as _archiving  # noqa: E402, F401
from evidence.cli import bundles as _bundles  # noqa: E402, F401
from evidence.cli import collecting as _collecting  # noqa: E402, F401
from evidence.cli import listing as _listing  # noqa: E402, F401
from evidence.cli import meta as _meta  # noqa: E402, F401
from evidence.cli import policyfile as _policyfile  # noqa: E402, F401
from evidence.cli import preflight as _preflight  # noqa: E402, F401
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
