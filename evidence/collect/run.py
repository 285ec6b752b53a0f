"""Collect one rollout: read the cluster, fetch from Prometheus while the cluster tables are built, write the bundle.

``collect_rollout`` runs the phases in order; each is a function here, so each can fail in
one place with its own message, and a bundle is written only when every phase has passed.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from evidence import __version__
from evidence.bundle import SCHEMA, SCHEMA_VERSION, bundle_dirname, bundle_writer
from evidence.canary import CanarySpec, normalise_canary
from evidence.collect.tables import arrow_rows, event_warnings, log_rows, object_rows, scrubbed
from evidence.collect.window import UTC, CollectOptions, check_options, decide_window, human
from evidence.errors import EvidenceError, PartialError
from evidence.events import Occurrence, attach_k8s, from_log_lines, from_webhooks, merge_lossless, to_records
from evidence.identity import UNKNOWN_CLUSTER, bundle_id_for, rollout_id
from evidence.model import (
    CanaryRef,
    Gap,
    GapKind,
    Manifest,
    ManifestCanary,
    Provenance,
    RolloutSpan,
    ScrapeLabels,
    Window,
    rfc3339,
)
from evidence.progress import Progress
from evidence.queries import Query, build_checks, detect_labels, empty_hint, gaps_in_times, plan_queries, run_queries
from evidence.redact import Redactions, scrub_text
from evidence.samplestream import SampleStream, parse_raw
from evidence.sources import ClusterData, ClusterSource
from evidence.sources.prometheus import PrometheusSource


@dataclass
class _Found:
    """What the cluster side says: the Canary, the window, the rollout in it and Flagger's events."""

    data: ClusterData
    spec: CanarySpec
    window: Window
    rollout: RolloutSpan
    rows: list[Occurrence]
    stats: dict[str, int]
    webhook_events: int
    log_events: int
    log_records: list[dict[str, Any]]
    last_applied: str | None


@dataclass
class _Ids:
    cluster: str
    rollout_id: str
    bundle_id: str
    name: str  # the bundle folder's


@dataclass
class _Tables:
    """The cluster-side tables, redacted, built while Prometheus answers."""

    objects: Any
    events: Any
    logs: Any
    red: Redactions
    known: tuple[str, ...]


def collect_rollout(
    ref: CanaryRef,
    source: ClusterSource,
    prom: PrometheusSource,
    options: CollectOptions,
    progress: Progress | None = None,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(UTC),
) -> Path:
    """Collect one rollout into a bundle under ``options.out``; return the bundle's path."""
    progress = progress or Progress(quiet=True, warnings=False)
    now = clock()
    check_options(options, now)
    found = _read_cluster(ref, source, prom, options, progress, now)
    ids = _ids(ref, found, options)
    existing = existing_bundle(Path(options.out), ids.bundle_id)
    if existing is not None:
        progress.done()
        progress.warn(f"a bundle of this rollout is already in {options.out}: {existing} (nothing collected)")
        return existing
    spec = found.spec = found.spec.with_templates(found.data.metric_templates)
    scrape, label_warnings = detect_labels(prom, spec, found.window, options.service_label)
    queries, plan_warnings = plan_queries(spec, found.window, found.rollout.start, scrape)
    warnings = list(found.data.warnings) + label_warnings + plan_warnings
    sources = _template_sources(prom, queries, warnings)
    stream = SampleStream(Path(options.out), spec, scrape)  # the samples table, written as the chunks arrive
    try:
        tables = _fetch(prom, queries, sources, stream, found, options, progress)
        _refuse_failed(queries, options, progress)
        progress.say("writing the bundle")
        samples_path = stream.close()
        stream.record_counts(queries)
        _refuse_no_traffic(ref, spec, stream.series_rows, options, progress, warnings)
        check_rows = build_checks(queries)
        gaps, warnings = _losses(queries, stream, found, warnings, tables.known)
        with bundle_writer(Path(options.out), ids.name) as w:
            w.write_table("objects", tables.objects)
            w.write_table("events", tables.events)
            w.write_table("logs", tables.logs)
            w.write_table("series", arrow_rows(stream.series_rows, "series"))
            w.adopt_table("samples", samples_path, stream.rows)
            w.write_table("checks", arrow_rows(check_rows, "checks"))  # timestamps in epoch ms
            counts = {"objects": tables.objects.num_rows, "events": tables.events.num_rows, "log_lines": tables.logs.num_rows}
            counts |= {"series": len(stream.series_rows), "samples": stream.rows, "checks": len(check_rows)}
            manifest = _manifest(ref, found, ids, options, prom, now, scrape, queries, (gaps, warnings), tables, counts)
            from evidence.archive.summary import write_archive_files

            write_archive_files(w, manifest)  # the ledger's summary row and SHA256SUMS, listed in the manifest
            path = w.commit(manifest)
    finally:
        stream.discard()  # the samples file moved into the bundle, or the collection failed: drop what is left
    progress.done()
    announce(progress, warnings, gaps)
    return path


