"""Collect one rollout: what to fetch for it, from sources passed in, into a bundle.

``collect_rollout(ref, cluster, prometheus, options)`` reads the cluster source, finds the
rollout window, fetches the Traefik and Flagger series (raw samples, in chunks, concurrently)
and Flagger's own metric queries at its analysis ticks, and writes the bundle atomically.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import math
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

from evidence import __version__
from evidence.bundle import SCHEMA, SCHEMA_VERSION, bundle_dirname, bundle_writer
from evidence.errors import NotFoundError, PartialError, PrometheusError, UsageError
from evidence.events import (
    attach_k8s,
    find_latest_rollout,
    from_log_lines,
    from_webhooks,
    merge_lossless,
    to_records,
)
from evidence.flagger import BUILTIN_QUERIES, TemplateError, promql_string, re2_escape, render_query
from evidence.model import CanaryRef, Window, rfc3339
from evidence.redact import redact_object, scrub_text, workload_identity
from evidence.sources import ClusterData, ClusterSource
from evidence.sources.prometheus import MAX_POINTS, PrometheusSource, range_chunks

UTC = dt.UTC
DEFAULT_LEAD = dt.timedelta(minutes=10)
DEFAULT_TAIL = dt.timedelta(minutes=10)
DEFAULT_MAX_WINDOW = dt.timedelta(days=7)
RAW_CHUNK = dt.timedelta(hours=2)
TRAEFIK_METRICS = (
    "traefik_service_requests_total",
    "traefik_service_request_duration_seconds_bucket",
    "traefik_service_request_duration_seconds_sum",
    "traefik_service_request_duration_seconds_count",
)


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


@dataclass(frozen=True)
class CanarySpec:
    """What collection needs to know from the Canary's spec."""

    ref: CanaryRef
    target: str
    apex: str
    port: int | None
    interval_s: float
    interval_text: str
    threshold: int
    metrics: list[dict[str, Any]]


