"""Window arithmetic on raw samples: exact counter increases and histogram quantiles.

Everything works on the bundle's ``samples`` joined to its ``series``, vectorised with numpy.
Times are int64 milliseconds since the epoch.

**Counters.**  For a series *s*, ``C_s(x)`` is its reset-corrected value at its last sample at
or before *x*, and **0 when the series did not exist at x**.  The increase over the trailing
window ``(t - w, t]`` is ``C_s(t) - C_s(t - w)``, with the exact sample values: no
extrapolation to the window edges as Prometheus' ``increase()`` does, and the first sample
of a series that appears inside the window counts as an increase from 0 (``increase()``
drops it, which undercounts Traefik's canary service: its counters start at 0 each rollout).

Reset correction, per series, in time order:

* a value lower than the previous one is a counter reset: the value before the drop is added
  to everything after it;
* a series that Traefik deleted and re-created (its service left the TraefikService and came
  back in a later rollout) restarts at 0.  That shows as such a drop when its new value is
  lower; when it is not (an earlier rollout left the canary's ``code="500"`` series at 1 and
  the re-created one's first sample is 1 again), the re-creation is read from absence, but only
  when that is unambiguous: the hole between two consecutive samples of the series is longer
  than two scrape intervals of its group (metric, job and instance; the interval is the median
  spacing of the group's series' own samples), **and** the group was scraped at some time in the
  hole when no series of the same service was — the whole service was gone while its target
  answered, as when Traefik drops a removed service's series.  Then the sample after the hole
  is an increase from 0, like a reset;
* any other hole is *not* a reset: the counter kept counting and its increase shows at the
  first sample after the hole.  A failed query chunk empties the whole metric, a scrape gap
  the whole target, a single missing series leaves its service's other series in place, and a
  high-availability pair's replicas scrape seconds apart — none of these is read as a
  re-creation (inferring it from absence alone inflated counts many-fold on such holes).  The
  cost, said plainly: a series re-created within two scrape intervals, with a first value
  above its last value before the hole, is undercounted by that last value.

A series present within one scrape interval of the first scrape of its metric and target in
the bundle cannot be told apart from one that existed long before: its first sample is a
baseline, not an increase from 0.  One that first shows later appeared inside the window.

**Histograms.**  ``histogram_quantile`` follows Prometheus ``promql/quantile.go``
(``bucketQuantile``): buckets sorted by ``le``, duplicate bounds merged, counts forced
monotonic, linear interpolation inside the bucket holding the rank (the first bucket starts at
0), and a rank in the ``+Inf`` bucket returns the second-highest bound.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from evidence.arrays import distinct
from evidence.routers import DEFAULT_ROUTER, TrafficMetrics

if TYPE_CHECKING:
    from numpy.typing import NDArray

    FloatArray = NDArray[np.float64]
    IntArray = NDArray[np.int64]
    BoolArray = NDArray[np.bool_]

# Sample keys combine a series' position and its time: position * _STRIDE + ms.  2**42 ms
# reaches the year 2109; 2**21 series fit below 2**63.
_STRIDE = np.int64(2**42)


def to_ms(values: pd.Series | pd.DatetimeIndex | Sequence[Any]) -> IntArray:
    """Return timestamps (tz-aware or naive UTC datetimes) as int64 epoch milliseconds."""
    idx = pd.DatetimeIndex(pd.to_datetime(values, utc=True))
    return np.asarray(idx.as_unit("ms").asi8, dtype=np.int64)


def ms_to_datetimes(ms: IntArray) -> pd.DatetimeIndex:
    """Return epoch milliseconds as a tz-aware UTC DatetimeIndex."""
    return pd.DatetimeIndex(pd.to_datetime(np.asarray(ms, dtype=np.int64), unit="ms", utc=True))


def parse_le(le: Any) -> float:
    """Return a bucket bound (``le`` label) as a float; ``+Inf`` is infinity, junk is NaN."""
    if le is None:
        return float("nan")
    text = str(le).strip()
    if text in ("+Inf", "Inf", "inf", "+inf"):
        return float("inf")
    try:
        return float(text)
    except ValueError:
        return float("nan")


@dataclass(frozen=True, eq=False)
class CounterTable:
    """Samples of a set of series, sorted and reset-corrected, ready for window arithmetic.

    ``series`` has one row per series in position order: the ``series`` table's columns plus
    ``pos``, ``group`` (job/instance), ``samples``, ``appeared`` (its first sample counts
    from 0) and ``restarts`` (resets and re-creations); ``labels`` holds each series' labels.
    """

    series: pd.DataFrame = field(repr=False)
    labels: tuple[dict[str, str], ...] = field(repr=False)
    keys: IntArray = field(repr=False)
    times: IntArray = field(repr=False)
    raw: FloatArray = field(repr=False)
    adjusted: FloatArray = field(repr=False)
    first: IntArray = field(repr=False)  # index of each series' first sample; -1 when it has none
    last: IntArray = field(repr=False)  # index of each series' last sample; -1 when it has none
    baseline: FloatArray = field(repr=False)  # C before the first sample: 0 if it appeared, else its first value
    reset: BoolArray = field(repr=False)  # the sample follows a counter reset or a re-creation
    router: TrafficMetrics = field(default=DEFAULT_ROUTER, repr=False)  # whose series these are: the names to select by
    # A table cut to a time range (``prepare_counters_within``): answers are exact only for times
    # in ``exact`` (lo, hi) and, for ``samples_of``, only for the series kept ``whole``; a question
    # outside is recorded in ``strayed`` (the caller then uses the whole-window table).
    exact: tuple[int, int] | None = field(default=None, repr=False)
    whole: BoolArray | None = field(default=None, repr=False)
    strayed: list[str] = field(default_factory=list, repr=False)

    def _outside(self, times: Any, what: str) -> None:
        if self.exact is None:
            return
        t = np.asarray(times)
        if t.size and (int(t.min()) < self.exact[0] or int(t.max()) > self.exact[1]):
            self.strayed.append(what)

    def _slice(self, p: int) -> slice:
        """Return where series ``p``'s samples lie (they are contiguous, in time order)."""
        a = int(self.first[p])
        return slice(a, int(self.last[p]) + 1) if a >= 0 else slice(0, 0)

    def restarted_between(self, positions: IntArray, start: int, end: int) -> IntArray:
        """Return the positions among these whose counters reset or were re-created in ``[start, end]``."""
        pos = np.asarray(positions, dtype=np.int64)
        if self.exact is not None:
            self._outside([end], "restarted_between")
            # Before the range only the whole history is exact: the sample kept last before it
            # carries every reset since the series' first sample.
            if start < self.exact[0] and any(
                start > int(self.times[self.first[p]]) + 1 for p in pos.tolist() if self.first[p] >= 0
            ):
                self.strayed.append("restarted_between")
        hit = []
        for p in pos.tolist():
            sl = self._slice(p)
            t = self.times[sl]
            lo, hi = np.searchsorted(t, start, side="left"), np.searchsorted(t, end, side="right")
            hit.append(bool(self.reset[sl][lo:hi].any()))
        return pos[np.array(hit, dtype=bool)] if pos.size else pos

    @functools.cached_property
    def _metric_role(self) -> tuple[Any, Any]:
        # The series frame's columns as plain object arrays, once: a pandas (arrow-string) comparison
        # per select call was a tenth of the summary's evaluation on a small bundle.
        df = self.series
        n = len(df)
        metric = df["metric"].to_numpy(dtype=object) if "metric" in df else np.full(n, "", dtype=object)
        role = df["role"].to_numpy(dtype=object) if "role" in df else np.full(n, None, dtype=object)
        return metric, role

    @functools.cached_property
    def _bounds(self) -> FloatArray:
        # Each series' ``le`` as a bound (NaN when it has none), parsed once for every histogram question.
        df = self.series
        les = df["le"].to_numpy(dtype=object) if "le" in df else np.full(len(df), None, dtype=object)
        return np.array([parse_le(v) for v in les], dtype=np.float64)

    def select(self, metric: str | Sequence[str], role: str | None = None, match: Mapping[str, str] | None = None) -> IntArray:
        """Return the positions of series with this metric (one of these), role and label regexes."""
        metrics, roles = self._metric_role
        names = {metric} if isinstance(metric, str) else set(metric)
        mask = np.fromiter((m in names for m in metrics), dtype=bool, count=len(metrics))
        if role is not None:
            mask &= roles == role
        if match:
            compiled = {k: re.compile(v) for k, v in match.items()}
            for i in np.flatnonzero(mask):
                labels = self.labels[i]
                for key, rx in compiled.items():
                    value = labels.get(key)
                    if value is None or not rx.fullmatch(value):
                        mask[i] = False
                        break
        return np.flatnonzero(mask).astype(np.int64)

    def label(self, positions: IntArray, key: str) -> list[str | None]:
        """Return one label's value for each position."""
        return [self.labels[int(p)].get(key) for p in positions]

    def values_at(self, positions: IntArray, times: IntArray, *, raw: bool = False) -> FloatArray:
        """Return ``C_s(t)`` (or the raw value) for each position (rows) and time (columns)."""
        pos = np.asarray(positions, dtype=np.int64)
        self._outside(times, "values_at")
        t = np.clip(np.asarray(times, dtype=np.int64), 0, int(_STRIDE) - 1)
        if pos.size == 0 or t.size == 0:
            return np.zeros((pos.size, t.size), dtype=np.float64)
        query = pos[:, None] * _STRIDE + t[None, :]
        idx = np.searchsorted(self.keys, query, side="right") - 1
        first = self.first[pos][:, None]
        valid = (first >= 0) & (idx >= first)
        src = self.raw if raw else self.adjusted
        picked = src[np.clip(idx, 0, max(src.size - 1, 0))] if src.size else np.zeros(query.shape)
        if raw:
            return np.where(valid, picked, np.nan)
        return np.where(valid, picked, self.baseline[pos][:, None])

    def sample_time_at(self, positions: IntArray, times: IntArray) -> IntArray:
        """Return the time of each series' last sample at or before each time (-1 if none)."""
        pos = np.asarray(positions, dtype=np.int64)
        self._outside(times, "sample_time_at")
        t = np.clip(np.asarray(times, dtype=np.int64), 0, int(_STRIDE) - 1)
        if pos.size == 0 or t.size == 0:
            return np.full((pos.size, t.size), -1, dtype=np.int64)
        idx = np.searchsorted(self.keys, pos[:, None] * _STRIDE + t[None, :], side="right") - 1
        valid = (self.first[pos][:, None] >= 0) & (idx >= self.first[pos][:, None])
        return np.where(valid, self.times[np.clip(idx, 0, max(self.times.size - 1, 0))], -1)

    def increase(self, positions: IntArray, times: IntArray, window_ms: int | IntArray) -> FloatArray:
        """Return each series' increase over ``(t - w, t]`` (rows: positions, columns: times)."""
        t = np.asarray(times, dtype=np.int64)
        return self.values_at(positions, t) - self.values_at(positions, t - np.asarray(window_ms, dtype=np.int64))

    def total_increase(self, positions: IntArray, times: IntArray, window_ms: int | IntArray) -> FloatArray:
        """Return the summed increase of several series over ``(t - w, t]`` at each time."""
        inc = self.increase(positions, times, window_ms)
        return inc.sum(axis=0) if inc.shape[0] else np.zeros(np.asarray(times).size)

    def sample_times(self, positions: IntArray, start: int | None = None, end: int | None = None) -> IntArray:
        """Return the sorted distinct sample times of these series (in ``[start, end]`` when given)."""
        if self.exact is not None:
            self._outside(
                [self.exact[0] - 1 if start is None else start, self.exact[1] + 1 if end is None else end], "sample_times"
            )
        pos = distinct(np.asarray(positions, dtype=np.int64))
        if pos.size == 0 or self.times.size == 0:
            return np.zeros(0, dtype=np.int64)
        times = distinct(np.concatenate([self.times[self._slice(p)] for p in pos.tolist()]))
        if start is not None:
            times = times[times >= start]
        if end is not None:
            times = times[times <= end]
        return times

    def samples_of(self, positions: IntArray) -> tuple[IntArray, FloatArray]:
        """Return (times, raw values) of these series' samples, sorted by time (series in position order at equal times)."""
        pos = distinct(np.asarray(positions, dtype=np.int64))
        if self.whole is not None and pos.size and not bool(self.whole[pos].all()):
            self.strayed.append("samples_of")
        if pos.size == 0 or self.times.size == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0)
        slices = [self._slice(p) for p in pos.tolist()]
        t = np.concatenate([self.times[sl] for sl in slices])
        v = np.concatenate([self.raw[sl] for sl in slices])
        order = np.argsort(t, kind="stable")
        return t[order], v[order]

    def bucket_increases(self, positions: IntArray, times: IntArray, window_ms: int) -> tuple[FloatArray, FloatArray]:
        """Return (bounds, counts[bucket, time]): histogram bucket increases summed by ``le``."""
        pos = np.asarray(positions, dtype=np.int64)
        les = self._bounds[pos]
        keep = ~np.isnan(les)
        pos, les = pos[keep], les[keep]
        bounds = np.unique(les)
        if pos.size == 0:
            return bounds, np.zeros((0, np.asarray(times).size))
        inc = self.increase(pos, times, window_ms)
        counts = np.zeros((bounds.size, inc.shape[1]), dtype=np.float64)
        np.add.at(counts, np.searchsorted(bounds, les), inc)
        return bounds, counts


