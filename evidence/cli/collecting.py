"""``evidence collect``: snapshot one rollout into a verifiable bundle."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from evidence.cli import (
    _COMPRESSION,
    _CONTEXT,
    _FLAGGER_NAMESPACE,
    _FLAGGER_SELECTOR,
    _KUBECONFIG,
    _NAMESPACE,
    _REQUEST_TIMEOUT,
    DURATION,
    TIME,
    _bundles_out_option,
    _canary_ref,
    _cluster_source,
    _flagger_prometheus,
    _prometheus_option,
    _s3_endpoint_option,
    cli,
    handle_errors,
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
@_bundles_out_option("Parent folder for the bundle, or an archive store.")
@_s3_endpoint_option("an s3:// --out")
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
@_COMPRESSION
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
    compression: str,
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
    from evidence.memory import tune_memory
    from evidence.progress import Progress
    from evidence.sources import ClusterSource
    from evidence.sources.prometheus import PrometheusAuth, PrometheusSource, read_token_file

    tune_memory(mmap_arrays=True)  # before the fetch threads start
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
    prom = PrometheusSource(prometheus_url, auth=auth, timeout=timeout, compression=compression)
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