def parse_duration(text: str) -> float:
    """Parse a Kubernetes/Go duration like 1m, 30s, 1m30s into seconds; raise ValueError."""
    import re

    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text or "")
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(text)
    return sum(float(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[u] for n, u in parts)


def canary_spec(ref: CanaryRef, canary: dict[str, Any]) -> CanarySpec:
    """Read the fields collection needs, with Flagger's defaults (reference §1.4)."""
    spec = canary.get("spec") or {}
    analysis = spec.get("analysis") or spec.get("canaryAnalysis") or {}
    target = str((spec.get("targetRef") or {}).get("name") or ref.name)
    service = spec.get("service") or {}
    apex = str(service.get("name") or target)
    port = service.get("port")
    itext = str(analysis.get("interval") or "60s")
    try:
        interval = max(10.0, parse_duration(itext))
    except ValueError:
        interval = 60.0
    threshold = int(analysis.get("threshold") or 0)
    return CanarySpec(
        ref=ref,
        target=target,
        apex=apex,
        port=int(port) if isinstance(port, int) else None,
        interval_s=interval,
        interval_text=itext,
        threshold=threshold if threshold > 0 else 1,
        metrics=[m for m in analysis.get("metrics") or [] if isinstance(m, dict)],
    )


class Progress:
    """A one-line progress display on stderr; silent when quiet or not a terminal."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.enabled = not quiet and self.stream.isatty()
        self._lock = threading.Lock()
        self._last = 0.0

    def say(self, text: str, force: bool = True) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        with self._lock:
            if not force and now - self._last < 0.1:
                return
            self._last = now
            self.stream.write("\r\033[K" + text[:200])
            self.stream.flush()

    def done(self) -> None:
        if self.enabled:
            self.stream.write("\r\033[K")
            self.stream.flush()


@dataclass
class Query:
    """One PromQL query of the plan and what became of it."""

    id: str
    purpose: str
    promql: str
    kind: str  # "raw" (range selector at chunk ends) | "range" (query_range)
    start: dt.datetime
    end: dt.datetime
    step_s: float | None = None
    metric: str | None = None
    threshold_min: float | None = None
    threshold_max: float | None = None
    unit: str | None = None
    status: str = "pending"
    error: str | None = None
    chunks: int = 0
    series: int = 0
    samples: int = 0
    seconds: float = 0.0
    results: list[dict[str, Any]] = field(default_factory=list)

    def manifest(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "purpose": self.purpose,
            "query": self.promql,
            "kind": self.kind,
            "start": rfc3339(self.start),
            "end": rfc3339(self.end),
            "status": self.status,
            "chunks": self.chunks,
            "series": self.series,
            "samples": self.samples,
            "seconds": round(self.seconds, 3),
        }
        if self.step_s is not None:
            out["step_seconds"] = self.step_s
        if self.metric is not None:
            out["metric"] = self.metric
        if self.error:
            out["error"] = self.error
        return out


def plan_queries(spec: CanarySpec, window: Window, rollout_start: dt.datetime | None) -> tuple[list[Query], list[str]]:
    """Return the queries to run for a rollout window, and warnings about the plan."""
    warnings: list[str] = []
    ns = spec.ref.namespace
    port = str(spec.port) if spec.port is not None else "[0-9a-zA-Z-]+"
    svc_re = f"{re2_escape(ns)}-{re2_escape(spec.apex)}-(primary|canary)-{port}@kubernetescrd"
    selector = "{service=~" + promql_string(svc_re) + "}"
    qs: list[Query] = []
    for raw_metric in TRAEFIK_METRICS:
        qs.append(
            Query(
                f"raw:{raw_metric}",
                f"raw samples of {raw_metric} for the primary and canary services",
                raw_metric + selector,
                "raw",
                window.start,
                window.end,
            )
        )
    wl = promql_string(f"{re2_escape(spec.target)}|{re2_escape(spec.target)}-primary")
    nsq = promql_string(ns)
    tgt = promql_string(spec.target)
    qs.append(
        Query(
            "raw:flagger_canary_weight",
            "Flagger's weights (canary and primary)",
            f"flagger_canary_weight{{namespace={nsq},workload=~{wl}}}",
            "raw",
            window.start,
            window.end,
        )
    )
    qs.append(
        Query(
            "raw:flagger_canary_status",
            "Flagger's status gauge",
            f"flagger_canary_status{{namespace={nsq},name={tgt}}}",
            "raw",
            window.start,
            window.end,
        )
    )
    qs.append(
        Query(
            "raw:flagger_canary_metric_analysis",
            "Flagger's last analysis value per metric",
            f"flagger_canary_metric_analysis{{namespace={nsq},name={tgt}}}",
            "raw",
            window.start,
            window.end,
        )
    )
    # Flagger's own checks, evaluated at its analysis ticks (aligned to the rollout start).
    step = spec.interval_s
    anchor = rollout_start or window.start
    k = math.ceil((window.start - anchor).total_seconds() / step)
    first_tick = anchor + dt.timedelta(seconds=k * step)
    model: dict[str, str] = {
        "name": spec.ref.name,
        "namespace": ns,
        "target": spec.target,
        "service": spec.apex,
        "ingress": spec.target,
        "route": spec.target,
    }
    for m in spec.metrics:
        mname = str(m.get("name", ""))
        itext = str(m.get("interval") or "1m")
        tr = m.get("thresholdRange") or {}
        lo = tr.get("min")
        hi = tr.get("max")
        if m.get("threshold") is not None and lo is None and hi is None:
            # Legacy `threshold`: a minimum for the success rate, a maximum otherwise.
            if mname == "request-success-rate":
                lo = m["threshold"]
            else:
                hi = m["threshold"]
        variables = {str(k2): str(v) for k2, v in (m.get("templateVariables") or {}).items()}
        template = None
        if mname in BUILTIN_QUERIES and not m.get("templateRef") and not m.get("query"):
            template = BUILTIN_QUERIES[mname]
        elif m.get("query"):
            template = str(m["query"])
        elif m.get("templateRef"):
            template = m.get("_template_query")
            if template is None:
                warnings.append(f"metric {mname}: its MetricTemplate was not collected, so Flagger's query cannot be re-run")
                continue
        else:
            warnings.append(f"metric {mname}: neither builtin, inline query nor templateRef; skipped")
            continue
        try:
            promql = render_query(str(template), dict(model, interval=itext), variables)
        except TemplateError as exc:
            warnings.append(f"metric {mname}: Flagger's template does not render ({exc}); Flagger itself would fail this check")
            continue
        unit = "percent" if mname == "request-success-rate" else "ms" if mname == "request-duration" else None
        qs.append(
            Query(
                f"check:{mname}",
                f"Flagger's check {mname} at each analysis tick (every {spec.interval_text})",
                promql,
                "range",
                first_tick,
                window.end,
                step_s=step,
                metric=mname,
                threshold_min=float(lo) if lo is not None else None,
                threshold_max=float(hi) if hi is not None else None,
                unit=unit,
            )
        )
    return qs, warnings


def run_queries(prom: PrometheusSource, queries: list[Query], concurrency: int, progress: Progress) -> None:
    """Run every query's chunks concurrently; record status, counts and errors on each query."""
    tasks: list[tuple[Query, dt.datetime, dt.datetime]] = []
    for q in queries:
        if q.kind == "raw":
            t = q.start
            while t < q.end:
                e = min(q.end, t + RAW_CHUNK)
                tasks.append((q, t, e))
                t = e
        else:
            assert q.step_s is not None
            for s0, e0 in range_chunks(q.start.timestamp(), q.end.timestamp(), q.step_s, MAX_POINTS):
                tasks.append((q, dt.datetime.fromtimestamp(s0, UTC), dt.datetime.fromtimestamp(e0, UTC)))
        q.chunks = sum(1 for task in tasks if task[0] is q)
    done = 0
    lock = threading.Lock()

    def one(task: tuple[Query, dt.datetime, dt.datetime]) -> tuple[Query, list[dict[str, Any]] | None, str | None, float]:
        q, s, e = task
        t0 = time.monotonic()
        try:
            if q.kind == "raw":
                secs = max(1, math.ceil((e - s).total_seconds()))
                res = prom.instant(f"{q.promql}[{secs}s]", e)
            else:
                assert q.step_s is not None
                res = prom.range(q.promql, s, e, q.step_s)
            return q, res, None, time.monotonic() - t0
        except PrometheusError as exc:
            return q, None, str(exc), time.monotonic() - t0

    progress.say(f"prometheus: 0/{len(tasks)} queries")
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        for q, res, err, secs in pool.map(one, tasks):
            with lock:
                done += 1
                q.seconds += secs
                if err is not None:
                    q.status = "failed"
                    q.error = q.error or err
                elif res is not None:
                    q.results.extend(res)
            progress.say(f"prometheus: {done}/{len(tasks)} queries", force=False)
    for q in queries:
        if q.status != "failed":
            q.status = "ok" if q.results else "empty"


def _role(metric: str, labels: dict[str, str], spec: CanarySpec) -> str:
    if metric.startswith("flagger_"):
        return "flagger"
    svc = labels.get("service", "")
    return "canary" if f"-{spec.apex}-canary-" in svc else "primary"


def build_series(queries: list[Query], spec: CanarySpec) -> tuple[list[dict[str, Any]], Any]:
    """Turn raw query results into series rows and a samples frame, deduplicated by (series, time)."""
    import numpy as np
    import pandas as pd

    series_rows: list[dict[str, Any]] = []
    ids: dict[str, int] = {}
    parts_sid: list[Any] = []
    parts_ts: list[Any] = []
    parts_v: list[Any] = []
    for q in queries:
        if q.kind != "raw":
            continue
        for r in q.results:
            labels = {str(k): str(v) for k, v in (r.get("metric") or {}).items()}
            metric = labels.pop("__name__", q.promql.split("{", 1)[0])
            key = json.dumps([metric, sorted(labels.items())])
            sid = ids.get(key)
            if sid is None:
                sid = len(series_rows)
                ids[key] = sid
                series_rows.append(
                    {
                        "series_id": sid,
                        "metric": metric,
                        "role": _role(metric, labels, spec),
                        "service": labels.get("service"),
                        "code": labels.get("code"),
                        "le": labels.get("le"),
                        "labels": json.dumps(dict(sorted(labels.items())), separators=(",", ":")),
                        "query_id": q.id,
                    }
                )
            values = r.get("values") or []
            if not values:
                continue
            arr = np.asarray(values, dtype=object)
            parts_ts.append(np.rint(arr[:, 0].astype(np.float64) * 1000).astype(np.int64))
            parts_v.append(arr[:, 1].astype(np.float64))
            parts_sid.append(np.full(len(values), sid, dtype=np.int32))
    if parts_sid:
        frame = pd.DataFrame(
            {"series_id": np.concatenate(parts_sid), "timestamp": np.concatenate(parts_ts), "value": np.concatenate(parts_v)}
        )
    else:
        frame = pd.DataFrame(
            {"series_id": np.array([], np.int32), "timestamp": np.array([], np.int64), "value": np.array([], np.float64)}
        )
    # Chunks overlap by their boundary sample (Prometheus 2.x ranges are closed): dedupe by time.
    frame = frame.drop_duplicates(["series_id", "timestamp"], keep="last").sort_values(["series_id", "timestamp"], kind="stable")
    frame = frame.reset_index(drop=True)
    counts = frame.groupby("series_id").size()
    for q in queries:
        if q.kind == "raw":
            sids = [row["series_id"] for row in series_rows if row["query_id"] == q.id]
            q.series = len(sids)
            q.samples = int(counts.reindex(sids).fillna(0).sum()) if sids else 0
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], unit="ms", utc=True)
    return series_rows, frame