def _labels_map(text: Any) -> dict[str, str]:
    if not isinstance(text, str) or not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


@dataclass(frozen=True, eq=False)
class SampleArrays:
    """The samples table as arrays: series ids, times (int64 epoch ms) and values, in the table's order.

    ``Bundle.sample_arrays`` reads them from parquet without a pandas frame: a frame of a long
    window cost about ten times the samples' own 20 bytes.
    """

    series_id: NDArray[np.integer[Any]]
    ms: IntArray
    value: FloatArray

    @classmethod
    def from_frame(cls, samples: pd.DataFrame) -> SampleArrays:
        """Return a samples frame (``series_id``, ``timestamp``, ``value``) as arrays."""
        if not len(samples):
            return cls(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64))
        return cls(
            samples["series_id"].to_numpy(dtype=np.int64),
            to_ms(samples["timestamp"]),
            samples["value"].to_numpy(dtype=np.float64),
        )

    def subset(self, series_ids: Sequence[int] | IntArray) -> SampleArrays:
        """Return only the samples of these series."""
        keep = np.isin(self.series_id, np.asarray(series_ids, dtype=np.int64))
        return SampleArrays(self.series_id[keep], self.ms[keep], self.value[keep])


def _recreated(sample_group: IntArray, sample_service: IntArray, t: IntArray, idx: IntArray) -> BoolArray:
    """Return, for each sample index in ``idx`` (the first sample after a long hole in its series),
    whether the series was deleted and re-created in that hole.

    ``idx`` holds only holes longer than two scrape intervals of the series' group (metric, job,
    instance); the re-creation is read when the group was scraped at some time inside the hole
    when no series of the series' own service was — the service was gone while its target answered.
    Every service belongs to one group (its codes are made from the group's key), so the
    service's scrape times inside a hole are among the group's samples inside it.
    """
    # Keys are group (or service) × stride + time.  Only the samples inside some hole of their own
    # group can count, so the distinct scrape times are taken over those alone (one search of the
    # merged holes), not over the whole window.
    if idx.size == 0:
        return np.zeros(0, dtype=bool)
    g = sample_group[idx].astype(np.int64) * _STRIDE
    sv = sample_service[idx].astype(np.int64) * _STRIDE
    lo, hi = t[idx - 1], t[idx]
    order = np.argsort(g + lo, kind="stable")
    starts, ends = (g + lo)[order], np.maximum.accumulate((g + hi)[order])
    # The holes as disjoint open intervals (a hole that begins where another ends stays apart:
    # the shared end point is in neither).
    opens = np.r_[True, starts[1:] >= ends[:-1]]
    m_lo = starts[opens]
    m_hi = ends[np.r_[np.flatnonzero(opens)[1:] - 1, opens.size - 1]]
    keys = sample_group.astype(np.int64) * _STRIDE + t
    at = np.searchsorted(m_lo, keys, side="left") - 1
    inside = at >= 0
    inside[inside] = keys[inside] < m_hi[at[inside]]
    g_keys = distinct(keys[inside])
    s_keys = distinct(sample_service[inside].astype(np.int64) * _STRIDE + t[inside])
    del keys, at, inside
    in_group = np.searchsorted(g_keys, g + hi, side="left") - np.searchsorted(g_keys, g + lo, side="right")
    in_service = np.searchsorted(s_keys, sv + hi, side="left") - np.searchsorted(s_keys, sv + lo, side="right")
    return np.asarray(in_group > in_service, dtype=bool)


