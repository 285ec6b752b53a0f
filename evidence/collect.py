"""Collect one rollout: what to fetch for it, from sources passed in, into a bundle.

``collect_rollout(ref, cluster, prometheus, options)`` reads the cluster source, finds the
rollout window, fetches the Traefik and Flagger series (raw samples, in chunks, concurrently)
and Flagger's own metric queries at its analysis ticks, and writes the bundle atomically.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from evidence import __version__
from evidence.bundle import SCHEMA, SCHEMA_VERSION, bundle_dirname, bundle_writer
from evidence.canary import CanarySpec, normalise_canary
from evidence.errors import EvidenceError, NotFoundError, PartialError, UsageError
from evidence.events import (
    attach_k8s,
    find_latest_rollout,
    from_log_lines,
    from_webhooks,
    merge_lossless,
    parse_time,
    to_records,
)
from evidence.flagger import promql_string
from evidence.identity import UNKNOWN_CLUSTER, bundle_id_for, rollout_id
from evidence.model import (
    CanaryRef,
    Gap,
    GapKind,
    Manifest,
    ManifestCanary,
    Provenance,
    QueryRecord,
    RolloutSpan,
    Window,
    rfc3339,
)
from evidence.progress import Progress
from evidence.queries import (
    Query,
    build_checks,
    detect_labels,
    empty_hint,
    gaps_in_times,
    plan_queries,
    run_queries,
)
from evidence.redact import Redactions, redact_log_line, redact_object, scrub_text, workload_identity
from evidence.routers import DEFAULT_ROUTER, FLAGGER_NAMESPACE_LABELS, LABEL_NAME
from evidence.samplestream import SampleStream
from evidence.sources import ClusterData, ClusterSource
from evidence.sources.prometheus import MAX_POINTS, PrometheusSource

UTC = dt.UTC
DEFAULT_LEAD = dt.timedelta(minutes=10)
DEFAULT_TAIL = dt.timedelta(minutes=10)
DEFAULT_MAX_WINDOW = dt.timedelta(days=7)
FUTURE_SLACK = dt.timedelta(minutes=5)  # clock skew between this machine and the cluster
_R = TypeVar("_R", QueryRecord, Gap)


@dataclass(frozen=True)
class CollectOptions:
    """What to collect and where to put it."""

    out: Path = Path("bundles")
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    lead: dt.timedelta = DEFAULT_LEAD
    tail: dt.timedelta = DEFAULT_TAIL
    max_window: dt.timedelta = DEFAULT_MAX_WINDOW
    allow_partial: bool = False
    concurrency: int = 4
    lookback: dt.timedelta = dt.timedelta(days=1)
    cluster: str | None = None  # default: the source's cluster name (the kubeconfig context's cluster)
    legal_hold: bool = False  # recorded in the manifest; an S3 store then puts the bundle under legal hold
    service_label: str | None = None  # --service-label: the label Traefik's service is stored under (default: detected)


def decide_window(
    spec: CanarySpec, rows: list[Any], options: CollectOptions, prom: PrometheusSource, now: dt.datetime
) -> tuple[Window, RolloutSpan]:
    """Return the collection window and the latest rollout found in it.

    Without --start/--end the window is the latest rollout widened by the lead and tail; with
    them, the window is theirs and the rollout is the latest one that starts inside it.
    """
    explicit = options.start is not None or options.end is not None
    if explicit:
        if options.start is None:
            raise UsageError("--end without --start: give --start too, or neither to use the latest rollout")
        start, end = options.start, options.end or now
        _check_window(start, end, options)
        found = find_latest_rollout([o for o in rows if start <= o.time <= end])
        lookback = (start, end)
    else:
        found = find_latest_rollout(rows)
        lookback = (now - options.lookback, now)
    rollout = RolloutSpan(None, None, None, False)
    if found is None:
        from_weights = rollout_from_weights(spec, prom, *lookback)
        if from_weights is not None:
            rollout = RolloutSpan(from_weights[0], from_weights[1], "flagger_canary_weight", from_weights[1] is None)
    else:
        rollout = RolloutSpan(found[0], found[1], "events", found[1] is None)
    if explicit:
        return Window(start, end), rollout
    if rollout.start is None:
        raise NotFoundError(
            f"no rollout of canary {spec.ref} found: no 'New revision detected!' event in the cluster's events or "
            f"Flagger's logs, and flagger_canary_weight shows no canary traffic in the last {_human(options.lookback)}; "
            "events expire after 1 h — pass --start and --end to collect a window explicitly"
        )
    start = rollout.start - options.lead
    end = min((rollout.end or now) + options.tail, max(now, rollout.start))
    _check_window(start, end, options)
    return Window(start, end), rollout


def check_options(options: CollectOptions, now: dt.datetime) -> None:
    """Refuse an impossible explicit window or label: the user's mistake, said before touching any service."""
    if options.service_label is not None and not LABEL_NAME.fullmatch(options.service_label):
        raise UsageError(
            f"--service-label {options.service_label!r} is not a Prometheus label name; give the label Traefik's "
            f"service name is stored under, e.g. {' or '.join(DEFAULT_ROUTER.service_labels)}"
        )
    if options.start is None and options.end is None:
        return
    if options.start is None:
        raise UsageError("--end without --start: give --start too, or neither to use the latest rollout")
    if options.start > now + FUTURE_SLACK:
        raise UsageError(
            f"--start {rfc3339(options.start)} is in the future (now is {rfc3339(now)}); nothing can have been recorded yet"
        )
    _check_window(options.start, options.end or now, options)


