"""Rollouts that ended while the watcher was down, read from Flagger's own Prometheus metrics.

The Canary status shows only the latest run, so a rollout that ended and was followed by a new
revision while nobody watched leaves no trace there; Flagger's metrics keep it
(``flagger-traefik.md`` §5, ``pkg/metrics/recorder.go``):

* ``flagger_canary_status{name,namespace}`` is **0 only while Progressing**, 2 for Failed and 1
  for every other phase (Succeeded, but also WaitingPromotion, Promoting, Finalising).  A run
  is a streak of 0s; it ended at the first sample after the streak, Failed if that sample (or
  a later one before the next 0) is 2, else Succeeded.
* ``flagger_canary_successes_total`` / ``flagger_canary_failures_total`` (Flagger ≥ 1.42)
  count terminal runs; where they exist, each increase is a run's end and its outcome.
* ``flagger_canary_duration_seconds`` is the time of **one** analysis tick, not of a rollout:
  its ``_count`` says how many ticks ran, which the manifest reports as unobserved.
* ``flagger_canary_total{namespace}`` counts Canary objects, not rollouts: not used.

Label ``name`` is the Canary's ``spec.targetRef.name``, not its name.  Raw samples are read
(an instant query of a range vector), so the same end is found at the same timestamp on every
restart.  Pure apart from the queries: ``ended_runs(prom, since, now)``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from dataclasses import dataclass
from typing import Any

from evidence.model import parse_stored_time, rfc3339
from evidence.routers import FLAGGER_NAMESPACE_LABELS
from evidence.sources.prometheus import PrometheusSource

STATUS = "flagger_canary_status"
SUCCESSES, FAILURES = "flagger_canary_successes_total", "flagger_canary_failures_total"
TICKS = "flagger_canary_duration_seconds_count"
#: How far before the watcher stopped the status is read, to find where a run that ended later began.
START_LOOKBACK = dt.timedelta(hours=2)
#: The longest outage looked into (Prometheus retention is usually shorter).
MAX_OUTAGE = dt.timedelta(days=7)

Series = dict[tuple[str, str], list[tuple[float, float]]]  # (namespace, target) -> [(t, value)]


@dataclass(frozen=True)
class EndedRun:
    """One rollout that ended in ``(since, now]``, as Flagger's metrics show it."""

    namespace: str
    target: str  # spec.targetRef.name (the metrics' ``name`` label)
    phase: str  # Succeeded | Failed
    ended: dt.datetime
    started: dt.datetime | None  # the first sample of its Progressing streak, if the status shows one
    source: str  # the metric that dated the end
    ticks: int | None  # analysis ticks in the run (flagger_canary_duration_seconds_count), None if not scraped

    @property
    def key(self) -> tuple[str, str, str, str]:
        """The tracker key: stable across restarts (raw sample times)."""
        return ("metrics", f"{self.namespace}/{self.target}", self.phase, str(rfc3339(self.ended)))


def _series(prom: PrometheusSource, metric: str, now: dt.datetime, seconds: int) -> Series:
    out: Series = {}
    for s in prom.instant(f"{metric}[{seconds}s]", now):
        labels = s.get("metric") or {}
        ns = next((labels[k] for k in reversed(FLAGGER_NAMESPACE_LABELS) if labels.get(k)), "")
        target = str(labels.get("name") or "")
        if not ns or not target:
            continue
        points = out.setdefault((str(ns), target), [])
        points += [(float(t), float(v)) for t, v in s.get("values") or [] if math.isfinite(float(v))]
    for points in out.values():
        points.sort()
    return out


def _status_runs(points: list[tuple[float, float]], since: float) -> list[tuple[float, float | None, str]]:
    """Return (ended, started, phase) of each streak of 0s that ends after ``since``."""
    runs: list[tuple[float, float | None, str]] = []
    start: float | None = None
    prev: float | None = None
    for i, (t, v) in enumerate(points):
        if v == 0 and prev != 0:
            start = t if prev is not None else None  # a streak from the first sample began earlier
        if v != 0 and prev == 0 and t > since:
            rest = [x for _, x in points[i:]]
            nxt = rest.index(0) if 0 in rest else len(rest)
            runs.append((t, start, "Failed" if 2 in rest[:nxt] else "Succeeded"))
        prev = v
    return runs


def _counter_ends(points: list[tuple[float, float]], since: float) -> list[float]:
    return [t for (_, a), (t, b) in itertools.pairwise(points) if t > since and (b > a or 0 < b < a)]