def _positions(ids: NDArray[np.integer[Any]], sid: NDArray[np.integer[Any]]) -> NDArray[np.int32]:
    """Return each sample's series position (int32; -1 for an id the series table does not have; the first row of an id wins)."""
    n_series = ids.size
    if n_series == 0 or sid.size == 0:
        return np.full(sid.size, -1, dtype=np.int32)
    uniq, first = np.unique(ids, return_index=True)  # each id once, at its first row
    lo = min(int(uniq[0]), int(sid.min()))
    hi = max(int(uniq[-1]), int(sid.max()))
    if lo >= 0 and hi < max(1 << 22, 4 * sid.size):
        lut = np.full(hi + 1, -1, dtype=np.int32)
        lut[uniq] = first
        return np.asarray(lut[sid], dtype=np.int32)
    # Ids a lookup table cannot hold (negative, or far larger than the table): through the sorted ids.
    at = np.clip(np.searchsorted(uniq, sid), 0, uniq.size - 1)
    return np.where(uniq[at] == sid, first[at], -1).astype(np.int32)


def _series_frame(series: pd.DataFrame) -> tuple[pd.DataFrame, list[dict[str, str]]]:
    """Return the series frame with its ``group`` (metric, job, instance) and ``pos`` columns, and each series' labels."""
    sdf = series.reset_index(drop=True).copy()
    n_series = len(sdf)
    maps = [_labels_map(x) for x in sdf["labels"].tolist()] if "labels" in sdf else [{} for _ in range(n_series)]
    for col in ("service", "code", "le"):
        if col in sdf:
            for i, val in enumerate(sdf[col].tolist()):
                # The column wins: collect read the service from the label the scrape stored it under
                # (``exported_service`` without honorLabels, where ``service`` names the scrape target).
                if isinstance(val, str) and (col == "service" or col not in maps[i]):
                    maps[i][col] = val
    metric_names = sdf["metric"].astype(str).tolist() if "metric" in sdf else [""] * n_series
    # Keys as JSON, not joined by NUL: pandas 2.2's factorize cuts object strings at a NUL byte.
    sdf["group"] = [json.dumps([name, m.get("job", ""), m.get("instance", "")]) for name, m in zip(metric_names, maps)]
    sdf["pos"] = np.arange(n_series, dtype=np.int64)
    return sdf, maps