def _check_window(start: dt.datetime, end: dt.datetime, options: CollectOptions) -> None:
    if start >= end:
        raise UsageError(f"the window starts ({rfc3339(start)}) at or after it ends ({rfc3339(end)}); check --start and --end")
    if end - start > options.max_window:
        raise UsageError(
            f"the window {rfc3339(start)} → {rfc3339(end)} is longer than the limit of {_human(options.max_window)}; "
            "narrow --start/--end or raise --max-window"
        )


def rollout_from_weights(
    spec: CanarySpec, prom: PrometheusSource, start: dt.datetime, end: dt.datetime
) -> tuple[dt.datetime, dt.datetime | None] | None:
    """Find the latest period with canary weight above 0 from Flagger's weight gauge."""
    # Either label form of Flagger's namespace (a scrape without honorLabels renames it): the first that has series.
    nsq, wl = promql_string(spec.ref.namespace), promql_string(spec.target)
    q = " or ".join(f"max(flagger_canary_weight{{{lab}={nsq},workload={wl}}})" for lab in FLAGGER_NAMESPACE_LABELS)
    step = max(15.0, (end - start).total_seconds() / (MAX_POINTS - 1))
    res = prom.range(q, start, end, step)
    points = sorted((float(t), float(v)) for r in res for t, v in r.get("values") or [])
    last_start = last_end = None
    prev = 0.0
    for t, v in points:
        if v > 0 and prev <= 0:
            last_start, last_end = t, None
        if v <= 0 < prev:
            last_end = t
        prev = v
    if last_start is None:
        return None
    s = dt.datetime.fromtimestamp(last_start - spec.interval_s, UTC)
    return s, (dt.datetime.fromtimestamp(last_end, UTC) if last_end else None)


def collect_rollout(
    ref: CanaryRef,
    source: ClusterSource,
    prom: PrometheusSource,
    options: CollectOptions,
    progress: Progress | None = None,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(UTC),
) -> Path:
    """Collect one rollout into a bundle under ``options.out``; return the bundle's path."""
    streams: list[SampleStream] = []
    try:
        return _collect_rollout(ref, source, prom, options, progress, clock, streams)
    finally:
        for stream in streams:  # the samples file moved into the bundle, or the collection failed: drop what is left
            stream.discard()


