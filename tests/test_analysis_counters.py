"""Window arithmetic on hand-made series: resets, gaps, re-created series, histogram quantiles."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evidence.analysis.counters import CounterTable, histogram_quantile, parse_le, prepare_counters
from fixtures import promql
from tests.test_analysis_support import Frames, ms

INF = math.inf


def table_of(f: Frames) -> CounterTable:
    return prepare_counters(f.series_frame(), f.samples_frame())


def inc(f: Frames, sid: int, t: float, w: float) -> float:
    tab = table_of(f)
    pos = np.flatnonzero(tab.series["series_id"].to_numpy() == sid)
    return float(tab.increase(pos, np.array([ms(t)]), round(w * 1000))[0, 0])


def clock(f: Frames, times: list[float]) -> None:
    """A second series scraped at every time, so that absences of the others are visible."""
    f.add("traefik_service_requests_total", "primary", [(t, 1000 + t) for t in times], code="200")


def test_increase_is_the_exact_difference_without_extrapolation() -> None:
    f = Frames()
    sid = f.add("traefik_service_requests_total", "primary", [(0, 100), (15, 130), (30, 160), (45, 175), (60, 200)], code="200")
    # (0, 60]: value at 60 minus value at 0.
    assert inc(f, sid, 60, 60) == 100
    # (15, 45]: the window edge falls on a sample: that sample is the base, excluded from the window.
    assert inc(f, sid, 45, 30) == 45
    # (20, 50]: last sample <= 50 is at 45 (175), last sample <= 20 is at 15 (130).
    assert inc(f, sid, 50, 30) == 45


def test_a_counter_reset_adds_the_value_before_the_drop() -> None:
    f = Frames()
    sid = f.add("traefik_service_requests_total", "primary", [(0, 100), (15, 130), (30, 5), (45, 20)], code="200")
    # 100 -> 130 (+30), reset to 5 (+5 from 0), -> 20 (+15): 50 in all.
    assert inc(f, sid, 45, 45) == 50
    assert inc(f, sid, 30, 15) == 5
    tab = table_of(f)
    assert int(tab.series["restarts"].iloc[sid]) == 1


def test_a_gap_of_the_whole_target_is_not_a_reset_and_its_increase_shows_after_it() -> None:
    f = Frames()
    times = [0, 15, 30, 90, 105]  # scrapes at 45, 60, 75 missed by the whole target
    sid = f.add("traefik_service_requests_total", "primary", zip(times, [0, 10, 20, 80, 90], strict=True), code="200")
    clock(f, times)
    tab = table_of(f)
    assert int(tab.series["restarts"].iloc[sid]) == 0
    # Inside the gap nothing is known: the value stays at the last sample.
    assert inc(f, sid, 75, 30) == 0
    # The 60 requests made during the gap show at the first sample after it.
    assert inc(f, sid, 90, 30) == 60
    assert inc(f, sid, 105, 105) == 90


def test_a_series_that_appears_inside_the_window_counts_its_first_sample_from_zero() -> None:
    f = Frames()
    times = [0, 15, 30, 45, 60]
    clock(f, times)
    # The canary appears at 30 with 7 requests already counted (Traefik starts it at 0).
    sid = f.add("traefik_service_requests_total", "canary", [(30, 7), (45, 19), (60, 30)], code="200")
    assert inc(f, sid, 30, 15) == 7  # PromQL's increase() would give nothing here
    assert inc(f, sid, 60, 60) == 30
    assert inc(f, sid, 15, 15) == 0
    assert bool(table_of(f).series["appeared"].iloc[sid])


def test_a_series_present_at_the_first_scrape_is_a_baseline_not_an_increase() -> None:
    f = Frames()
    times = [0, 15, 30]
    clock(f, times)
    sid = f.add("traefik_service_requests_total", "primary", [(0, 5000), (15, 5010), (30, 5030)], code="200")
    assert inc(f, sid, 30, 300) == 30
    assert not bool(table_of(f).series["appeared"].iloc[sid])


def test_a_series_deleted_and_recreated_restarts_from_zero() -> None:
    f = Frames()
    times = [0, 15, 30, 45, 60, 75, 90]
    clock(f, times)
    # Rollout one's canary series ends at 45; Traefik re-creates it for rollout two at 0.
    sid = f.add("traefik_service_requests_total", "canary", [(30, 10), (45, 30), (75, 4), (90, 12)], code="200")
    assert inc(f, sid, 75, 30) == 4
    assert inc(f, sid, 90, 90) == 42
    assert int(table_of(f).series["restarts"].iloc[sid]) == 1


def test_a_recreated_series_with_no_drop_is_read_from_its_service_s_absence() -> None:
    """Rollout one leaves the canary's 5xx series at 1; rollout two's first sample is 1 again: no drop."""
    f = Frames()
    times = list(range(0, 151, 15))
    clock(f, times)  # the primary is scraped all along, from the same target
    ok = f.add("traefik_service_requests_total", "canary", [(30, 10), (45, 20), (120, 5), (135, 9)], code="200")
    err = f.add("traefik_service_requests_total", "canary", [(30, 1), (45, 1), (120, 1), (135, 2)], code="500")
    # Rollout two's own error shows, and its requests: 1 + 1 errors, 20 + 9 requests in all.
    assert inc(f, err, 135, 30) == 2
    assert inc(f, err, 135, 135) == 3
    assert inc(f, ok, 135, 135) == 29
    tab = table_of(f)
    assert int(tab.series["restarts"].iloc[err]) == 1 and int(tab.series["restarts"].iloc[ok]) == 1
    # The 5xx series may come back later than its service's other series: still re-created.
    g = Frames()
    clock(g, times)
    g.add("traefik_service_requests_total", "canary", [(30, 10), (45, 20), (120, 5), (135, 9)], code="200")
    late = g.add("traefik_service_requests_total", "canary", [(30, 1), (45, 1), (135, 1)], code="500")
    assert inc(g, late, 135, 135) == 2


def test_a_hole_of_the_whole_metric_is_no_recreation_even_when_other_metrics_were_scraped() -> None:
    """A failed query chunk drops one metric for every service: nothing in its group says a service was gone."""
    f = Frames()
    times = list(range(0, 151, 15))
    kept = [t for t in times if not 45 < t < 120]
    f.add("traefik_service_requests_total", "primary", [(t, 1000 + t) for t in kept], code="200")
    sid = f.add("traefik_service_requests_total", "canary", [(t, 1 + t // 15) for t in kept if t >= 30], code="500")
    # Another metric of the same target answered during the hole.
    f.add("traefik_service_request_duration_seconds_bucket", "primary", [(t, 5 * t) for t in times], code="200", le="+Inf")
    assert inc(f, sid, 150, 150) == 11  # appeared at 30 with 3 (counted from 0), then up to 11
    assert int(table_of(f).series["restarts"].iloc[sid]) == 0


def test_holes_in_a_series_never_inflate_counts() -> None:
    """A failed query chunk, or an HA replica scraping seconds apart, is no re-creation."""
    f = Frames()
    times = [0, 15, 30, 45, 60, 75]
    clock(f, times)
    # Samples of 45 and 60 are missing (a failed chunk of this metric only).
    hole = f.add("traefik_service_requests_total", "primary", [(0, 1000), (15, 1010), (30, 1020), (75, 1050)], code="500")
    # Another series of the same metric comes from a replica scraping 5 s later.
    offset = f.add("traefik_service_requests_total", "primary", [(t + 5, 2000 + t) for t in times], code="404")
    tab = table_of(f)
    assert inc(f, hole, 75, 75) == 50
    assert inc(f, offset, 80, 80) == 75
    assert int(tab.series["restarts"].iloc[hole]) == 0 and int(tab.series["restarts"].iloc[offset]) == 0
    assert not bool(tab.series["appeared"].iloc[offset])


def test_absence_is_judged_per_target() -> None:
    f = Frames()
    # Flagger's target is scraped at other times than Traefik's: that is no absence.
    f.add("flagger_canary_weight", "flagger", [(t, 10) for t in (5, 20, 35, 50)], workload="podinfo")
    sid = f.add("traefik_service_requests_total", "primary", [(0, 10), (30, 20), (60, 40)], code="200")
    assert inc(f, sid, 60, 60) == 30
    assert int(table_of(f).series["restarts"].iloc[sid]) == 0


def test_values_at_many_series_and_times_at_once() -> None:
    f = Frames()
    a = f.add("traefik_service_requests_total", "primary", [(0, 1), (15, 2), (30, 3)], code="200")
    b = f.add("traefik_service_requests_total", "primary", [(0, 10), (15, 20), (30, 30)], code="500")
    tab = table_of(f)
    pos = tab.select("traefik_service_requests_total", role="primary")
    assert list(pos) == [a, b]
    got = tab.values_at(pos, np.array([ms(-5), ms(0), ms(20), ms(99)]))
    assert got.tolist() == [[1, 1, 2, 3], [10, 10, 20, 30]]
    assert tab.total_increase(pos, np.array([ms(30)]), 30_000).tolist() == [22.0]
    assert list(tab.select("traefik_service_requests_total", match={"code": "5.."})) == [b]
    assert list(tab.select("traefik_service_requests_total", match={"code": "5"})) == []  # full match, as PromQL


def test_parse_le() -> None:
    assert parse_le("+Inf") == INF and parse_le("0.3") == 0.3 and math.isnan(parse_le("x")) and math.isnan(parse_le(None))


BOUNDS = np.array([0.1, 0.3, 1.2, 5.0, INF])


def q(quantile: float, counts: list[float]) -> float:
    return float(histogram_quantile(quantile, BOUNDS, np.array(counts, dtype=float)[:, None])[0])


def test_quantile_interpolates_inside_a_bucket_and_the_first_bucket_starts_at_zero() -> None:
    # 100 observations: 50 <= 0.1, 90 <= 0.3, 100 <= 1.2.
    counts = [50, 90, 100, 100, 100]
    assert q(0.25, counts) == pytest.approx(0.05)  # rank 25 of 50 in [0, 0.1]
    assert q(0.70, counts) == pytest.approx(0.1 + 0.2 * 20 / 40)
    assert q(0.95, counts) == pytest.approx(0.3 + 0.9 * 5 / 10)


def test_a_quantile_in_the_inf_bucket_returns_the_second_highest_bound() -> None:
    counts = [10, 20, 30, 40, 100]  # 60 % of the observations above 5 s
    assert q(0.95, counts) == 5.0
    assert q(0.5, counts) == 5.0
    assert q(0.39, counts) == pytest.approx(1.2 + 3.8 * 9 / 10)


def test_quantile_edge_cases() -> None:
    assert math.isnan(q(0.95, [0, 0, 0, 0, 0]))
    no_inf = histogram_quantile(0.5, np.array([0.1, 0.3]), np.array([[1.0], [2.0]]))
    assert math.isnan(float(no_inf[0]))
    # Non-monotonic counts (a reset inside the window) are made monotonic as Prometheus does.
    assert q(0.5, [10, 5, 20, 20, 20]) == pytest.approx(0.1)
    assert float(histogram_quantile(1.5, BOUNDS, np.ones((5, 1)))[0]) == INF


@pytest.mark.parametrize("seed", range(40))
def test_quantile_matches_the_simulator_s_prometheus_reimplementation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    per = rng.integers(0, 50, size=5).astype(float)
    counts = np.cumsum(per)
    quantile = float(rng.uniform(0.01, 0.999))
    expected = promql.bucket_quantile(quantile, list(zip(BOUNDS.tolist(), counts.tolist(), strict=True)))
    got = q(quantile, counts.tolist())
    if math.isnan(expected):
        assert math.isnan(got)
    else:
        assert got == pytest.approx(expected)


def test_bucket_increases_sum_by_le_across_codes() -> None:
    f = Frames()
    f.histogram("canary", [0, 30], [[0, 10], [0, 20], [0, 30], [0, 30], [0, 30]], code="200")
    f.histogram("canary", [0, 30], [[0, 0], [0, 0], [0, 0], [0, 5], [0, 10]], code="500")
    tab = table_of(f)
    bounds, counts = tab.bucket_increases(
        tab.select("traefik_service_request_duration_seconds_bucket", "canary"), np.array([ms(30)]), 30_000
    )
    assert bounds.tolist() == BOUNDS.tolist()
    assert counts[:, 0].tolist() == [10, 20, 30, 35, 40]


def _recreated_by_sets(group: np.ndarray, service: np.ndarray, t: np.ndarray, idx: np.ndarray) -> list[bool]:
    """The definition, hole by hole: a time inside the hole when the group was scraped and the service was not."""
    out = []
    for i in idx.tolist():
        lo, hi, g, sv = int(t[i - 1]), int(t[i]), int(group[i]), int(service[i])
        group_times = {int(x) for x, gg in zip(t.tolist(), group.tolist(), strict=True) if gg == g and lo < x < hi}
        service_times = {int(x) for x, ss in zip(t.tolist(), service.tolist(), strict=True) if ss == sv and lo < x < hi}
        out.append(bool(group_times - service_times))
    return out


@pytest.mark.parametrize("seed", range(40))
def test_recreation_in_holes_is_read_exactly_as_defined(seed: int) -> None:
    """counters._recreated (merged holes, distinct times inside them only) against the per-hole definition."""
    from evidence.analysis.counters import _recreated

    rng = np.random.default_rng(seed)
    groups, services, times = [], [], []
    n_groups = int(rng.integers(1, 4))
    for g in range(n_groups):
        for s in range(int(rng.integers(1, 4))):
            service = g * 10 + s
            for _ in range(int(rng.integers(1, 3))):  # series of the service
                # Scrapes every 15 s with random holes; some series start late or end early.
                steps = np.arange(int(rng.integers(0, 5)), int(rng.integers(8, 40)))
                kept = steps[rng.random(steps.size) > rng.choice([0.0, 0.2, 0.5])]
                if kept.size == 0:
                    continue
                groups.append(np.full(kept.size, g))
                services.append(np.full(kept.size, service))
                times.append(kept * 15_000)
    if not times:
        return
    sizes = [a.size for a in times]
    group, service, t = np.concatenate(groups), np.concatenate(services), np.concatenate(times).astype(np.int64)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    first_of_series = np.zeros(t.size, dtype=bool)
    first_of_series[starts] = True
    holes = np.flatnonzero(~first_of_series & (np.diff(t, prepend=t[0]) > 30_000))
    got = _recreated(group, service, t, holes).tolist()
    assert got == _recreated_by_sets(group, service, t, holes)