def prepare_counters(
    series: pd.DataFrame, samples: pd.DataFrame | SampleArrays, router: TrafficMetrics = DEFAULT_ROUTER
) -> CounterTable:
    """Join samples to series, sort them and correct counter resets and re-creations.

    Memory, traced: 10 bytes a sample kept and 38 at the peak when the samples are already in
    series and time order (as collect writes a window that fits one row group: the sample arrays
    themselves are kept), 26 and 54 when they must be sorted; no sample-sized pandas object is made.
    """
    sdf, maps = _series_frame(series)
    n_series = len(sdf)

    arrays = samples if isinstance(samples, SampleArrays) else SampleArrays.from_frame(samples)
    ids = sdf["series_id"].astype("int64").to_numpy() if n_series else np.zeros(0, dtype=np.int64)
    pos = _positions(ids, np.asarray(arrays.series_id))
    t, v = np.asarray(arrays.ms, dtype=np.int64), np.asarray(arrays.value, dtype=np.float64)
    keep = (pos >= 0) & ~np.isnan(v)
    if not keep.all():
        pos, t, v = pos[keep], t[keep], v[keep]
    del keep

    keys = pos.astype(np.int64)
    keys *= _STRIDE
    keys += t
    if keys.size > 1 and not bool(np.all(keys[1:] >= keys[:-1])):
        order = np.argsort(keys, kind="stable")
        # One array at a time: each old one is dropped before the next is reordered.
        keys = keys[order]
        pos = pos[order]
        t = t[order]
        v = v[order]
        del order
    # One sample per series and time (the last one wins).
    if keys.size > 1:
        dup = keys[1:] == keys[:-1]
        if dup.any():
            last_of_key = np.r_[~dup, True]
            keys, pos, t, v = keys[last_of_key], pos[last_of_key], t[last_of_key], v[last_of_key]
        del dup

    n = keys.size
    same = np.zeros(n, dtype=bool)
    if n > 1:
        same[1:] = pos[1:] == pos[:-1]
    starts = np.flatnonzero(~same)
    ends = np.r_[starts[1:] - 1, n - 1] if n else starts

    # Per metric and target (the group): its first scrape in the bundle and its usual scrape
    # interval, the median spacing of each series' own samples (the union of an HA pair's
    # interleaved scrapes would halve it).
    group_codes, groups = pd.factorize(sdf["group"])
    group_codes = np.asarray(group_codes, dtype=np.int32)
    # A Traefik service's series appear and vanish together; a series without a service label
    # is its own group's only family, so it is never judged re-created.
    service_codes, _ = pd.factorize(
        pd.Series([json.dumps([g, m["service"]]) if m.get("service") else g for g, m in zip(sdf["group"], maps)], dtype=object)
    )
    service_codes = np.asarray(service_codes, dtype=np.int32)
    first_scrape = np.full(len(groups), np.iinfo(np.int64).max, dtype=np.int64)
    interval = np.zeros(len(groups), dtype=np.int64)
    # Each series' samples are contiguous: the spacing is worked out series by series, so no
    # sample-sized array of spacings or limits is made.
    segments = [(a, b, int(group_codes[p])) for a, b, p in zip(starts.tolist(), ends.tolist(), pos[starts].tolist(), strict=True)]
    if n:
        np.minimum.at(first_scrape, group_codes[pos[starts]], t[starts])
        by_group: dict[int, list[IntArray]] = {}
        for a, b, g in segments:
            if b > a:
                by_group.setdefault(g, []).append(np.diff(t[a : b + 1]))
        for g, parts in by_group.items():
            interval[g] = int(np.median(np.concatenate(parts)))
        del by_group

    reset = np.zeros(n, dtype=bool)
    if n > 1:
        reset[1:] = same[1:] & (v[1:] < v[:-1])
        # Holes longer than two scrape intervals of the series' group: candidates for a re-creation.
        found = [
            np.flatnonzero(np.diff(t[a : b + 1]) > 2 * interval[g]) + (a + 1) for a, b, g in segments if b > a and interval[g] > 0
        ]
        holes = np.concatenate(found) if found else np.zeros(0, dtype=np.int64)
        if holes.size:
            reset[holes] |= _recreated(group_codes[pos], service_codes[pos], t, holes)
    first = np.full(n_series, -1, dtype=np.int64)
    last = np.full(n_series, -1, dtype=np.int64)
    resets = np.flatnonzero(reset)
    if n:
        first[pos[starts]] = starts
        last[pos[starts]] = ends
    if resets.size:
        # A reset adds the value before the drop to everything after it, within the series.
        cum = np.zeros(n, dtype=np.float64)
        cum[resets] = v[resets - 1]
        np.cumsum(cum, out=cum)
        adjusted = v + cum
        adjusted -= np.repeat(cum[starts], np.diff(np.r_[starts, n]))
        del cum
    else:
        adjusted = v  # nothing to correct: the raw values themselves (neither is ever written to)

    appeared = np.zeros(n_series, dtype=bool)
    baseline = np.zeros(n_series, dtype=np.float64)
    has = first >= 0
    if n:
        g_of = group_codes[has]
        appeared[has] = t[first[has]] > first_scrape[g_of] + interval[g_of]
        baseline[has] = np.where(appeared[has], 0.0, adjusted[first[has]])
    restarts = np.bincount(pos[reset], minlength=n_series) if n else np.zeros(n_series, dtype=np.int64)
    sdf["appeared"] = appeared
    sdf["restarts"] = restarts
    sdf["samples"] = np.where(has, last - first + 1, 0)
    return CounterTable(sdf, tuple(maps), keys, t, v, adjusted, first, last, baseline, reset, router)