def build_checks(queries: list[Query]) -> list[dict[str, Any]]:
    """Return rows of the checks table from Flagger's re-run queries."""
    rows = []
    for q in queries:
        if q.kind != "range":
            continue
        n = 0
        for r in q.results:
            for ts, v in r.get("values") or []:
                value = float(v)
                if q.metric == "request-duration" and not math.isnan(value):
                    value = float(int(value))  # Flagger truncates to whole milliseconds
                rows.append(
                    {
                        "metric": q.metric,
                        "query_id": q.id,
                        "timestamp": round(float(ts) * 1000),
                        "value": value,
                        "threshold_min": q.threshold_min,
                        "threshold_max": q.threshold_max,
                    }
                )
                n += 1
        q.samples = n
        q.series = len(q.results)
        if len(q.results) > 1:
            q.error = f"returned {len(q.results)} series; Flagger would fail with 'query returned multiple values'"
    return rows


def scrape_gaps(series_rows: list[dict[str, Any]], samples: Any, window: Window) -> list[dict[str, Any]]:
    """Find holes in the Traefik primary series longer than twice the usual scrape interval."""
    wanted = [r["series_id"] for r in series_rows if r["metric"] == "traefik_service_requests_total" and r["role"] == "primary"]
    if not wanted:
        return []
    times = sorted({int(t.timestamp() * 1000) for t in samples.loc[samples["series_id"].isin(wanted), "timestamp"]})
    if len(times) < 3:
        return []
    deltas = [b - a for a, b in itertools.pairwise(times)]
    usual = statistics.median(deltas)
    gaps = []
    for a, b in itertools.pairwise(times):
        if b - a > 2 * usual:
            gaps.append(
                {
                    "kind": "scrape_gap",
                    "from": rfc3339(dt.datetime.fromtimestamp(a / 1000, UTC)),
                    "to": rfc3339(dt.datetime.fromtimestamp(b / 1000, UTC)),
                    "detail": f"no Traefik samples for {(b - a) / 1000:.0f}s (usual scrape interval {usual / 1000:.0f}s): rates across it are uncertain",
                }
            )
    return gaps


