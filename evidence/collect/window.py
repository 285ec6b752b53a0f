"""The rollout window: which rollout to collect and how wide, from the events or Flagger's weight gauge."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evidence.canary import CanarySpec
from evidence.errors import NotFoundError, UsageError
from evidence.events import find_latest_rollout
from evidence.flagger import promql_string
from evidence.model import RolloutSpan, Window, rfc3339
from evidence.routers import DEFAULT_ROUTER, FLAGGER_NAMESPACE_LABELS, LABEL_NAME
from evidence.sources.prometheus import MAX_POINTS, PrometheusSource

UTC = dt.UTC
DEFAULT_LEAD = dt.timedelta(minutes=10)
DEFAULT_TAIL = dt.timedelta(minutes=10)
DEFAULT_MAX_WINDOW = dt.timedelta(days=7)
FUTURE_SLACK = dt.timedelta(minutes=5)  # clock skew between this machine and the cluster


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
            f"Flagger's logs, and flagger_canary_weight shows no canary traffic in the last {human(options.lookback)}; "
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
            f"the window {rfc3339(start)} → {rfc3339(end)} is longer than the limit of {human(options.max_window)}; "
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


def human(d: dt.timedelta) -> str:
    secs = int(d.total_seconds())
    h, rest = divmod(secs, 3600)
    m, s = divmod(rest, 60)
    return "".join(f"{v}{u}" for v, u in ((h, "h"), (m, "m"), (s, "s")) if v) or "0s"