#: Samples prepared at once by ``prepare_counters_within``: its peak is about 60 bytes each.
BATCH_SAMPLES = 2_000_000


def prepare_counters_within(
    series: pd.DataFrame,
    read: Callable[[IntArray], SampleArrays],
    counts: Mapping[int, int],
    lo: int,
    hi: int,
    whole: Sequence[int] | IntArray = (),
    router: TrafficMetrics = DEFAULT_ROUTER,
    batch_samples: int = BATCH_SAMPLES,
) -> CounterTable | None:
    """Return a counter table exact for times in ``[lo, hi]``, prepared a batch of series at a time.

    ``read(ids)`` returns those series' samples; ``counts`` is each series id's number of samples.
    Series are prepared with ``prepare_counters`` in batches of whole groups (metric, job, instance:
    every statistic it uses is a series' or a group's own), so each batch is exactly what the
    whole window gives; then only the samples in ``[lo, hi]`` are kept, with each series' first
    sample, its last before ``lo`` (flagged as a reset when any came after the first) and its
    first after ``hi``; the series in ``whole`` (Flagger's gauges) keep every sample.  Memory is a
    batch of the window and the range's samples, not the window.  None when the series table
    cannot be split so (a series id listed twice): prepare the whole window instead.
    """
    sdf, _ = _series_frame(series)
    ids = sdf["series_id"].astype("int64").to_numpy() if len(sdf) else np.zeros(0, dtype=np.int64)
    if distinct(ids).size != ids.size:
        return None
    whole_mask = np.isin(ids, np.asarray(whole, dtype=np.int64))
    batches: list[list[int]] = []
    size = 0
    for rows in sdf.groupby("group", sort=False).indices.values():
        n = sum(int(counts.get(int(ids[r]), 0)) for r in rows)
        if not batches or (size > 0 and size + n > batch_samples):
            batches.append([])
            size = 0
        batches[-1].extend(int(r) for r in rows)
        size += n
    parts: list[tuple[IntArray, IntArray, FloatArray, FloatArray, BoolArray]] = []
    n_series = len(sdf)
    appeared = np.zeros(n_series, dtype=bool)
    restarts = np.zeros(n_series, dtype=np.int64)
    n_samples = np.zeros(n_series, dtype=np.int64)
    baseline = np.zeros(n_series, dtype=np.float64)
    labels: list[dict[str, str]] = [{} for _ in range(n_series)]
    for rows in batches:
        at = np.asarray(sorted(rows), dtype=np.int64)
        sub = prepare_counters(series.iloc[at], read(np.asarray(ids[at], dtype=np.int64)), router)
        appeared[at] = sub.series["appeared"].to_numpy()
        restarts[at] = sub.series["restarts"].to_numpy()
        n_samples[at] = sub.series["samples"].to_numpy()
        baseline[at] = sub.baseline
        for local, row in enumerate(at.tolist()):
            labels[row] = sub.labels[local]
        parts.append(_cut(sub, at, lo, hi, whole_mask[at]))
        del sub
    pos = np.concatenate([x[0] for x in parts]) if parts else np.zeros(0, dtype=np.int64)
    t = np.concatenate([x[1] for x in parts]) if parts else np.zeros(0, dtype=np.int64)
    raw = np.concatenate([x[2] for x in parts]) if parts else np.zeros(0)
    adjusted = np.concatenate([x[3] for x in parts]) if parts else np.zeros(0)
    reset = np.concatenate([x[4] for x in parts]) if parts else np.zeros(0, dtype=bool)
    keys = pos * _STRIDE + t
    order = np.argsort(keys, kind="stable")
    keys, pos, t, raw, adjusted, reset = keys[order], pos[order], t[order], raw[order], adjusted[order], reset[order]
    first = np.full(n_series, -1, dtype=np.int64)
    last = np.full(n_series, -1, dtype=np.int64)
    if pos.size:
        starts = np.flatnonzero(np.r_[True, pos[1:] != pos[:-1]])
        first[pos[starts]] = starts
        last[pos[starts]] = np.r_[starts[1:] - 1, pos.size - 1]
    sdf["appeared"] = appeared
    sdf["restarts"] = restarts
    sdf["samples"] = n_samples
    return CounterTable(sdf, tuple(labels), keys, t, raw, adjusted, first, last, baseline, reset, router, (lo, hi), whole_mask)