def _read_cluster(
    ref: CanaryRef, source: ClusterSource, prom: PrometheusSource, options: CollectOptions, progress: Progress, now: dt.datetime
) -> _Found:
    """Read the cluster side, check Prometheus answers, and find the window and the rollout in it."""
    progress.say(f"reading {source.describe()}")
    data = source.read(ref)
    view = normalise_canary(data.canary)[0]
    spec = CanarySpec.from_object(data.canary, ref)
    data.warnings.extend(f"Canary {ref}: {w}" for w in spec.warnings)
    progress.say(f"checking Prometheus at {prom.describe()}")
    prom.ping()
    hook_rows = from_webhooks(data.webhook_events)
    log_occ, log_records = from_log_lines(data.log_lines, ref.name, ref.namespace)
    lossless = merge_lossless(hook_rows, log_occ)
    # First pass: date every Kubernetes Event by its latest occurrence to find the rollout.
    probe, _ = attach_k8s([replace(o, sources=list(o.sources)) for o in lossless], data.events, None)
    window, rollout = decide_window(spec, probe, options, prom, now)
    rows, stats = attach_k8s(lossless, data.events, rollout.start or window.start)
    rows = [o for o in rows if window.start <= o.time <= window.end]
    last_applied = (view.get("status") or {}).get("lastAppliedSpec")
    return _Found(
        data,
        spec,
        window,
        rollout,
        rows,
        stats,
        len(hook_rows),
        len(log_occ),
        log_records,
        str(last_applied) if last_applied else None,
    )


def _ids(ref: CanaryRef, found: _Found, options: CollectOptions) -> _Ids:
    cluster = options.cluster or found.data.cluster or UNKNOWN_CLUSTER
    window, start = found.window, found.rollout.start
    rid = rollout_id(cluster, ref.namespace, ref.name, start, found.last_applied, (window.start, window.end))
    bundle_id = bundle_id_for(rid)
    return _Ids(cluster, rid, bundle_id, bundle_dirname(ref.namespace, ref.name, start or window.start, bundle_id))


def _fetch(
    prom: PrometheusSource,
    queries: list[Query],
    sources: dict[str, PrometheusSource],
    stream: SampleStream,
    found: _Found,
    options: CollectOptions,
    progress: Progress,
) -> _Tables:
    """Run the queries in a thread while the cluster-side tables are built here; return the tables."""
    crashed: list[BaseException] = []
    cancel = threading.Event()

    def fetch_all() -> None:
        try:
            run_queries(
                prom, queries, options.concurrency, progress, cancel, sources, on_raw=stream.add_parsed, parse_raw=parse_raw
            )
        except BaseException as exc:  # re-raised below: a bundle must never look complete without its data
            crashed.append(exc)

    fetch = threading.Thread(target=fetch_all, name="evidence-fetch", daemon=True)
    fetch.start()
    try:
        # The summary's evaluation needs pandas: imported while Prometheus answers (the threads wait on sockets).
        import pandas  # noqa: F401

        red = Redactions()
        known = prom.auth.secrets()
        objects = arrow_rows(object_rows(found.data, red, known), "objects")
        events = arrow_rows(to_records(found.rows, red, known), "events")
        logs = arrow_rows(log_rows(found.log_records, found.window, red, known), "logs")
        fetch.join()
    except BaseException:
        # Ctrl-C or SIGTERM: the queued queries are never sent; nothing has been written yet.
        cancel.set()
        raise
    if crashed:
        raise crashed[0]
    return _Tables(objects, events, logs, red, known)


