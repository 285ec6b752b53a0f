"""The PromQL a rollout needs: plan it, run it in chunks concurrently, turn answers into tables.

Raw samples come from range selectors (``metric{…}[2h]`` at each chunk's end), exactly as
Prometheus stored them; Flagger's own checks from ``query_range`` at its analysis interval,
aligned to its ticks, in pieces of at most 11,000 points.
"""

from __future__ import annotations

import collections
import datetime as dt
import itertools
import json
import math
import re
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from evidence.canary import CanarySpec
from evidence.errors import PrometheusError, PrometheusInvalidQuery, PrometheusTimeout
from evidence.flagger import METRIC_PROVIDERS, TemplateError, promql_string, re2_escape, render_query
from evidence.model import Gap, GapKind, QueryRecord, Role, ScrapeLabels, Window, rfc3339
from evidence.progress import Progress
from evidence.routers import DEFAULT_ROUTER, FLAGGER_NAMESPACE_LABELS, TrafficMetrics
from evidence.sources.prometheus import MAX_POINTS, PrometheusSource, range_chunks

UTC = dt.UTC
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
RAW_CHUNK = dt.timedelta(hours=2)
#: Chunks sent ahead per worker of the answer being taken: the answers held are bounded by these.
LOOKAHEAD = 2
#: The label the scrape-label probe tags each form's count with.
_PROBE_LABEL = "evidence_probe"
#: After this many timed-out chunks of one query, its remaining chunks are not attempted.
MAX_TIMEOUTS = 2
#: MetricTemplate provider types that are not Prometheus (crd.yaml's enum); an unknown type is
#: Prometheus to Flagger (``pkg/metrics/providers/factory.go`` falls back with a warning).
OTHER_PROVIDERS = frozenset(METRIC_PROVIDERS) - {"prometheus"}


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
    address: str | None = None  # the MetricTemplate's provider.address; None: --prometheus
    status: str = "pending"
    error: str | None = None
    invalid: bool = False  # Prometheus rejected the query itself (400 bad_data): permanent
    matrix: bool = False  # a check whose instant answer is a matrix: Flagger fails it at every tick
    last_series: dict[str, str] | None = None  # a check with several series: the one Flagger's reading takes
    chunks: int = 0
    series: int = 0
    samples: int = 0
    seconds: float = 0.0
    results: list[dict[str, Any]] = field(default_factory=list)
    answered: bool = False  # some chunk returned series (kept in ``results``, or handed to run_queries' ``on_raw``)
    failed_chunks: list[tuple[dt.datetime, dt.datetime, str]] = field(default_factory=list)

    def record(self) -> QueryRecord:
        """Return the manifest's record of this query."""
        extra: dict[str, Any] = {"chunks": self.chunks, "series": self.series, "samples": self.samples}
        extra["seconds"] = round(self.seconds, 3)
        if self.step_s is not None:
            extra["step_seconds"] = self.step_s
        if self.address is not None:
            extra["address"] = self.address
        if self.error:
            extra["error"] = self.error
        if self.invalid:
            extra["invalid"] = True
        if self.matrix:
            extra["result_type"] = "matrix"
        if self.last_series is not None:
            extra["last_series"] = self.last_series
        if self.failed_chunks:
            extra["failed_chunks"] = [{"from": rfc3339(a), "to": rfc3339(b)} for a, b, _ in self.failed_chunks]
        return QueryRecord(self.id, self.kind, self.status, self.metric, self.promql, self.purpose, self.start, self.end, extra)


DEFAULT_LABELS = ScrapeLabels(DEFAULT_ROUTER.service_label, FLAGGER_NAMESPACE_LABELS[0], "default")