def _collect_rollout(
    ref: CanaryRef,
    source: ClusterSource,
    prom: PrometheusSource,
    options: CollectOptions,
    progress: Progress | None,
    clock: Callable[[], dt.datetime],
    streams: list[SampleStream],
) -> Path:
    progress = progress or Progress(quiet=True, warnings=False)
    now = clock()
    check_options(options, now)
    progress.say(f"reading {source.describe()}")
    data = source.read(ref)
    view = normalise_canary(data.canary)[0]
    spec = CanarySpec.from_object(data.canary, ref)
    data.warnings.extend(f"Canary {ref}: {w}" for w in spec.warnings)
    progress.say(f"checking Prometheus at {prom.describe()}")
    prom.ping()

    hook_rows = from_webhooks(data.webhook_events)
    log_rows, log_records = from_log_lines(data.log_lines, ref.name, ref.namespace)
    lossless = merge_lossless(hook_rows, log_rows)
    # First pass: date every Kubernetes Event by its latest occurrence to find the rollout.
    probe, _ = attach_k8s([replace(o, sources=list(o.sources)) for o in lossless], data.events, None)
    window, rollout = decide_window(spec, probe, options, prom, now)
    rows, stats = attach_k8s(lossless, data.events, rollout.start or window.start)
    rows = [o for o in rows if window.start <= o.time <= window.end]

    cluster = options.cluster or data.cluster or UNKNOWN_CLUSTER
    last_applied = (view.get("status") or {}).get("lastAppliedSpec")
    rid = rollout_id(
        cluster,
        ref.namespace,
        ref.name,
        rollout.start,
        str(last_applied) if last_applied else None,
        (window.start, window.end),
    )
    bundle_id = bundle_id_for(rid)
    name = bundle_dirname(ref.namespace, ref.name, rollout.start or window.start, bundle_id)
    existing = existing_bundle(Path(options.out), bundle_id)
    if existing is not None:
        progress.done()
        progress.warn(f"a bundle of this rollout is already in {options.out}: {existing} (nothing collected)")
        return existing

    spec = spec.with_templates(data.metric_templates)
    scrape, label_warnings = detect_labels(prom, spec, window, options.service_label)
    queries, plan_warnings = plan_queries(spec, window, rollout.start, scrape)
    plan_warnings = label_warnings + plan_warnings
    sources = _template_sources(prom, queries, plan_warnings)
    stream = SampleStream(Path(options.out), spec, scrape)  # the samples table, written as the chunks arrive
    streams.append(stream)
    # The cluster-side tables are built while Prometheus answers.
    crashed: list[BaseException] = []
    cancel = threading.Event()

    def fetch_all() -> None:
        try:
            run_queries(prom, queries, options.concurrency, progress, cancel, sources, on_raw=stream.add)
        except BaseException as exc:  # re-raised below: a bundle must never look complete without its data
            crashed.append(exc)

    fetch = threading.Thread(target=fetch_all, name="evidence-fetch", daemon=True)
    fetch.start()
    try:
        import pandas as pd

        red = Redactions()
        known = prom.auth.secrets()
        objects = pd.DataFrame(_object_rows(data, red, known), columns=_cols("objects"))
        events = _frame(to_records(rows, red, known), "events", ("time", "k8s_first", "k8s_last"))
        logs = _frame(_log_rows(log_records, window, red, known), "logs", ("time",))
        fetch.join()
    except BaseException:
        # Ctrl-C or SIGTERM: the queued queries are never sent; nothing has been written yet.
        cancel.set()
        raise
    if crashed:
        raise crashed[0]
    # A query Prometheus rejects as invalid is permanent: re-running cannot help, so only the core
    # series (the raw samples) block the bundle; Flagger's re-run checks become recorded gaps.
    failed = [q for q in queries if q.status == "failed" and not (q.invalid and q.kind == "range")]
    if failed and not options.allow_partial:
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
    progress.say("writing the bundle")
    samples_path, series_rows = stream.close(), stream.series_rows
    stream.record_counts(queries)
    if not any(r["metric"] in spec.router.raw_metrics for r in series_rows):
        missing = (
            f"no {spec.router.title} series for {ref} in the window (neither {spec.primary_service} nor {spec.canary_service}): "
            "the bundle would hold no traffic evidence. Likely causes: " + "; ".join(spec.router.no_series_causes)
        )
        if not options.allow_partial:
            progress.done()
            raise PartialError(missing + ". Nothing was written — pass --allow-partial to write the bundle without them")
        plan_warnings.append(missing)
    check_rows = build_checks(queries)

    gaps: list[Gap] = []
    warnings: list[str] = list(data.warnings) + plan_warnings
    for q in queries:
        if q.status == "failed":
            kind = GapKind.QUERY_INVALID if q.invalid else GapKind.QUERY_FAILED
            gaps.extend(Gap(kind, q.id, a, b, err) for a, b, err in q.failed_chunks)
        elif q.status == "empty":
            gaps.append(Gap(GapKind.QUERY_EMPTY, q.id, None, None, empty_hint(q)))
        if q.kind == "range" and q.error:
            warnings.append(f"{q.id}: {q.error}")
    gaps.extend(gaps_in_times(stream.primary_times(), spec.router))
    if spec.apex != spec.target:
        warnings.append(
            f"spec.service.name {spec.apex!r} differs from targetRef {spec.target!r}: Flagger's builtin Traefik queries use the "
            "target and match nothing (flagger#1767); the raw samples were collected by the service name"
        )
    warnings.extend(_event_warnings(rows, stats, data, window))
    # Scrubbed once: the manifest records these and collect prints them.
    warnings = [scrub_text(w, known) for w in warnings]
    gaps = [_scrubbed(g, known) for g in gaps]

    with bundle_writer(Path(options.out), name) as w:
        w.write_table("objects", objects)
        w.write_table("events", events)
        w.write_table("logs", logs)
        w.write_table("series", pd.DataFrame(series_rows, columns=_cols("series")))
        w.adopt_table("samples", samples_path, stream.rows)
        checks = pd.DataFrame(check_rows, columns=_cols("checks"))
        checks["timestamp"] = pd.to_datetime(checks["timestamp"], unit="ms", utc=True)
        w.write_table("checks", checks)
        manifest = Manifest(
            schema=SCHEMA,
            schema_version=SCHEMA_VERSION,
            bundle_id=bundle_id,
            rollout_id=rid,
            cluster={"name": cluster, "from": "--cluster" if options.cluster else "source" if data.cluster else "unknown"},
            canary=ManifestCanary(ref.namespace, ref.name, spec.target, spec.apex, spec.port),
            window=window,
            window_chosen="explicit --start/--end"
            if options.start or options.end
            else f"latest rollout, widened by lead {_human(options.lead)} and tail {_human(options.tail)}",
            rollout=rollout,
            interval_seconds=spec.interval_s,
            threshold=spec.threshold,
            collected_at=now,
            tool={"name": "evidence", "version": __version__},
            sources=Provenance(
                kubernetes={"kind": data.source_kind, "location": data.source},
                prometheus={"url": prom.describe(), "auth": prom.auth.kinds(), "headers": sorted(prom.auth.headers)},
                events={
                    "webhook": len(hook_rows),
                    "log": len(log_rows),
                    "kubernetes": stats["k8s_events"],
                    "kubernetes_only_rows": stats["k8s_only"],
                },
                labels=scrape,
                router=spec.router.name,
            ),
            queries=tuple(_scrubbed(q.record(), known) for q in queries),
            gaps=tuple(gaps),
            warnings=tuple(warnings),
            redaction=red.record(),
            counts={
                "objects": len(objects),
                "events": len(events),
                "log_lines": len(logs),
                "series": len(series_rows),
                "samples": stream.rows,
                "checks": len(check_rows),
            },
            legal_hold=options.legal_hold,
            files={},
            self_sha256=None,
            extra={},
        )
        from evidence.archive.summary import write_archive_files

        write_archive_files(w, manifest)  # the ledger's summary row and SHA256SUMS, listed in the manifest
        path = w.commit(manifest)
    progress.done()
    announce(progress, warnings, gaps)
    return path