def _refuse_failed(queries: list[Query], options: CollectOptions, progress: Progress) -> None:
    """Refuse to write a bundle whose core series failed (unless --allow-partial)."""
    # A query Prometheus rejects as invalid is permanent: re-running cannot help, so only the core
    # series (the raw samples) block the bundle; Flagger's re-run checks become recorded gaps.
    failed = [q for q in queries if q.status == "failed" and not (q.invalid and q.kind == "range")]
    if not failed or options.allow_partial:
        return
    progress.done()
    first = failed[0]
    again = (
        "re-run, or"
        if not all(q.invalid for q in failed)
        else "the query is invalid for this Prometheus (re-running will not help);"
    )
    raise PartialError(
        f"{len(failed)} of {len(queries)} Prometheus queries failed (first: {first.id}: {first.error}); "
        f"nothing was written — {again} pass --allow-partial to write the bundle with these gaps recorded"
    )


def _refuse_no_traffic(
    ref: CanaryRef,
    spec: CanarySpec,
    series_rows: list[dict[str, Any]],
    options: CollectOptions,
    progress: Progress,
    warnings: list[str],
) -> None:
    """Refuse a bundle with no router series at all (unless --allow-partial: then it is a warning)."""
    if any(r["metric"] in spec.router.raw_metrics for r in series_rows):
        return
    missing = (
        f"no {spec.router.title} series for {ref} in the window (neither {spec.primary_service} nor {spec.canary_service}): "
        "the bundle would hold no traffic evidence. Likely causes: " + "; ".join(spec.router.no_series_causes)
    )
    if not options.allow_partial:
        progress.done()
        raise PartialError(missing + ". Nothing was written — pass --allow-partial to write the bundle without them")
    warnings.append(missing)


def _losses(
    queries: list[Query], stream: SampleStream, found: _Found, warnings: list[str], known: tuple[str, ...]
) -> tuple[list[Gap], list[str]]:
    """Return the bundle's gaps and warnings: what failed, came back empty or is missing, scrubbed once."""
    gaps: list[Gap] = []
    warnings = list(warnings)
    for q in queries:
        if q.status == "failed":
            kind = GapKind.QUERY_INVALID if q.invalid else GapKind.QUERY_FAILED
            gaps.extend(Gap(kind, q.id, a, b, err) for a, b, err in q.failed_chunks)
        elif q.status == "empty":
            gaps.append(Gap(GapKind.QUERY_EMPTY, q.id, None, None, empty_hint(q)))
        if q.kind == "range" and q.error:
            warnings.append(f"{q.id}: {q.error}")
    spec = found.spec
    gaps.extend(gaps_in_times(stream.primary_times(), spec.router))
    if spec.apex != spec.target:
        warnings.append(
            f"spec.service.name {spec.apex!r} differs from targetRef {spec.target!r}: Flagger's builtin Traefik queries use the "
            "target and match nothing (flagger#1767); the raw samples were collected by the service name"
        )
    warnings.extend(event_warnings(found.rows, found.stats, found.data, found.window))
    # Scrubbed once: the manifest records these and collect prints them.
    return [scrubbed(g, known) for g in gaps], [scrub_text(w, known) for w in warnings]