def detect_labels(
    prom: PrometheusSource, spec: CanarySpec, window: Window, service_label: str | None = None
) -> tuple[ScrapeLabels, list[str]]:
    """Return the labels the canary's router and Flagger series are stored under, and warnings.

    A scrape without honorLabels (kube-prometheus-stack's ServiceMonitor) keeps the target's own
    ``service``/``namespace`` and moves Traefik's and Flagger's to ``exported_service`` /
    ``exported_namespace``: each form is asked for the canary's series in the window, the first
    that has them wins. ``service_label`` (``--service-label``) overrides the router's label.
    """
    secs = max(1, math.ceil((window.end - window.start).total_seconds()))
    ns = spec.ref.namespace
    svc_re = promql_string(spec.router.services_regex(ns, spec.apex, spec.port, (Role.PRIMARY, Role.CANARY)))
    warnings: list[str] = []

    nsq, tgt = promql_string(ns), promql_string(spec.target)
    service_probes = (
        [] if service_label else [(lab, f"{spec.router.requests}{{{lab}=~{svc_re}}}") for lab in spec.router.service_labels]
    )
    ns_probes = [(lab, f"flagger_canary_status{{{lab}={nsq},name={tgt}}}") for lab in FLAGGER_NAMESPACE_LABELS]
    # Every form is asked in one query (one round trip, not one per form); the first form in order that has series wins.
    answers = _which_have_series(prom, [sel for _, sel in service_probes + ns_probes], secs, window.end, warnings)
    service_hits, ns_hits = answers[: len(service_probes)], answers[len(service_probes) :]
    service = service_label or next((lab for (lab, _), hit in zip(service_probes, service_hits, strict=True) if hit), None)
    namespace = next((lab for (lab, _), hit in zip(ns_probes, ns_hits, strict=True) if hit), None)
    chosen = "--service-label" if service_label else "detected" if service or namespace else "default"
    if service and service != spec.router.service_label and not service_label:
        warnings.append(
            f"{spec.router.title}'s service label is stored as `{service}` (a scrape without honorLabels, e.g. kube-prometheus-stack's "
            f"ServiceMonitor): the raw samples were read by `{service}`, but Flagger's builtin queries select "
            f"`{spec.router.service_label}=~…` and see nothing; set honorLabels: true on the ServiceMonitor"
        )
    found = ScrapeLabels(service or spec.router.service_label, namespace or DEFAULT_LABELS.namespace, chosen)
    return found, list(dict.fromkeys(warnings))


def _which_have_series(
    prom: PrometheusSource, selectors: list[str], secs: int, at: dt.datetime, warnings: list[str]
) -> list[bool]:
    """Return, per selector, whether it has series in the ``secs`` before ``at``: one query, each form tagged by its position."""
    if not selectors:
        return []
    query = " or ".join(
        f'label_replace(count(count_over_time({sel}[{secs}s])), "{_PROBE_LABEL}", "{i}", "", "")'
        for i, sel in enumerate(selectors)
    )
    try:
        result = prom.instant(query, at)
    except PrometheusError as exc:
        warnings.append(f"the scrape labels could not be detected ({exc}); the defaults are used")
        return [False] * len(selectors)
    hits = {str((r.get("metric") or {}).get(_PROBE_LABEL)) for r in result}
    return [str(i) in hits for i in range(len(selectors))]


def plan_queries(
    spec: CanarySpec, window: Window, rollout_start: dt.datetime | None, labels: ScrapeLabels = DEFAULT_LABELS
) -> tuple[list[Query], list[str]]:
    """Return the queries to run for a rollout window, and warnings about the plan."""
    warnings: list[str] = []
    ns = spec.ref.namespace
    svc_re = spec.router.services_regex(ns, spec.apex, spec.port, (Role.PRIMARY, Role.CANARY))
    selector = "{" + labels.service + "=~" + promql_string(svc_re) + "}"
    qs: list[Query] = []
    for raw_metric in spec.router.raw_metrics:
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
            f"flagger_canary_weight{{{labels.namespace}={nsq},workload=~{wl}}}",
            "raw",
            window.start,
            window.end,
        )
    )
    qs.append(
        Query(
            "raw:flagger_canary_status",
            "Flagger's status gauge",
            f"flagger_canary_status{{{labels.namespace}={nsq},name={tgt}}}",
            "raw",
            window.start,
            window.end,
        )
    )
    qs.append(
        Query(
            "raw:flagger_canary_metric_analysis",
            "Flagger's last analysis value per metric",
            f"flagger_canary_metric_analysis{{{labels.namespace}={nsq},name={tgt}}}",
            "raw",
            window.start,
            window.end,
        )
    )
    # Flagger's own checks, evaluated at its analysis ticks (aligned to the rollout start).
    # Flagger pastes names into its templates unquoted: a name that is not a Kubernetes name
    # can only come from a crafted object, and would inject PromQL. Such checks are not run.
    bad = [
        f"{what} {value!r}"
        for what, value in (("targetRef.name", spec.target), ("service.name", spec.apex))
        if not _K8S_NAME.fullmatch(value)
    ]
    if bad:
        warnings.append(
            f"Flagger's checks were not re-run: {', '.join(bad)} is not a Kubernetes name, and pasting it into "
            "PromQL as Flagger does would run a different query"
        )
        return qs, warnings
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
        mname, itext, lo, hi = m.name, m.interval_text, m.threshold_min, m.threshold_max
        provider = m.template_provider or {}
        ptype = str(provider.get("type") or "prometheus").lower()
        if m.template_ref and ptype in OTHER_PROVIDERS:
            warnings.append(
                f"metric {mname}: its MetricTemplate's provider is {ptype}, not Prometheus: the check is not re-runnable here "
                "(its spec is kept in the bundle's objects); Flagger's own verdicts on it are in its events"
            )
            continue
        template = None
        if mname in spec.router.builtin_queries and m.builtin:
            template = spec.router.builtin_queries[mname]
        elif m.query:
            template = m.query
        elif m.template_ref:
            template = m.template_query
            if template is None:
                warnings.append(f"metric {mname}: its MetricTemplate was not collected, so Flagger's query cannot be re-run")
                continue
        else:
            warnings.append(f"metric {mname}: neither builtin, inline query nor templateRef; skipped")
            continue
        try:
            promql = render_query(template, dict(model, interval=itext), m.template_variables)
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
                threshold_min=lo,
                threshold_max=hi,
                unit=unit,
                address=str(provider["address"]).rstrip("/") if m.template_ref and provider.get("address") else None,
            )
        )
    return qs, warnings


