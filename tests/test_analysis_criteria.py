"""The abort criteria over hand-made traffic: values, breaches, no data, spans, custom criteria."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evidence.analysis.counters import prepare_counters
from evidence.analysis.criteria import CriterionResult, duration_text, evaluate_criteria
from evidence.analysis.traffic import canary_active, scrape_times, weight_gauge
from evidence.policy import default_policy, policy_from_dict
from tests.test_analysis_support import BUCKETS, Frames, at, ms

STEP = 15
TIMES = list(range(0, 601, STEP))


def cumulative(per_scrape: list[float]) -> list[float]:
    return np.cumsum(per_scrape).tolist()


def traffic(
    canary_ok: float, canary_err: float, primary_ok: float = 100, primary_err: float = 0.1, canary_from: int = 60
) -> Frames:
    """Steady traffic per scrape; the canary's series appear at ``canary_from``."""
    f = Frames()
    f.requests("primary", TIMES, cumulative([primary_ok] * len(TIMES)), [math.floor(primary_err * i) for i in range(len(TIMES))])
    ct = [t for t in TIMES if t >= canary_from]
    f.requests("canary", ct, cumulative([canary_ok] * len(ct)), cumulative([canary_err] * len(ct)))
    return f


def run(f: Frames, policy_data: dict | None = None, times: list[int] | None = None) -> dict[str, CriterionResult]:
    tab = prepare_counters(f.series_frame(), f.samples_frame())
    policy = policy_from_dict(policy_data) if policy_data is not None else default_policy()
    t = np.array([ms(x) for x in (times if times is not None else [x for x in TIMES if x >= 60])], dtype=np.int64)
    return {r.name: r for r in evaluate_criteria(tab, policy, t)}


def test_a_clean_canary_passes_everything() -> None:
    res = run(traffic(canary_ok=20, canary_err=0))
    assert {r.status for r in res.values()} == {"pass"}
    assert not any(r.breached for r in res.values())
    assert res["success_rate"].worst_value == 100.0
    assert res["error_rate_ratio"].worst_value == 0.0


def test_error_rate_ratio_with_the_primary_floor() -> None:
    # Canary: 1 error in 20 per scrape = 5 %; primary: 0 errors -> share floored at 0.1 %: ratio 50.
    res = run(traffic(canary_ok=19, canary_err=1, primary_err=0))
    err = res["error_rate_ratio"]
    assert err.breached and err.status == "breached"
    assert err.worst_value == pytest.approx(0.05 / 0.001)
    # Canary's first sample (20 requests at 60 s) is counted from 0, but 20 < 50 requests: no data;
    # at 75 s the 5-minute window holds 40, at 90 s 60 requests: the first evaluated time.
    assert err.first_breach_at == at(90)
    assert err.no_data_spans[0].start == at(60) and err.no_data_spans[0].end == at(75)
    assert err.no_data_spans[0].reason == "fewer than 50 canary requests in the 5m window"
    assert err.breached_spans[0].start == at(90) and err.breached_spans[0].end == at(600)


def test_error_rate_ratio_against_a_dirty_primary() -> None:
    # Primary: 1 error per 10 scrapes of 100 = 0.1 % ... at 1 error every scrape = 1 %.
    res = run(traffic(canary_ok=19, canary_err=1, primary_ok=99, primary_err=1.0))
    assert res["error_rate_ratio"].last_value == pytest.approx(0.05 / 0.01)
    assert res["error_rate_ratio"].breached


def test_success_rate_uses_a_one_minute_window() -> None:
    res = run(traffic(canary_ok=18, canary_err=2))
    ok = res["success_rate"]
    assert ok.comparator == "<" and ok.threshold == 99
    assert ok.last_value == pytest.approx(90.0)
    # 1-minute window: at 90 s it holds the canary's first three scrapes (60, 75, 90 s): 60 requests.
    assert ok.first_breach_at == at(90)
    assert ok.worst_value == pytest.approx(90.0)


def test_fewer_than_50_requests_is_no_data_never_a_breach() -> None:
    # 2 requests per scrape, all errors: a disaster, but never 50 requests in a window (8 in a
    # minute, 40 in five).
    res = run(traffic(canary_ok=0, canary_err=2))
    ok = res["success_rate"]
    assert ok.status == "no_data" and not ok.breached and ok.evaluated == 0
    assert ok.no_data_reason == "fewer than 50 canary requests in the 1m window"
    assert ok.worst_value is None and ok.first_breach_at is None
    assert res["error_rate_ratio"].status == "no_data" and not res["error_rate_ratio"].breached
    points = ok.points
    assert set(points["state"]) == {"no_data"} and points["value"].isna().all()


def test_min_requests_can_be_lowered() -> None:
    res = run(traffic(canary_ok=0, canary_err=2), {"min_requests": 5})
    assert res["success_rate"].breached and res["success_rate"].worst_value == 0.0


def test_the_primary_serving_nothing_is_no_data() -> None:
    f = Frames()
    f.requests("primary", [0, 15], [0, 0], [0, 0])
    f.requests("canary", TIMES, cumulative([30] * len(TIMES)), [0] * len(TIMES))
    res = run(f)
    assert res["error_rate_ratio"].status == "no_data"
    assert res["error_rate_ratio"].no_data_reason == "the primary served no requests in the 5m window"
    assert res["p95_latency_increase"].status == "no_data"
    assert res["success_rate"].status == "pass"