def decide_window(
    spec: CanarySpec, rows: list[Any], options: CollectOptions, prom: PrometheusSource, now: dt.datetime
) -> tuple[Window, dict[str, Any]]:
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
    rollout: dict[str, Any] = {"start": None, "end": None, "detected_from": None}
    if found is not None:
        rollout = {"start": found[0], "end": found[1], "detected_from": "events"}
    else:
        from_weights = rollout_from_weights(spec, prom, *lookback)
        if from_weights is not None:
            rollout = {"start": from_weights[0], "end": from_weights[1], "detected_from": "flagger_canary_weight"}
    if explicit:
        return Window(start, end), rollout
    if rollout["start"] is None:
        raise NotFoundError(
            f"no rollout of canary {spec.ref} found: no 'New revision detected!' event in the cluster's events or "
            f"Flagger's logs, and flagger_canary_weight shows no canary traffic in the last {_human(options.lookback)}; "
            "events expire after 1 h — pass --start and --end to collect a window explicitly"
        )
    start = rollout["start"] - options.lead
    end = min((rollout["end"] or now) + options.tail, max(now, rollout["start"]))
    _check_window(start, end, options)
    return Window(start, end), rollout


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
    q = f"flagger_canary_weight{{namespace={promql_string(spec.ref.namespace)},workload={promql_string(spec.target)}}}"
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
    cluster: ClusterSource,
    prom: PrometheusSource,
    options: CollectOptions,
    progress: Progress | None = None,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(UTC),
) -> Path:
    """Collect one rollout into a bundle under ``options.out``; return the bundle's path."""
    progress = progress or Progress(quiet=True)
    now = clock()
    progress.say(f"reading {cluster.describe()}")
    data = cluster.read(ref)
    spec = canary_spec(ref, data.canary)
    progress.say(f"checking Prometheus at {prom.describe()}")
    prom.ping()

    hook_rows = from_webhooks(data.webhook_events)
    log_rows, log_records = from_log_lines(data.log_lines, ref.name, ref.namespace)
    lossless = merge_lossless(hook_rows, log_rows)
    # First pass: date every Kubernetes Event by its latest occurrence to find the rollout.
    probe, _ = attach_k8s(
        [replace(o, sources=list(o.sources)) for o in lossless], data.events, dt.datetime.max.replace(tzinfo=UTC)
    )
    window, rollout = decide_window(spec, probe, options, prom, now)
    rows, stats = attach_k8s(lossless, data.events, window.start)
    rows = [o for o in rows if window.start <= o.time <= window.end]

    templates = {
        (o.get("metadata", {}).get("namespace") or ref.namespace, o.get("metadata", {}).get("name")): o
        for o in data.metric_templates
    }
    metrics = []
    for m in spec.metrics:
        tref = m.get("templateRef")
        if isinstance(tref, dict):
            t = templates.get((tref.get("namespace") or ref.namespace, tref.get("name")))
            if t is not None:
                m = dict(m, _template_query=(t.get("spec") or {}).get("query"))
        metrics.append(m)
    spec = CanarySpec(spec.ref, spec.target, spec.apex, spec.port, spec.interval_s, spec.interval_text, spec.threshold, metrics)
    queries, plan_warnings = plan_queries(spec, window, rollout["start"])
    run_queries(prom, queries, options.concurrency, progress)
    failed = [q for q in queries if q.status == "failed"]
    if failed and not options.allow_partial:
        progress.done()
        first = failed[0]
        raise PartialError(
            f"{len(failed)} of {len(queries)} Prometheus queries failed (first: {first.id}: {first.error}); "
            "nothing was written — re-run, or pass --allow-partial to write the bundle with these gaps recorded"
        )
    progress.say("writing the bundle")
    series_rows, samples = build_series(queries, spec)
    check_rows = build_checks(queries)

    gaps: list[dict[str, Any]] = []
    warnings: list[str] = list(data.warnings) + plan_warnings
    for q in queries:
        if q.status == "failed":
            gaps.append({"kind": "query_failed", "query": q.id, "detail": q.error})
        elif q.status == "empty":
            gaps.append({"kind": "query_empty", "query": q.id, "detail": _empty_hint(q, spec)})
        if q.kind == "range" and q.error:
            warnings.append(f"{q.id}: {q.error}")
    gaps.extend(scrape_gaps(series_rows, samples, window))
    if spec.apex != spec.target:
        warnings.append(
            f"spec.service.name {spec.apex!r} differs from targetRef {spec.target!r}: Flagger's builtin Traefik queries use the "
            "target and match nothing (flagger#1767); the raw samples were collected by the service name"
        )
    warnings.extend(_event_warnings(rows, stats, data))

    objects = _object_rows(data)
    events = to_records(rows)
    logs = [
        dict(r, message=scrub_text(r["message"]), raw=scrub_text(r["raw"]))
        for r in log_records
        if window.start <= r["time"] <= window.end
    ]
    bundle_id = uuid.uuid4().hex
    name = bundle_dirname(ref.namespace, ref.name, window.start, bundle_id)
    import pandas as pd

    with bundle_writer(Path(options.out), name) as w:
        w.write_table("objects", pd.DataFrame(objects, columns=[c for c in _cols("objects")]))
        w.write_table("events", _frame(events, "events", ("time", "k8s_first", "k8s_last")))
        w.write_table("logs", _frame(logs, "logs", ("time",)))
        w.write_table("series", pd.DataFrame(series_rows, columns=_cols("series")))
        w.write_table("samples", samples)
        checks = pd.DataFrame(check_rows, columns=_cols("checks"))
        checks["timestamp"] = pd.to_datetime(checks["timestamp"], unit="ms", utc=True)
        w.write_table("checks", checks)
        manifest = {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "bundle_id": bundle_id,
            "canary": {
                "namespace": ref.namespace,
                "name": ref.name,
                "target": spec.target,
                "service": spec.apex,
                "port": spec.port,
            },
            "window": {
                "start": rfc3339(window.start),
                "end": rfc3339(window.end),
                "chosen": "explicit --start/--end"
                if options.start or options.end
                else f"latest rollout, widened by lead {_human(options.lead)} and tail {_human(options.tail)}",
            },
            "rollout": {
                "start": rfc3339(rollout["start"]),
                "end": rfc3339(rollout["end"]),
                "detected_from": rollout["detected_from"],
                "in_progress": rollout["start"] is not None and rollout["end"] is None,
            },
            "analysis": {"interval_seconds": spec.interval_s, "threshold": spec.threshold},
            "collected_at": rfc3339(now),
            "tool": {"name": "evidence", "version": __version__},
            "sources": {
                "kubernetes": {"kind": data.source_kind, "location": data.source},
                "prometheus": {"url": prom.describe(), "auth": prom.auth.kinds(), "headers": sorted(prom.auth.headers)},
                "events": {
                    "webhook": len(hook_rows),
                    "log": len(log_rows),
                    "kubernetes": stats["k8s_events"],
                    "kubernetes_only_rows": stats["k8s_only"],
                },
            },
            "queries": [q.manifest() for q in queries],
            "gaps": gaps,
            "warnings": warnings,
            "counts": {
                "objects": len(objects),
                "events": len(events),
                "log_lines": len(logs),
                "series": len(series_rows),
                "samples": len(samples),
                "checks": len(check_rows),
            },
        }
        path = w.commit(manifest)
    progress.done()
    return path


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
        df[c] = pd.to_datetime(df[c], utc=True)
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