def ended_runs(prom: PrometheusSource, since: dt.datetime, now: dt.datetime, namespaces: tuple[str, ...] = ()) -> list[EndedRun]:
    """Return the rollouts whose end Flagger's metrics place in ``(since, now]``, oldest first (in ``namespaces``, or all)."""
    since = max(since, now - MAX_OUTAGE)
    seconds = max(1, math.ceil((now - since + START_LOOKBACK).total_seconds()))
    status = _series(prom, STATUS, now, seconds)
    counted = {name: _series(prom, name, now, seconds) for name in (SUCCESSES, FAILURES)}
    ticks = _series(prom, TICKS, now, seconds)
    s0 = since.timestamp()
    found: list[EndedRun] = []
    for key in sorted(set(status) | set(counted[SUCCESSES]) | set(counted[FAILURES])):
        if namespaces and key[0] not in namespaces:
            continue
        streaks = _status_runs(status.get(key, []), s0)
        ends = [(t, "Succeeded", SUCCESSES) for t in _counter_ends(counted[SUCCESSES].get(key, []), s0)]
        ends += [(t, "Failed", FAILURES) for t in _counter_ends(counted[FAILURES].get(key, []), s0)]
        if not (counted[SUCCESSES].get(key) or counted[FAILURES].get(key)):
            ends = [(t, phase, STATUS) for t, _, phase in streaks]
        for t, phase, metric in sorted(ends):
            prior = [(e, s) for e, s, _ in streaks if e <= t + 60]  # the streak this end closes
            began = max(prior, key=lambda x: x[0])[1] if prior else None
            n = _ticks(ticks.get(key), began, t)
            found.append(EndedRun(key[0], key[1], phase, _at(t), _at(began) if began is not None else None, metric, n))
    return sorted(found, key=lambda r: r.ended)


def _ticks(points: list[tuple[float, float]] | None, began: float | None, ended: float) -> int | None:
    if not points:
        return None
    inside = [v for t, v in points if (began is None or t >= began) and t <= ended]
    return int(max(inside) - min(inside)) if len(inside) > 1 else 0


def _at(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, dt.UTC)


def status_warning(canary: dict[str, Any], down_since: float | None) -> str:
    """Return the manifest warning of a Canary found in a terminal phase on start-up, never captured."""
    from evidence.canary import normalise_canary

    ended = (normalise_canary(canary)[0].get("status") or {}).get("lastTransitionTime")
    since = f"since {rfc3339(_at(down_since))}" if down_since else "(no earlier run recorded)"
    return (
        f"captured on start-up, after the rollout ended ({ended or 'time unknown'}) while the watcher was not running {since}: "
        "webhook deliveries of that period were not journalled, and Kubernetes Events older than the API server's "
        "--event-ttl (1 h by default) may have expired; the events table may lack them"
    )


def lost_evidence(run: EndedRun, since: dt.datetime | None, now: dt.datetime, journalled: int) -> str:
    """Return the manifest warning: how the run was found, and what evidence of it is already lost."""
    down = f"since {rfc3339(since)}" if since else "(no earlier run recorded)"
    how = f"{run.source} shows {run.target} in {run.namespace} ended ({run.phase}) at {rfc3339(run.ended)}"
    lost = [
        f"the webhook deliveries of that time (the journal holds {journalled} record(s) of this canary)",
        "the Canary status snapshots during the run (Flagger zeroes failedChecks and canaryWeight on rollback)",
        f"Kubernetes Events from before {rfc3339(now - dt.timedelta(hours=1))} if the API server's --event-ttl is the default 1 h",
    ]
    if run.ticks:
        lost.append(f"the events of {run.ticks} analysis tick(s) no watcher saw ({TICKS})")
    return (
        f"captured on start-up from Flagger's metrics: {how}, while the watcher was not running {down}; "
        f"evidence already lost: {'; '.join(lost)}"
    )


def capture_window(
    run: EndedRun, runs: list[EndedRun], since: dt.datetime, now: dt.datetime, lead: dt.timedelta, tail: dt.timedelta
) -> tuple[dt.datetime, dt.datetime]:
    """Return the collection window of a run the Canary status no longer shows: its own, never the next run's start.

    A Succeeded end from the status gauge is when the run left Progressing (promotion still
    follows for a tick or two), hence the tail; the next run of the same target bounds it.
    """
    later = [
        r.started for r in runs if (r.namespace, r.target) == (run.namespace, run.target) and r.started and r.started > run.ended
    ]
    end = min([run.ended + tail, now, *(t - dt.timedelta(seconds=1) for t in later)])
    return (run.started or since) - lead, end


def same_run(run: EndedRun, canary_status: dict[str, Any], slack: dt.timedelta = dt.timedelta(minutes=5)) -> bool:
    """Return whether the Canary's current (terminal) status is the run the metrics found."""
    if canary_status.get("phase") != run.phase:
        return False
    when = parse_stored_time(canary_status.get("lastTransitionTime"))
    if when is None:
        return False
    return abs(when - run.ended) <= slack or (run.started is not None and when >= run.started and when >= run.ended)