def _cut(
    sub: CounterTable, at: IntArray, lo: int, hi: int, whole: BoolArray
) -> tuple[IntArray, IntArray, FloatArray, FloatArray, BoolArray]:
    """Return (positions in the whole table, times, raw, adjusted, reset) of the samples a cut table keeps."""
    n = sub.times.size
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0), np.zeros(0, dtype=bool)
    local = sub.keys // _STRIDE
    t = sub.times
    keep = (t >= lo) & (t <= hi)
    keep |= whole[local]
    reset = sub.reset.copy()
    has = np.flatnonzero(sub.first >= 0)
    first, last = sub.first[has], sub.last[has]
    keep[first] = True
    carry = np.searchsorted(sub.keys, has * _STRIDE + lo, side="left") - 1
    ok = carry >= first
    if ok.any():
        c, f = carry[ok], first[ok]
        resets = np.cumsum(sub.reset, dtype=np.int64)
        reset[c] = (resets[c] - resets[f]) > 0  # every reset since the first sample, on the sample kept last before lo
        keep[c] = True
    following = np.searchsorted(sub.keys, has * _STRIDE + hi, side="right")
    ok = following <= last
    keep[following[ok]] = True
    idx = np.flatnonzero(keep)
    return at[local[idx]], t[idx], sub.raw[idx], sub.adjusted[idx], reset[idx]