#: At most this many warnings and gaps are printed; the manifest keeps them all.
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


def _human(d: dt.timedelta) -> str:
    secs = int(d.total_seconds())
    h, rest = divmod(secs, 3600)
    m, s = divmod(rest, 60)
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v) or "0s"


def _cols(table: str) -> list[str]:
    from evidence.bundle import SCHEMAS

    return [c for c, _, _ in SCHEMAS[table]]


def _frame(rows: list[dict[str, Any]], table: str, time_cols: tuple[str, ...]) -> Any:
    import pandas as pd

    df = pd.DataFrame(rows, columns=_cols(table))
    for c in time_cols:
        # Bundles keep milliseconds: MicroTime (events.k8s.io eventTime) and receivers may carry more.
        df[c] = pd.to_datetime(df[c], utc=True).dt.floor("ms")
    for c in ("k8s_count", "weight", "failed_checks"):
        if c in df.columns:
            df[c] = df[c].astype("Int64")
    for c in ("value", "threshold"):
        if c in df.columns:
            df[c] = df[c].astype("float64")
    for c in ("aggregated", "cross_rollout"):
        if c in df.columns:
            df[c] = df[c].astype(bool)
    return df


def _scrubbed(record: _R, known: tuple[str, ...]) -> _R:
    """Return a manifest record with every string scrubbed (server error texts may echo credentials)."""
    changes: dict[str, Any] = {
        f.name: scrub_text(v, known) for f in fields(record) if isinstance(v := getattr(record, f.name), str)
    }
    if isinstance(record, QueryRecord):
        changes["extra"] = {k: scrub_text(v, known) if isinstance(v, str) else v for k, v in record.extra.items()}
    return replace(record, **changes)