def run_queries(
    prom: PrometheusSource,
    queries: list[Query],
    concurrency: int,
    progress: Progress,
    cancel: threading.Event | None = None,
    sources: dict[str, PrometheusSource] | None = None,
    on_raw: Callable[[Query, Any], None] | None = None,
    parse_raw: Callable[[list[dict[str, Any]]], Any] | None = None,
) -> None:
    """Run every query's chunks concurrently; record status, counts and errors on each query.

    ``on_raw``, when given, receives each raw query's chunk results in task order (a query's
    chunks in time order) instead of ``results`` keeping them (``evidence.samplestream``);
    with ``parse_raw``, what it returns for them, run in the thread that fetched the chunk.

    Setting ``cancel`` makes every chunk not yet started return at once (Ctrl-C, SIGTERM): the
    chunks in flight finish within their timeout, the queued ones are never sent.  A query with
    an ``address`` goes to ``sources[address]`` when there is one, else to ``prom``.
    """
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
    timeouts: dict[str, int] = {}
    lock = threading.Lock()

    def one(task: tuple[Query, dt.datetime, dt.datetime]) -> tuple[Query, list[dict[str, Any]] | None, str | None, float]:
        q, s, e = task
        if cancel is not None and cancel.is_set():
            return q, None, "not attempted: collection was interrupted", 0.0
        with lock:
            given_up = timeouts.get(q.id, 0) >= MAX_TIMEOUTS
            invalid = q.invalid
        if given_up:
            # A query Prometheus cannot answer in time (a heavy selector over a long store)
            # would otherwise cost chunks × timeout: skip its remaining chunks, say so for each,
            # and let the other queries (Flagger's small series among them) run.
            return q, None, f"not attempted: this query timed out on {MAX_TIMEOUTS} earlier chunks", 0.0
        if invalid:
            return q, None, "not attempted: Prometheus rejected this query as invalid", 0.0
        t0 = time.monotonic()
        src = (sources or {}).get(q.address or "", prom)
        try:
            if q.kind == "raw":
                secs = max(1, math.ceil((e - s).total_seconds()))
                parsed_here = parse_raw is not None and on_raw is not None
                res = src.instant(f"{q.promql}[{secs}s]", e, check_samples=not parsed_here)  # parse_raw checks them
                if parse_raw is not None and parsed_here:
                    try:
                        res = parse_raw(res)  # here, so the answers waiting their turn are held as arrays
                    except PrometheusError as exc:
                        raise PrometheusError(src.scrub(str(exc))) from None
            else:
                assert q.step_s is not None
                res = src.range(q.promql, s, e, q.step_s)
            return q, res, None, time.monotonic() - t0
        except PrometheusTimeout as exc:
            with lock:
                timeouts[q.id] = timeouts.get(q.id, 0) + 1
            return q, None, str(exc), time.monotonic() - t0
        except PrometheusInvalidQuery as exc:
            with lock:
                q.invalid = True
            return q, None, str(exc), time.monotonic() - t0
        except PrometheusError as exc:
            return q, None, str(exc), time.monotonic() - t0

    progress.say(f"prometheus: 0/{len(tasks)} queries")
    workers = max(1, concurrency)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # Answers are taken in task order (a query's chunks in time order, for the sample stream);
        # only LOOKAHEAD chunks per worker are sent ahead of the one awaited, so the answers held
        # are bounded by a few chunks, whatever the window (pool.map would queue every answer
        # behind one slow chunk).
        queue = iter(tasks)
        pending = collections.deque((pool.submit(one, t), t) for t in itertools.islice(queue, workers * LOOKAHEAD))
        while pending:
            future, (_, s, e) = pending.popleft()
            q, res, err, secs = future.result()
            following = next(queue, None)
            if following is not None:
                pending.append((pool.submit(one, following), following))
            with lock:
                done += 1
                q.seconds += secs
                if err is not None:
                    q.status = "failed"
                    q.error = q.error or err
                    q.failed_chunks.append((s, e, err))
                elif res is not None:
                    q.answered = q.answered or bool(res)
                    if on_raw is not None and q.kind == "raw":
                        on_raw(q, res)
                    else:
                        q.results.extend(res)
            progress.say(f"prometheus: {done}/{len(tasks)} queries", force=False)
    for q in queries:
        if q.status != "failed":
            q.status = "ok" if q.answered else "empty"
    _find_matrix_checks(prom, queries, sources or {})