def _manifest(
    ref: CanaryRef,
    found: _Found,
    ids: _Ids,
    options: CollectOptions,
    prom: PrometheusSource,
    now: dt.datetime,
    scrape: ScrapeLabels,
    queries: list[Query],
    losses: tuple[list[Gap], list[str]],
    tables: _Tables,
    counts: dict[str, int],
) -> Manifest:
    """Return the bundle's manifest."""
    spec, data = found.spec, found.data
    gaps, warnings = losses
    return Manifest(
        schema=SCHEMA,
        schema_version=SCHEMA_VERSION,
        bundle_id=ids.bundle_id,
        rollout_id=ids.rollout_id,
        cluster={"name": ids.cluster, "from": "--cluster" if options.cluster else "source" if data.cluster else "unknown"},
        canary=ManifestCanary(ref.namespace, ref.name, spec.target, spec.apex, spec.port),
        window=found.window,
        window_chosen="explicit --start/--end"
        if options.start or options.end
        else f"latest rollout, widened by lead {human(options.lead)} and tail {human(options.tail)}",
        rollout=found.rollout,
        interval_seconds=spec.interval_s,
        threshold=spec.threshold,
        collected_at=now,
        tool={"name": "evidence", "version": __version__},
        sources=Provenance(
            kubernetes={"kind": data.source_kind, "location": data.source},
            prometheus={"url": prom.describe(), "auth": prom.auth.kinds(), "headers": sorted(prom.auth.headers)},
            events={
                "webhook": found.webhook_events,
                "log": found.log_events,
                "kubernetes": found.stats["k8s_events"],
                "kubernetes_only_rows": found.stats["k8s_only"],
            },
            labels=scrape,
            router=spec.router.name,
        ),
        queries=tuple(scrubbed(q.record(), tables.known) for q in queries),
        gaps=tuple(gaps),
        warnings=tuple(warnings),
        redaction=tables.red.record(),
        counts=counts,
        legal_hold=options.legal_hold,
        files={},
        self_sha256=None,
        extra={},
    )


MAX_ANNOUNCED = 25


def _template_sources(prom: PrometheusSource, queries: list[Query], warnings: list[str]) -> dict[str, PrometheusSource]:
    """Return a source per MetricTemplate ``provider.address`` that differs from --prometheus and answers.

    An address that does not answer from here (an in-cluster name, usually) is warned about,
    and its checks go to --prometheus: often the same Prometheus, port-forwarded.
    """
    out: dict[str, PrometheusSource] = {}
    for address in sorted({q.address for q in queries if q.address and q.address != prom.url.rstrip("/")}):
        names = ", ".join(sorted(str(q.metric) for q in queries if q.address == address))
        try:
            other = prom.at(address)
            other.ping()
        except EvidenceError as exc:
            warnings.append(
                f"metric {names}: its MetricTemplate's provider.address {address} did not answer from here ({exc}); "
                f"the check was queried at --prometheus {prom.url} instead — pass that Prometheus as --prometheus if it differs"
            )
            continue
        out[address] = other
    return out


def announce(progress: Progress, warnings: list[str], gaps: list[Gap]) -> None:
    """Print the bundle's warnings and gaps as ``Warning: …`` lines (also with -q): loss is never silent."""
    lines = list(warnings)
    for g in gaps:
        what = f"gap ({g.kind})" + (f" in {g.query}" if g.query else "")
        span = f" from {rfc3339(g.start)} to {rfc3339(g.end)}" if g.start and g.end else ""
        lines.append(f"{what}{span}" + (f": {g.detail}" if g.detail else ""))
    for line in lines[:MAX_ANNOUNCED]:
        progress.warn(line)
    if len(lines) > MAX_ANNOUNCED:
        progress.warn(f"and {len(lines) - MAX_ANNOUNCED} more warnings and gaps: see the manifest's warnings and gaps")


def existing_bundle(out: Path, bundle_id: str) -> Path | None:
    """Return the bundle folder under ``out`` that already holds ``bundle_id``, if any."""
    if not out.is_dir():
        return None
    for p in sorted(out.glob(f"*_{bundle_id[:8]}")):
        mpath = p / "manifest.json"
        if not p.name.startswith(".") and mpath.is_file():
            try:
                if json.loads(mpath.read_text(encoding="utf-8")).get("bundle_id") == bundle_id:
                    return p
            except (OSError, ValueError, AttributeError):
                continue
    return None
