"""Who served what: the canary's weight as Flagger set it, request counts, and when the canary took traffic.

When is the canary "taking traffic"?  At a Traefik scrape time *t* (the evaluation times), the
canary takes traffic when Flagger's weight gauge ``flagger_canary_weight{workload=<target>}``
(role ``flagger``) was above 0 at *t* or at the previous scrape — so the scrape that follows a
rollback, which still counts the canary's last requests, is evaluated — **or** when the
canary's Traefik request counters rose since the previous scrape.  The weight gauge says what
Flagger intended; the counters catch traffic the gauge missed (a Flagger scrape gap, a bundle
without the gauge).

Flagger's status gauge ``flagger_canary_status{name=<target>}`` (role ``flagger``) is read here
too, next to the weight gauge: 0 while the Canary is ``Progressing``, 2 when ``Failed``, 1 for
every other phase (Initialized, Waiting, WaitingPromotion, Promoting, Finalising, Succeeded …;
../shared/reference/flagger-traefik.md §5).  The timeline falls back on it when no event and
no Canary status of the rollout say how it ended.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from evidence.analysis.counters import CounterTable

if TYPE_CHECKING:
    from evidence.analysis.counters import BoolArray, FloatArray, IntArray

WEIGHT = "flagger_canary_weight"
STATUS = "flagger_canary_status"
SPLIT_ROLES = ("primary", "canary")


@dataclass(frozen=True, eq=False)
class WeightSeries:
    """A step function of the canary's weight: value ``weights[i]`` from ``times[i]`` on."""

    times: IntArray = field(repr=False)
    weights: FloatArray = field(repr=False)
    source: str  # "flagger_canary_weight" | "events" | "none"

    @property
    def empty(self) -> bool:
        return self.times.size == 0

    def at(self, times: IntArray, *, strict: bool = False) -> FloatArray:
        """Return the weight in force at each time (at or before it; strictly before with ``strict``); 0 before any step."""
        t = np.asarray(times, dtype=np.int64)
        if self.times.size == 0:
            return np.zeros(t.size)
        idx = np.searchsorted(self.times, t, side="left" if strict else "right") - 1
        return np.where(idx >= 0, self.weights[np.clip(idx, 0, None)], 0.0)

    def max_between(self, start: int, end: int) -> float:
        """Return the highest weight in force at any time in ``[start, end]``."""
        inside = (self.times >= start) & (self.times <= end)
        vals = [float(self.at(np.array([start]))[0])]
        if inside.any():
            vals.append(float(self.weights[inside].max()))
        return max(vals)


@dataclass(frozen=True, eq=False)
class StatusSeries:
    """Flagger's status gauge as scraped: value ``values[i]`` from ``times[i]`` on (0 Progressing, 2 Failed, 1 otherwise)."""

    times: IntArray = field(repr=False)
    values: FloatArray = field(repr=False)

    @property
    def empty(self) -> bool:
        return self.times.size == 0

    def value_at(self, time: int) -> float | None:
        """Return the value in force at ``time`` (its last sample at or before it), None before the first sample."""
        i = int(np.searchsorted(self.times, time, side="right")) - 1
        return float(self.values[i]) if i >= 0 else None


def empty_weights() -> WeightSeries:
    """Return a weight series with no steps."""
    return WeightSeries(np.zeros(0, dtype=np.int64), np.zeros(0), "none")


def _flagger_gauge(table: CounterTable, metric: str, match: dict[str, str]) -> tuple[IntArray, FloatArray]:
    """Return (times, values) of one of Flagger's per-canary gauges, preferring series of role ``flagger``."""
    pos = table.select(metric, match=match)
    flagger = pos[(table.series["role"].to_numpy()[pos] == "flagger")] if pos.size else pos
    pos = flagger if flagger.size else pos
    if pos.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    t, v = table.samples_of(pos)
    # Several series (Flagger restarted with another instance label): the latest sample wins.
    keep = np.r_[t[1:] != t[:-1], True] if t.size else np.zeros(0, dtype=bool)
    return t[keep], v[keep]


def weight_gauge(table: CounterTable, target: str) -> WeightSeries:
    """Return Flagger's canary weight gauge (``workload`` = the targetRef name) as a step series."""
    t, v = _flagger_gauge(table, WEIGHT, {"workload": re.escape(target)})
    return WeightSeries(t, v, "flagger_canary_weight") if t.size else empty_weights()


def status_gauge(table: CounterTable, target: str) -> StatusSeries:
    """Return Flagger's status gauge of the canary (label ``name`` = the targetRef name, not the Canary's name)."""
    t, v = _flagger_gauge(table, STATUS, {"name": re.escape(target)})
    return StatusSeries(t, v)


def request_positions(table: CounterTable, role: str, *, errors: bool = False) -> IntArray:
    """Return the request-counter series of a role (failures only with ``errors``: 5xx, or for gRPC
    series the gRPC codes the gRPC HTTP mapping sends to 5xx).

    The router's request counter when the bundle has it, else its duration histogram's
    ``+Inf`` bucket, which counts the same requests.
    """
    pos = table.select(table.router.requests, role=role)
    if pos.size == 0:
        pos = table.select(table.router.duration_buckets, role=role, match={table.router.bucket_label: r"\+?Inf"})
    if errors and pos.size:
        codes = table.label(pos, table.router.code_label)
        protocols = table.label(pos, table.router.protocol_label)
        pos = pos[np.array([table.router.is_error(c, p) for c, p in zip(codes, protocols, strict=True)], dtype=bool)]
    return pos


def grpc_protocols(table: CounterTable, role: str) -> list[str]:
    """Return the gRPC ``protocol`` values of a role's request series (Traefik v3 puts gRPC codes in ``code``)."""
    pos = request_positions(table, role)
    return sorted({str(p) for p in table.label(pos, table.router.protocol_label) if table.router.is_grpc(p)})


def scrape_times(table: CounterTable, start: int, end: int) -> IntArray:
    """Return the distinct Traefik sample times of the primary and canary services in ``[start, end]``."""
    pos = np.concatenate([table.select([table.router.requests, table.router.duration_buckets], role=r) for r in SPLIT_ROLES])
    return table.sample_times(pos, start, end)


def canary_active(table: CounterTable, weights: WeightSeries, times: IntArray) -> BoolArray:
    """Return, for each evaluation time, whether the canary took traffic in the interval ending there."""
    t = np.asarray(times, dtype=np.int64)
    if t.size == 0:
        return np.zeros(0, dtype=bool)
    step = int(np.median(np.diff(t))) if t.size > 1 else 15_000
    prev = np.r_[t[0] - step, t[:-1]]
    by_weight = (weights.at(t) > 0) | (weights.at(prev) > 0)
    canary = request_positions(table, "canary")
    by_counter = np.zeros(t.size, dtype=bool)
    if canary.size:
        rose = table.values_at(canary, t).sum(axis=0) - table.values_at(canary, prev).sum(axis=0)
        by_counter = rose > 0
    return np.asarray(by_weight | by_counter, dtype=bool)