def _log_rows(records: list[dict[str, Any]], window: Window, red: Redactions, known: tuple[str, ...]) -> list[dict[str, Any]]:
    """Return the logs table's rows inside the window: message scrubbed, raw re-serialised with secret fields redacted."""
    rows = []
    for i, r in enumerate(records):
        if not window.start <= r["time"] <= window.end:
            continue
        raw = redact_log_line(r["raw"], known)
        if raw != r["raw"]:
            red.add("logs", f"{i}.raw", "redacted")
        rows.append(dict(r, message=red.text("logs", f"{i}.message", r["message"], known), raw=red.text("logs", f"{i}.raw", raw)))
    return rows


def _object_rows(data: ClusterData, red: Redactions, known: tuple[str, ...]) -> list[dict[str, Any]]:
    items: list[tuple[str, dict[str, Any]]] = [("canary", data.canary)]
    items += [("metric-template", o) for o in data.metric_templates]
    items += [("alert-provider", o) for o in data.alert_providers]
    items += [("traefik-service", o) for o in data.traefik_services]
    target = str((normalise_canary(data.canary)[0]["spec"]["targetRef"]).get("name"))
    for o in data.workloads:
        role = "workload-primary" if (o.get("metadata") or {}).get("name") == f"{target}-primary" else "workload-canary"
        items.append((role, workload_identity(o)))
    rows = []
    for role, obj in items:
        clean, paths = redact_object(obj, known)
        meta = clean.get("metadata") or {}
        for path in paths:
            red.add("objects", f"{clean.get('kind')} {meta.get('namespace')}/{meta.get('name')}: {path}", "redacted")
        rows.append(
            {
                "kind": str(clean.get("kind", "")),
                "api_version": str(clean.get("apiVersion", "")),
                "namespace": meta.get("namespace"),
                "name": meta.get("name"),
                "role": role,
                "source": data.source_kind,
                "redacted": paths,
                "body": json.dumps(clean, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
            }
        )
    return rows


def _event_warnings(rows: list[Any], stats: dict[str, int], data: ClusterData, window: Window) -> list[str]:
    out = []
    lossless = {"webhook", "log"}
    has_lossless = any(lossless & set(o.sources) for o in rows)
    if not rows:
        out.append(
            "no Flagger events in the window: Kubernetes expires Events after 1 h (--event-ttl); "
            "collect Flagger's logs or run the event-webhook receiver to keep them"
        )
    elif not has_lossless:
        out.append(
            "events come only from the Kubernetes Events API, which aggregates, drops and expires Flagger's events "
            "(client-go spam filter: 25 then 1 per 5 min; TTL 1 h): the timeline may have holes"
        )
    if stats["aggregated"]:
        out.append(
            f"{stats['aggregated']} Kubernetes Event(s) were '(combined from similar events)': only their latest message is known"
        )
    if stats["cross_rollout"]:
        out.append(f"{stats['cross_rollout']} Kubernetes Event(s) were deduplicated with an earlier rollout (old firstTimestamp)")
    status = normalise_canary(data.canary)[0].get("status") or {}
    changed = parse_time(status.get("lastTransitionTime"))
    failed_here = status.get("phase") == "Failed" and changed is not None and window.start <= changed <= window.end
    if failed_here and not any(o.message.startswith("Canary failed!") for o in rows):
        out.append("the Canary turned Failed inside the window but no 'Canary failed!' event is in the record: events look lost")
    return out
