"""``evidence evaluate``: a bundle against the abort policy, and what Flagger did about it.

``evaluate_bundle`` reads the bundle's tables and hands them to the pure analysis
(``evidence.analysis``): the criteria at every scrape while the canary took traffic, Flagger's
timeline and outcome, the blast radius, the detection lag, and the what-if replays.
``evidence.render.evaluation`` presents the result as JSON or a terminal summary.

The verdict is ``abort`` when at least one criterion is breached, else ``pass``.  A pass with
no criterion evaluated says so (``evidence_sufficient`` false and a finding): it is not
evidence that the canary was healthy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evidence.analysis.blast import BlastRadius, blast_radius
from evidence.analysis.components import Components, criterion_components
from evidence.analysis.counters import (
    BATCH_SAMPLES,
    CounterTable,
    SampleArrays,
    prepare_counters,
    prepare_counters_within,
    to_ms,
)
from evidence.analysis.criteria import CriterionResult, evaluate_criteria
from evidence.analysis.findings import Finding, check_query_findings, check_rollout_limits, grpc_findings, rollout_findings
from evidence.analysis.lag import DetectionLag, detection_lag
from evidence.analysis.replay import Replay, analysis_ticks, replay_flagger, replay_policy
from evidence.analysis.timeline import MANIFEST_START, Timeline, build_timeline, rollout_span, timeline_entries
from evidence.analysis.traffic import (
    STATUS,
    WEIGHT,
    WeightSeries,
    canary_active,
    grpc_protocols,
    scrape_times,
    status_gauge,
    weight_gauge,
)
from evidence.canary import CanarySpec
from evidence.errors import BundleError
from evidence.model import GapKind, Manifest, epoch_ms, rfc3339
from evidence.policy import Policy, default_policy
from evidence.routers import router_named

if TYPE_CHECKING:
    from evidence.bundle import Bundle

VERDICTS = ("pass", "abort")
OUTCOMES = ("promoted", "rolled_back", "failed", "in_progress", "unknown")


@dataclass(frozen=True, eq=False)
class Evaluation:
    """Everything ``evidence evaluate`` concludes about one rollout."""

    canary: str  # NAMESPACE/CANARY
    target: str
    bundle_id: str | None
    policy: Policy
    window_start: dt.datetime
    window_end: dt.datetime
    rollout_start: dt.datetime
    rollout_end: dt.datetime
    rollout_how: str
    outcome: str
    verdict: str
    evidence_sufficient: bool
    criteria: tuple[CriterionResult, ...]
    timeline: Timeline
    blast: BlastRadius
    lag: DetectionLag
    replay_flagger: Replay
    replay_policy: Replay
    findings: tuple[Finding, ...]
    notes: tuple[str, ...]
    evaluation_times: int
    interval_seconds: float
    threshold: int
    verified: bool | None = None  # the bundle was checked against its manifest (False: used with --allow-unverified)
    unverified_reason: str | None = None
    # The samples prepared for counter arithmetic, kept so a renderer draws from them without
    # preparing them again (the costliest step of an evaluation).
    counters: CounterTable | None = field(default=None, repr=False, compare=False)
    _components: dict[str, Components | None] = field(default_factory=dict, init=False, repr=False, compare=False)

    @property
    def table(self) -> CounterTable:
        """Return the counter table the evaluation was computed from (renderers draw from it)."""
        if self.counters is None:
            raise BundleError("this evaluation was built without its counter table; evaluate the bundle again")
        return self.counters

    def components(self, name: str) -> Components | None:
        """Return the chart lines of criterion ``name`` at its evaluation times (computed once), None when it has none."""
        if name not in self._components:
            result = next((c for c in self.criteria if c.name == name), None)
            crit = self.policy.criterion(name)
            pts = result.points if result is not None else None
            if crit is None or pts is None or len(pts) == 0:
                self._components[name] = None
            else:
                times, values = to_ms(pts["time"]), pts["value"].to_numpy(dtype=float)
                self._components[name] = criterion_components(self.table, crit, times, values)
        return self._components[name]


@dataclass(frozen=True, eq=False)
class RolloutRecord:
    """Which rollout of a bundle is judged, and what Flagger did in it: shared by evaluate and show."""

    canary: str  # NAMESPACE/CANARY
    target: str
    window_start: dt.datetime
    window_end: dt.datetime
    start: dt.datetime
    end: dt.datetime
    how: str
    gauge: WeightSeries
    timeline: Timeline


def _record(manifest: Manifest | Mapping[str, Any]) -> Manifest:
    from evidence.bundle import manifest_from_json

    return manifest if isinstance(manifest, Manifest) else manifest_from_json(manifest)


def reconstruct_rollout(
    manifest: Manifest | Mapping[str, Any], canary: Mapping[str, Any], events: pd.DataFrame, table: CounterTable
) -> RolloutRecord:
    """Return the rollout the bundle is about and Flagger's timeline of it (``table`` needs at least Flagger's weight and status gauges)."""
    m = _record(manifest)
    meta = canary.get("metadata") or {}
    namespace = str(meta.get("namespace") or m.canary.namespace)
    name = str(meta.get("name") or m.canary.name)
    target = str(((canary.get("spec") or {}).get("targetRef") or {}).get("name") or m.canary.target or name)
    if m.window is None:
        raise BundleError("the bundle's manifest has no window start/end; collect it again")
    ws, we = m.window.start, m.window.end
    entries = timeline_entries(events)  # parsed once for both
    start, end, how = rollout_span(events, ws, we, m.rollout.start, entries)
    gauge = weight_gauge(table, target)
    timeline = build_timeline(events, start, end, canary, gauge, status_gauge(table, target), entries)
    return RolloutRecord(f"{namespace}/{name}", target, ws, we, start, end, how, gauge, timeline)


def evaluate_bundle(
    bundle: Bundle, policy: Policy | None = None, *, bounded: bool = False, batch_samples: int = BATCH_SAMPLES
) -> Evaluation:
    """Evaluate a bundle against a policy (the default policy when None).

    ``bounded``: prepare the samples a batch of series at a time and keep only the rollout's
    span (``prepare_counters_within``), so memory follows the rollout, not the window; the
    Evaluation is the same (a question the cut table cannot answer exactly sends it back to the
    whole window), but it carries no counter table to draw charts from.  ``batch_samples``: the
    samples a bounded evaluation prepares at once.
    """
    try:
        canary: Mapping[str, Any] = bundle.canary
    except BundleError:
        if not bundle.record.canary.name:
            raise
        canary = {}
    policy = policy or default_policy()
    # A bundle that fits one batch is prepared whole: the same memory, without the cut's extra reads.
    bounded = bounded and bundle.sample_rows() > batch_samples
    table = _bounded_table(bundle, canary, policy, batch_samples) if bounded else None
    ev = evaluate_rollout(
        manifest=bundle.record,
        canary=canary,
        series=bundle.table("series"),
        samples=None if table is not None else SampleArrays(*bundle.sample_arrays()),
        events=bundle.table("events"),
        checks=bundle.table("checks"),
        policy=policy,
        table=table,
    )
    if table is not None and table.strayed:
        return evaluate_bundle(bundle, policy)
    if table is not None:
        ev = replace(ev, counters=None)
    return replace(ev, verified=bundle.verified, unverified_reason=bundle.unverified_reason)


def gauge_record(bundle: Bundle, canary: Mapping[str, Any]) -> RolloutRecord:
    """Return the bundle's rollout and Flagger's timeline from Flagger's weight and status gauges alone.

    Only those gauges shape the timeline (the status gauge is the outcome's last fallback), so
    only their samples are read and prepared: the same record ``evaluate_rollout`` reconstructs.
    """
    series = bundle.table("series")
    gauges = series[series["metric"].isin([WEIGHT, STATUS])]
    samples = SampleArrays(*bundle.sample_arrays(series_ids=gauges["series_id"].to_numpy()))
    table = prepare_counters(gauges, samples, router_named(bundle.record.sources.router))
    return reconstruct_rollout(bundle.record, canary, bundle.table("events"), table)


#: How far beyond the rollout's span a bounded evaluation keeps samples, at least.
BOUNDED_MARGIN_S = 2 * 3600


def _bounded_table(bundle: Bundle, canary: Mapping[str, Any], policy: Policy, batch_samples: int) -> CounterTable | None:
    """Return the rollout's counter table cut to its span (with margins), or None to use the whole window."""
    series = bundle.table("series")
    router = router_named(bundle.record.sources.router)
    gauges = series[series["metric"].isin([WEIGHT, STATUS])]["series_id"].to_numpy()
    record = gauge_record(bundle, canary)
    spec = CanarySpec.from_object(dict(canary))
    windows = [c.window_seconds for c in policy.criteria] + [spec.interval_s * (spec.threshold + 2)]
    margin = int(max(BOUNDED_MARGIN_S, 4 * max(windows)) * 1000)
    lo, hi = epoch_ms(record.start) - margin, epoch_ms(record.end) + margin
    return prepare_counters_within(
        series,
        lambda ids: SampleArrays(*bundle.sample_arrays(series_ids=ids)),
        bundle.sample_counts(),
        lo,
        hi,
        gauges,
        router,
        batch_samples,
    )


def evaluate_rollout(
    *,
    manifest: Manifest | Mapping[str, Any],
    canary: Mapping[str, Any],
    series: pd.DataFrame,
    samples: pd.DataFrame | SampleArrays | None,
    events: pd.DataFrame,
    checks: pd.DataFrame,
    policy: Policy,
    table: CounterTable | None = None,
) -> Evaluation:
    """Evaluate one rollout from the bundle's tables (pure: DataFrames in, an Evaluation out).

    ``table``: the samples already prepared (then ``samples`` is not read).
    """
    notes: list[str] = []
    manifest = _record(manifest)
    if not canary:
        notes.append("the bundle holds no Canary object: its spec (interval, threshold, metrics, limits) is unknown")
    spec = CanarySpec.from_object(dict(canary))
    interval, threshold = spec.interval_s, spec.threshold

    if table is None:
        if samples is None:
            raise ValueError("evaluate_rollout needs the samples or their prepared table")
        table = prepare_counters(series, samples, router_named(manifest.sources.router))
    record = reconstruct_rollout(manifest, canary, events, table)
    ws, we, target = record.window_start, record.window_end, record.target
    span_start, span_end, how = record.start, record.end, record.how
    gauge, timeline = record.gauge, record.timeline
    weights = gauge if not gauge.empty else timeline.weights()

    scrapes = scrape_times(table, epoch_ms(span_start), epoch_ms(span_end))
    active = canary_active(table, weights, scrapes)
    times = scrapes[active]
    if scrapes.size == 0:
        empty = "no Traefik sample of the primary or canary services during the rollout"
    elif timeline.max_weight == 0 and not active.any():
        empty = "the canary took no traffic during the rollout (its weight stayed 0)"
    else:
        empty = "the canary took no traffic during the rollout"
    criteria = evaluate_criteria(table, policy, times, empty)
    verdict = "abort" if any(c.breached for c in criteria) else "pass"
    sufficient = any(c.evaluated > 0 for c in criteria)

    blast = blast_radius(table, timeline, span_start, span_end, scrapes)
    lag = detection_lag(criteria, timeline.first_halt_at, timeline.rollback_at, blast.canary_traffic_zero_at)

    tick_weights = timeline.weights() if any(s.action != "gauge" for s in timeline.weight_steps) else weights
    stops = [t for t in (timeline.rollback_at, timeline.failed_at) if t is not None]
    ticks = analysis_ticks(
        checks, interval, span_start, span_end, tick_weights, timeline.promotion_started_at, min(stops) if stops else None
    )
    metric_names = spec.metric_names
    if not metric_names and len(checks):
        metric_names = sorted(str(m) for m in checks["metric"].dropna().unique())
    queried = {q.metric for q in manifest.queries if q.kind == "range" and q.metric and q.status != "failed"}
    matrix = {q.metric for q in manifest.queries if q.kind == "range" and q.metric and q.extra.get("result_type") == "matrix"}
    rf = replay_flagger(checks, metric_names, threshold, interval, ticks, queried, matrix)
    rp = replay_policy(table, policy, threshold, interval, ticks)

    findings = list(check_rollout_limits(canary, policy.limits, timeline.max_weight if timeline.outcome != "failed" else None))
    findings.extend(rollout_findings(timeline, criteria, blast, lag, rf, rp, verdict, sufficient))
    findings.extend(grpc_findings(spec, grpc_protocols(table, "canary"), table.router))
    findings.extend(check_query_findings(manifest.queries))
    notes.extend(timeline.notes)
    notes.extend(blast.notes)
    notes.extend(_gap_notes(manifest, span_start, span_end))
    if how != MANIFEST_START:
        notes.append(f"the evaluated rollout: {how}")
    traefik = np.flatnonzero(table.series["role"].isin(["primary", "canary"]).to_numpy())
    restarted = table.restarted_between(traefik, epoch_ms(span_start), epoch_ms(span_end))
    if restarted.size:
        notes.append(
            f"{restarted.size} Traefik series restarted from 0 or were re-created during the rollout "
            "(a Traefik restart, or the canary's service added again): handled as counter resets"
        )

    return Evaluation(
        canary=record.canary,
        target=target,
        bundle_id=manifest.bundle_id or None,
        policy=policy,
        window_start=ws,
        window_end=we,
        rollout_start=span_start,
        rollout_end=span_end,
        rollout_how=how,
        outcome=timeline.outcome,
        verdict=verdict,
        evidence_sufficient=sufficient,
        criteria=criteria,
        timeline=timeline,
        blast=blast,
        lag=lag,
        replay_flagger=rf,
        replay_policy=rp,
        findings=tuple(findings),
        notes=tuple(dict.fromkeys(notes)),
        evaluation_times=int(times.size),
        interval_seconds=interval,
        threshold=threshold,
        counters=table,
    )


def _gap_notes(manifest: Manifest, start: dt.datetime, end: dt.datetime) -> list[str]:
    """Return a note for each gap of the manifest that touches the evaluated span ``[start, end]``.

    A failed query's gaps are its failed chunks, each with ``from``/``to``: only those that
    overlap the span matter, and a query gets one note listing them.  A failed query with no
    range (an older bundle) is noted as it is: where it failed is unknown.
    """
    out = []
    failed: dict[str, list[tuple[dt.datetime | None, dt.datetime | None, str]]] = {}
    for g in manifest.gaps:
        kind = g.kind
        a, b = g.start, g.end
        if kind == GapKind.SCRAPE_GAP:
            if a is not None and b is not None and a <= end and b >= start:
                out.append(
                    f"scrape gap {rfc3339(a)} → {rfc3339(b)}: criteria have no evaluation inside it; counts across it are exact"
                )
        elif kind in (GapKind.QUERY_FAILED, GapKind.QUERY_INVALID):
            if a is not None and b is not None and (a > end or b < start):
                continue
            failed.setdefault(str(g.query), []).append((a, b, g.detail or ""))
        elif kind == GapKind.QUERY_EMPTY:
            out.append(f"query {g.query}: query empty — {g.detail}")
    for query, chunks in failed.items():
        known = [(a, b) for a, b, _ in chunks if a is not None and b is not None]
        unrecorded = len(known) < len(chunks)
        if len(known) > 3:
            ranges = [f"{len(known)} chunks between {rfc3339(min(a for a, _ in known))} and {rfc3339(max(b for _, b in known))}"]
        else:
            ranges = [f"{rfc3339(a)} → {rfc3339(b)}" for a, b in known]
        if ranges:
            where = "failed for " + ", ".join(ranges) + (", and at an unrecorded time" if unrecorded else "")
        else:
            where = "failed (when in the window is not recorded)"
        details = "; ".join(dict.fromkeys(d for _, _, d in chunks if d)) or "no detail"
        out.append(f"query {query} {where}: its samples there are missing from the bundle — {details}")
    return out