def _find_matrix_checks(prom: PrometheusSource, queries: list[Query], sources: dict[str, PrometheusSource]) -> None:
    """Mark the checks whose query is a range vector: Flagger's instant query then gets a matrix.

    ``query_range`` refuses a range vector as invalid; Flagger's instant query gets a matrix
    answer, and ``RunQuery`` fails on any element with ``values`` ("query returned multiple
    values", ``pkg/metrics/providers/prometheus.go:155-158``): a failed check at every tick.
    """
    for q in queries:
        if q.kind != "range" or not q.invalid:
            continue
        src = sources.get(q.address or "", prom)
        # An empty matrix is no proof: ask at a few points of the window (the canary may be gone at its end).
        points = [q.start + (q.end - q.start) * k / 4 for k in (4, 2, 3, 1)]
        try:
            found = any("values" in r for at in points for r in src.instant(q.promql, at))
        except PrometheusError:
            continue
        if found:
            q.matrix = True
            q.error = (
                "Prometheus returns a matrix for this query: Flagger fails it at every tick with 'query returned multiple values'"
            )


def build_checks(queries: list[Query]) -> list[dict[str, Any]]:
    """Return rows of the checks table from Flagger's re-run queries: one value per tick, as Flagger reads it.

    Flagger's ``RunQuery`` loops over every element of the vector and keeps the **last** one
    (``pkg/metrics/providers/prometheus.go:155-169``; ../shared/reference/flagger-traefik.md
    §4.1): several series are no failure.  So at each timestamp the value is the one of the last
    series Prometheus listed with a sample there (NaN there is "no values found", even when an
    earlier series has a number).  The series it used last is recorded on the query.
    """
    rows = []
    for q in queries:
        if q.kind != "range":
            continue
        at: dict[int, tuple[float, int]] = {}
        for i, r in enumerate(q.results):
            for ts, v in r.get("values") or []:
                at[round(float(ts) * 1000)] = (float(v), i)
        for ms in sorted(at):
            value = at[ms][0]
            if q.metric == "request-duration" and math.isfinite(value):
                value = float(int(value))  # Flagger truncates to whole milliseconds
            rows.append(
                {
                    "metric": q.metric,
                    "query_id": q.id,
                    "timestamp": ms,
                    "value": value,
                    "threshold_min": q.threshold_min,
                    "threshold_max": q.threshold_max,
                }
            )
        q.samples = len(at)
        q.series = len({json.dumps(r.get("metric") or {}, sort_keys=True) for r in q.results})
        if q.series > 1 and at:
            last = q.results[at[max(at)][1]].get("metric") or {}
            q.last_series = {str(k): str(v) for k, v in sorted(last.items())}
    return rows


def gaps_in_times(times: list[int], router: TrafficMetrics) -> list[Gap]:
    """Return the scrape gaps of the router's primary series from their distinct sample times (ms, sorted)."""
    if len(times) < 3:
        return []
    deltas = [b - a for a, b in itertools.pairwise(times)]
    usual = statistics.median(deltas)
    return [
        Gap(
            GapKind.SCRAPE_GAP,
            None,
            dt.datetime.fromtimestamp(a / 1000, UTC),
            dt.datetime.fromtimestamp(b / 1000, UTC),
            f"no {router.title} samples for {(b - a) / 1000:.0f}s (usual scrape interval {usual / 1000:.0f}s): rates across it are uncertain",
        )
        for a, b in itertools.pairwise(times)
        if b - a > 2 * usual
    ]


def empty_hint(q: Query) -> str:
    """Return what an empty query means for the rollout's evidence."""
    if q.id.startswith("raw:traefik"):
        return (
            "no Traefik series for the primary/canary services in the window: is Traefik's Prometheus metrics with "
            "addServicesLabels on, and does the route go through the TraefikService (traefik#8661)?"
        )
    if q.id.startswith("check:"):
        return "Flagger's query returned no values at any tick: Flagger would halt with 'no values found'"
    return "no series in the window"