def _object_rows(data: ClusterData) -> list[dict[str, Any]]:
    items: list[tuple[str, dict[str, Any]]] = [("canary", data.canary)]
    items += [("metric-template", o) for o in data.metric_templates]
    items += [("alert-provider", o) for o in data.alert_providers]
    items += [("traefik-service", o) for o in data.traefik_services]
    target = str(((data.canary.get("spec") or {}).get("targetRef") or {}).get("name"))
    for o in data.workloads:
        role = "workload-primary" if (o.get("metadata") or {}).get("name") == f"{target}-primary" else "workload-canary"
        items.append((role, workload_identity(o)))
    rows = []
    for role, obj in items:
        clean, paths = redact_object(obj)
        meta = clean.get("metadata") or {}
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


def _empty_hint(q: Query, spec: CanarySpec) -> str:
    if q.id.startswith("raw:traefik"):
        return (
            "no Traefik series for the primary/canary services in the window: is Traefik's Prometheus metrics with "
            "addServicesLabels on, and does the route go through the TraefikService (traefik#8661)?"
        )
    if q.id.startswith("check:"):
        return "Flagger's query returned no values at any tick: Flagger would halt with 'no values found'"
    return "no series in the window"


def _event_warnings(rows: list[Any], stats: dict[str, int], data: ClusterData) -> list[str]:
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
    phase = ((data.canary.get("status") or {}).get("phase")) or ""
    actions = {o.message.split(" ")[0] for o in rows}
    if phase == "Failed" and "Canary" not in actions and rows and has_lossless is False:
        out.append("the Canary is Failed but no 'Canary failed!' event is in the window: events look lost")
    return out


def bundle_digest(path: Path) -> str:
    """Return a short digest of a bundle's manifest (for messages)."""
    return hashlib.sha256((path / "manifest.json").read_bytes()).hexdigest()[:12]
