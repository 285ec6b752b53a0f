"""``evidence list`` (alias ``get``): the canaries that can be collected, and which already are."""

from __future__ import annotations

from collections.abc import Callable

import click

from evidence.cli import (
    _CONTEXT,
    _FLAGGER_NAMESPACE,
    _FLAGGER_SELECTOR,
    _KUBECONFIG,
    _NAMESPACE,
    _REQUEST_TIMEOUT,
    _bundles_out_option,
    _cluster_source,
    _s3_endpoint_option,
    cli,
    handle_errors,
)


@cli.command("list", short_help="List canaries: phase, latest rollout, outcome, whether collected.")
@_NAMESPACE
@click.option("-A", "--all-namespaces", is_flag=True, help="List the canaries of every namespace.")
@click.option(
    "--from-dump", "dump", metavar="DIR", type=click.Path(), help="Read kubectl output from DIR instead of the live cluster."
)
@_KUBECONFIG
@_CONTEXT
@_REQUEST_TIMEOUT
@_FLAGGER_NAMESPACE
@_FLAGGER_SELECTOR
@_bundles_out_option("Where bundles are looked for: collect's --out folder, or an archive store.")
@_s3_endpoint_option("an s3:// --out")
@click.option("--cluster", metavar="NAME", help="Cluster name of the rollout ids (default: the kubeconfig context's cluster).")
@click.option(
    "-o",
    "--output",
    "output",
    default="table",
    show_default=True,
    type=click.Choice(["table", "wide", "json", "yaml"]),
    help="Output format (wide: also target, bundle id, where).",
)
@handle_errors
def list_(
    namespace: str | None,
    all_namespaces: bool,
    dump: str | None,
    kubeconfig: str | None,
    context: str | None,
    request_timeout: float | None,
    flagger_namespace: str | None,
    flagger_selector: str,
    out: str,
    s3_endpoint: str | None,
    cluster: str | None,
    output: str,
) -> None:
    """List the canaries of a namespace (-A: of all) with their latest rollout and whether it is collected.

    \b
    The latest rollout is found as `collect` finds it; COLLECTED says whether a bundle of that
    rollout is already in --out (a folder or an archive store). Outcome is Flagger's, read from
    the Canary's status.
    """
    from pathlib import Path

    from evidence.archive.check import is_store_target
    from evidence.archive.store import open_store
    from evidence.collect import existing_bundle
    from evidence.errors import UsageError
    from evidence.inventory import CanaryLister, canary_list_document, format_canary_table, list_canaries
    from evidence.names import DEFAULT_NAMESPACE, check_namespace

    if all_namespaces and namespace:
        raise UsageError("-A lists every namespace: drop -n, or drop -A to list one namespace")
    source: CanaryLister = _cluster_source(
        dump, kubeconfig, context, request_timeout or 30.0, flagger_namespace, flagger_selector
    )
    ns = None if all_namespaces else check_namespace(namespace or source.default_namespace or DEFAULT_NAMESPACE)
    find: Callable[[str], str | None]
    if is_store_target(out):
        find = open_store(out, endpoint=s3_endpoint).find
    else:

        def find(bundle_id: str) -> str | None:
            path = existing_bundle(Path(out), bundle_id)
            return str(path) if path else None

    rows = list_canaries(source, ns, find_bundle=find, cluster=cluster)
    if output in ("json", "yaml"):
        from evidence.documents import dumps

        click.echo(dumps(canary_list_document(rows, source.describe()), output), nl=False)
        return
    if not rows:
        where = "any namespace" if ns is None else f"namespace {ns}"
        click.echo(f"No canaries found in {where} ({source.describe()}).", err=True)
        return
    click.echo(format_canary_table(rows, wide=output == "wide", all_namespaces=ns is None), nl=False)


cli.add_command(list_, "get")
