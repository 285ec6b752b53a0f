"""``evidence watch``: capture every rollout once, unattended (the library is ``evidence.capture``)."""

from __future__ import annotations

from typing import Any

import click

from evidence.cli import _COMPRESSION, _CONTEXT, _KUBECONFIG, _s3_endpoint_option, cli, handle_errors


@cli.command(short_help="Capture every rollout unattended: watch Canaries, receive Flagger's webhooks, store bundles.")
@click.option("--store", required=True, metavar="STORE", help="Archive store: a folder or s3://BUCKET/PREFIX.")
@click.option(
    "--prometheus",
    "prometheus_url",
    envvar="EVIDENCE_PROMETHEUS_URL",
    required=True,
    metavar="URL",
    help="Prometheus base URL (or $EVIDENCE_PROMETHEUS_URL).",
)
@_COMPRESSION
@click.option(
    "--listen", metavar="ADDR", help="Serve the webhook receiver on HOST:PORT (off unless given; 0.0.0.0:8080 in the image)."
)
@click.option("-n", "--namespace", "namespaces", multiple=True, metavar="NS", help="Watch Canaries in NS (repeatable).")
@click.option("-A", "--all-namespaces", is_flag=True, help="Watch Canaries in every namespace (the default without -n).")
@click.option("--selector", metavar="LABELS", help="Only Canaries with these labels (a label selector).")
@_KUBECONFIG
@_CONTEXT
@click.option(
    "--flagger-namespace",
    metavar="NS",
    help="Where Flagger runs, to read its logs (the namespace deploy/ grants pods/log in; default: flagger-system).",
)
@click.option(
    "--from-dump",
    "dump",
    metavar="DIR",
    type=click.Path(),
    help="Read kubectl output from DIR at each capture; webhooks trigger.",
)
@click.option("--tail", default="2m", show_default=True, help="Wait this long after the terminal state before collecting.")
@click.option("--render", "render_formats", metavar="FORMATS", default="", help="Reports to write after each capture: html,pdf.")
@click.option("--sign-key", metavar="FILE", type=click.Path(), help="Sign each bundle with this key from `evidence keygen`.")
@click.option(
    "--notify", multiple=True, metavar="URL", help="Post each decision to this Slack/Teams/Discord webhook (repeatable)."
)
@click.option(
    "--notify-format", type=click.Choice(["slack", "teams", "discord"]), help="Message format when the URL does not tell."
)
@click.option("--token-file", metavar="FILE", type=click.Path(), help="Require `Authorization: Bearer <token>` on webhooks.")
@click.option(
    "--journal", metavar="DIR", type=click.Path(), help="Event journal folder (default: STORE/journal; needed for s3://)."
)
@_s3_endpoint_option()
@handle_errors
def watch(**params: Any) -> None:
    """Capture each rollout once, unattended, into STORE; logs one JSON line per capture.

    Runs until SIGTERM or Ctrl-C. Webhook answers: 202 once journalled (fsynced), 400 malformed,
    401 without the token, 409 a non-terminal post-rollout, 413 too large.
    """
    from evidence.memory import tune_memory

    tune_memory(mmap_arrays=True)
    from evidence.capture.options import WatchArgs, options_from_cli
    from evidence.capture.watch import run_watch

    run_watch(options_from_cli(WatchArgs(**params)))