def histogram_quantile(q: float, bounds: FloatArray, counts: FloatArray) -> FloatArray:
    """Return Prometheus' ``histogram_quantile(q)`` for each column of ``counts[bucket, time]``.

    ``bounds`` are the buckets' ``le`` values, sorted and distinct, the last one ``+Inf``.
    A column with no observations, or histograms without a ``+Inf`` bucket or with fewer than
    two buckets, give NaN.
    """
    c = np.asarray(counts, dtype=np.float64)
    n_times = c.shape[1] if c.ndim == 2 else 0
    b = np.asarray(bounds, dtype=np.float64)
    if np.isnan(q):
        return np.full(n_times, np.nan)
    if q < 0:
        return np.full(n_times, -np.inf)
    if q > 1:
        return np.full(n_times, np.inf)
    if b.size < 2 or not np.isposinf(b[-1]) or n_times == 0:
        return np.full(n_times, np.nan)
    c = np.maximum.accumulate(np.nan_to_num(c, nan=0.0), axis=0)
    total = c[-1]
    rank = q * total
    idx = np.argmax(c >= rank[None, :], axis=0)
    below = np.where(idx > 0, c[np.maximum(idx - 1, 0), np.arange(n_times)], 0.0)
    in_bucket = c[idx, np.arange(n_times)] - below
    start = np.where(idx > 0, b[np.maximum(idx - 1, 0)], 0.0)
    end = b[idx]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(in_bucket > 0, (rank - below) / np.where(in_bucket > 0, in_bucket, 1.0), 0.0)
        out = start + (np.where(np.isinf(end), 0.0, end) - start) * frac
    out = np.where(idx == b.size - 1, b[-2], out)
    out = np.where((idx == 0) & (b[0] <= 0), b[0], out)
    return np.where(total > 0, out, np.nan)