def latency(canary_buckets: list[float], primary_buckets: list[float]) -> Frames:
    """Histograms: per scrape, the given number of requests in each bucket (0.1, 0.3, 1.2, 5, +Inf only)."""
    f = Frames()
    for role, per in (("canary", canary_buckets), ("primary", primary_buckets)):
        cum_per_bucket = [cumulative([sum(per[: i + 1])] * len(TIMES)) for i in range(len(BUCKETS))]
        f.histogram(role, TIMES, cum_per_bucket)
        f.add("traefik_service_requests_total", role, zip(TIMES, cum_per_bucket[-1], strict=True), code="200")
    return f


def test_p95_latency_increase_from_the_buckets() -> None:
    # Primary: 100 per scrape, 95 under 0.1 s, 5 in (0.1, 0.3]  -> p95 = 0.1 s exactly.
    # Canary:  100 per scrape, 80 under 0.1 s, 20 in (0.1, 0.3]  -> p95 = 0.1 + 0.2 * 15/20 = 0.25 s.
    res = run(latency([80, 20, 0, 0, 0], [95, 5, 0, 0, 0]), times=TIMES)
    lat = res["p95_latency_increase"]
    assert lat.last_value == pytest.approx(0.25 / 0.1 - 1)
    assert lat.breached and lat.first_breach_at == at(15)  # the first sample (at 0 s) is a baseline


def test_latency_saturates_in_the_inf_bucket() -> None:
    # Both above 5 s for more than 5 % of requests: histogram_quantile returns 5 s for both.
    res = run(latency([50, 0, 0, 0, 50], [90, 0, 0, 0, 10]), times=TIMES[1:])
    lat = res["p95_latency_increase"]
    assert lat.last_value == pytest.approx(0.0)
    assert not lat.breached


def test_custom_ratio_and_gauge_criteria() -> None:
    f = traffic(canary_ok=20, canary_err=0)
    f.add("traefik_service_requests_total", "canary", [(t, 3 * (t - 60) / 15 + 3) for t in TIMES if t >= 60], code="404")
    f.add("flagger_canary_metric_analysis", "flagger", [(t, 98.5) for t in TIMES], labels_={"metric": "request-success-rate"})
    res = run(
        f,
        {
            "criteria": {
                "not_found": {
                    "kind": "ratio",
                    "numerator": {"metric": "traefik_service_requests_total", "role": "canary", "match": {"code": "404"}},
                    "denominator": {"metric": "traefik_service_requests_total", "role": "canary"},
                    "scale": 100,
                    "window": "1m",
                    "breach_when": ">",
                    "threshold": 10,
                },
                "flagger_success": {
                    "kind": "gauge",
                    "series": {"metric": "flagger_canary_metric_analysis", "role": "flagger"},
                    "aggregate": "min",
                    "window": "1m",
                    "breach_when": "<",
                    "threshold": 99,
                    "min_requests": 0,
                },
            }
        },
    )
    nf = res["not_found"]
    assert nf.last_value == pytest.approx(3 / 23 * 100)
    assert nf.breached
    gauge = res["flagger_success"]
    assert gauge.evaluated == len([t for t in TIMES if t >= 60]) and gauge.last_value == 98.5 and gauge.breached


def test_no_evaluation_time_is_no_data_with_the_given_reason() -> None:
    res = run(traffic(canary_ok=20, canary_err=0), times=[])
    assert all(r.status == "no_data" and r.no_data_reason for r in res.values())
    assert all(r.points.empty for r in res.values())


def test_canary_active_from_the_weight_gauge_and_the_counters() -> None:
    f = traffic(canary_ok=20, canary_err=0, canary_from=60)
    f.weight([(t, 10 if 45 <= t < 300 else 0) for t in TIMES])
    tab = prepare_counters(f.series_frame(), f.samples_frame())
    weights = weight_gauge(tab, "podinfo")
    assert weights.source == "flagger_canary_weight" and weights.at(np.array([ms(50)])).tolist() == [10.0]
    scrapes = scrape_times(tab, ms(0), ms(600))
    active = canary_active(tab, weights, scrapes)
    on = [t for t, a in zip(TIMES, active.tolist(), strict=True) if a]
    # Weight from 45 s; after 300 s (weight 0) the canary's counters still rise in this data, so it counts.
    assert on[0] == 45 and on[-1] == 600
    f2 = traffic(canary_ok=20, canary_err=0, canary_from=60)
    f2.add("traefik_service_requests_total", "canary", [(t, 0) for t in TIMES], code="204")  # a flat series
    tab2 = prepare_counters(f2.series_frame(), f2.samples_frame())
    active2 = canary_active(tab2, weight_gauge(tab2, "podinfo"), scrape_times(tab2, ms(0), ms(600)))
    assert next(t for t, a in zip(TIMES, active2.tolist(), strict=True) if a) == 60


def test_the_scrape_after_the_weight_returns_to_zero_is_still_evaluated() -> None:
    f = Frames()
    f.requests("primary", TIMES, cumulative([100] * len(TIMES)), [0] * len(TIMES))
    ct = [t for t in TIMES if 60 <= t <= 315]
    f.requests("canary", ct, cumulative([20] * len(ct)), [0] * len(ct))
    f.weight([(t, 10 if 60 <= t < 315 else 0) for t in TIMES])
    tab = prepare_counters(f.series_frame(), f.samples_frame())
    active = canary_active(tab, weight_gauge(tab, "podinfo"), scrape_times(tab, ms(0), ms(600)))
    on = [t for t, a in zip(TIMES, active.tolist(), strict=True) if a]
    assert on[0] == 60 and on[-1] == 315


def test_duration_text() -> None:
    assert [duration_text(s) for s in (300, 60, 90, 3600, 45)] == ["5m", "1m", "1m30s", "1h", "45s"]
