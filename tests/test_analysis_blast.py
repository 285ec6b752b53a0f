"""Blast radius and detection lag on hand-made traffic and events."""

from __future__ import annotations

import numpy as np
import pytest

from evidence.analysis.blast import blast_radius
from evidence.analysis.counters import prepare_counters
from evidence.analysis.criteria import evaluate_criteria
from evidence.analysis.lag import detection_lag
from evidence.analysis.timeline import build_timeline
from evidence.analysis.traffic import scrape_times
from evidence.policy import default_policy
from tests.test_analysis_support import Frames, at, event, events_frame, ms

C = "podinfo.shop"
TIMES = list(range(0, 901, 15))


def rollout_events(rollback: float = 420) -> list[dict]:
    return [
        event(0, "new-revision", "New revision detected! Scaling up podinfo.shop"),
        event(60.005, "advance", f"Advance {C} canary weight 10", weight=10),
        event(180.005, "advance", f"Advance {C} canary weight 20", weight=20),
        event(300.005, "halt", f"Halt {C} advancement success rate 80.00% < 99%", metric="request-success-rate", value=80.0),
        event(rollback, "rollback", f"Rolling back {C} failed checks threshold reached 1", weight=0),
        event(rollback + 0.01, "failed", f"Canary failed! Scaling down {C}", weight=0),
    ]


def frames(canary_share: float) -> Frames:
    """40 requests per 15 s; the canary takes ``canary_share`` x weight of them from 60 s to the rollback at 420 s."""
    f = Frames()
    primary_ok, primary_err, canary_ok, canary_err = [], [], [], []
    p_ok = p_err = c_ok = c_err = 0.0
    canary_times = []
    for t in TIMES:
        weight = 0.10 if 60 < t <= 180 else 0.20 if 180 < t <= 420 else 0.0
        c = round(40 * weight * canary_share)
        p_ok += 40 - c - (1 if t % 60 == 0 else 0)
        p_err += 1 if t % 60 == 0 else 0  # 1 error a minute: 160 requests -> 0.625 %
        primary_ok.append(p_ok)
        primary_err.append(p_err)
        if 60 < t <= 435 and canary_share > 0:
            errors = round(c * 0.25) if t > 240 else 0
            c_ok += c - errors
            c_err += errors
            canary_ok.append(c_ok)
            canary_err.append(c_err)
            canary_times.append(t)
    f.requests("primary", TIMES, primary_ok, primary_err)
    if canary_times:
        f.requests("canary", canary_times, canary_ok, canary_err)
    return f


def test_counts_exposure_and_excess_errors() -> None:
    f = frames(1.0)
    tab = prepare_counters(f.series_frame(), f.samples_frame())
    tl = build_timeline(events_frame(rollout_events()), at(0), at(900))
    b = blast_radius(tab, tl, at(0), at(900), scrape_times(tab, ms(0), ms(900)))
    # 4 canary requests a scrape at 10 % (75..180 s: 8 scrapes), 8 at 20 % (195..420 s: 16 scrapes).
    expected_requests = 4 * 8 + 8 * 16
    expected_errors = 2 * 12  # 25 % of 8 from 255 s to 420 s: 12 scrapes
    assert (b.canary_requests, b.canary_errors) == (expected_requests, expected_errors)
    assert b.max_weight == 20
    assert b.exposure_start == at(60.005) and b.exposure_end == at(420) and not b.exposure_open
    assert b.exposure_seconds == pytest.approx(359.995)
    assert b.first_canary_request_at == at(75) and b.canary_traffic_zero_at == at(420)
    assert b.primary_error_share == pytest.approx(b.primary_errors / b.primary_requests)
    assert b.expected_errors == pytest.approx(expected_requests * b.primary_error_share)
    assert b.excess_errors == pytest.approx(expected_errors - b.expected_errors)
    assert [s.weight for s in b.shares] == [10, 20] and not any(s.mismatch for s in b.shares)
    assert b.shares[0].observed_percent == pytest.approx(10.0)


def test_a_canary_that_receives_no_traffic_is_a_share_mismatch() -> None:
    f = frames(0.0)
    tab = prepare_counters(f.series_frame(), f.samples_frame())
    tl = build_timeline(events_frame(rollout_events()), at(0), at(900))
    b = blast_radius(tab, tl, at(0), at(900), scrape_times(tab, ms(0), ms(900)))
    assert (b.canary_requests, b.canary_errors) == (0, 0)
    assert b.exposure_seconds == pytest.approx(359.995)  # the weight was set all the same
    assert all(s.mismatch and s.observed_percent == 0.0 for s in b.shares)
    assert b.canary_traffic_zero_at is None


def test_an_open_exposure_runs_to_the_end_of_the_record() -> None:
    f = frames(1.0)
    tab = prepare_counters(f.series_frame(), f.samples_frame())
    tl = build_timeline(events_frame(rollout_events()[:3]), at(0), at(900))
    b = blast_radius(tab, tl, at(0), at(900), scrape_times(tab, ms(0), ms(900)))
    assert b.exposure_open and b.exposure_end == at(900)


def test_detection_lag_breakdown() -> None:
    f = frames(1.0)
    tab = prepare_counters(f.series_frame(), f.samples_frame())
    tl = build_timeline(events_frame(rollout_events()), at(0), at(900))
    times = np.array([ms(t) for t in TIMES if 60 < t <= 435])
    crit = evaluate_criteria(tab, default_policy(), times)
    b = blast_radius(tab, tl, at(0), at(900), scrape_times(tab, ms(0), ms(900)))
    lag = detection_lag(crit, tl.first_halt_at, tl.rollback_at, b.canary_traffic_zero_at)
    first = min(c.first_breach_at for c in crit if c.first_breach_at)
    assert lag.first_breach_at == first and lag.first_breach_criterion is not None
    assert lag.detection_lag_seconds == pytest.approx((at(420) - first).total_seconds())
    assert lag.breach_to_halt_seconds == pytest.approx((at(300.005) - first).total_seconds())
    assert lag.halt_to_rollback_seconds == pytest.approx(119.995)
    assert lag.rollback_to_traffic_zero_seconds == 0.0
    none = detection_lag((), None, at(420), None)
    assert none.detection_lag_seconds is None and none.first_breach_at is None


def test_a_canary_already_serving_at_the_first_scrape_is_counted_from_a_baseline_and_said_so() -> None:
    f = Frames()
    f.requests("primary", TIMES, [40.0 * i for i in range(len(TIMES))], [0.0] * len(TIMES))
    f.requests("canary", TIMES[:20], [500.0 + 4 * i for i in range(20)], [0.0] * 20)
    tab = prepare_counters(f.series_frame(), f.samples_frame())
    tl = build_timeline(events_frame(rollout_events()), at(0), at(900))
    b = blast_radius(tab, tl, at(0), at(900), scrape_times(tab, ms(0), ms(900)))
    assert b.canary_requests == 4 * 19
    assert any("baseline" in n for n in b.notes)
    clean = blast_radius(*_table_and_timeline(frames(1.0)), at(0), at(900), scrape_times(tab, ms(0), ms(900)))
    assert not any("baseline" in n for n in clean.notes)


def _table_and_timeline(f: Frames) -> tuple:
    return prepare_counters(f.series_frame(), f.samples_frame()), build_timeline(events_frame(rollout_events()), at(0), at(900))


def promotion_events(*, routing: bool) -> list[dict]:
    """Weight 10 at 60 s, 20 at 180 s, traffic back on the primary at 420 s, "Promotion completed!" at 480 s."""
    rows = [
        event(0, "new-revision", "New revision detected! Scaling up podinfo.shop"),
        event(60.005, "advance", f"Advance {C} canary weight 10", weight=10),
        event(180.005, "advance", f"Advance {C} canary weight 20", weight=20),
        event(360, "promote-start", "Copying podinfo.shop template spec to podinfo-primary.shop"),
    ]
    if routing:
        rows.append(event(420, "route-primary", "Routing all traffic to primary", weight=0))
    rows.append(event(480, "promoted", "Promotion completed! Scaling down podinfo.shop"))
    return rows


def test_a_promotion_without_its_routing_event_closes_the_exposure_when_canary_traffic_stopped() -> None:
    """client-go folded "Routing all traffic to primary" into "Promotion completed!": no open exposure, no false mismatch."""
    f = frames(1.0)
    tab = prepare_counters(f.series_frame(), f.samples_frame())
    scrapes = scrape_times(tab, ms(0), ms(900))
    full = blast_radius(
        tab, build_timeline(events_frame(promotion_events(routing=True)), at(0), at(900)), at(0), at(900), scrapes
    )
    tl = build_timeline(events_frame(promotion_events(routing=False)), at(0), at(900))
    b = blast_radius(tab, tl, at(0), at(900), scrapes)
    assert not b.exposure_open and b.canary_traffic_zero_at == at(420)
    assert b.exposure_end == at(420) == full.exposure_end
    assert b.exposure_seconds == pytest.approx(full.exposure_seconds) == pytest.approx(359.995)
    assert not any(s.mismatch for s in b.shares)
    # The last share check ends where the exposure does, not at "Promotion completed!".
    assert b.shares[-1].end == at(420) and b.shares[-1].observed_percent == pytest.approx(20.0)
    assert any("counters stopped rising" in n for n in b.notes)


def test_a_rollout_that_ended_without_a_weight_event_is_closed_at_its_traffic_zero_time() -> None:
    # Rolled back per the Canary's status, with halts but no rollback event and no gauge.
    failed = {"status": {"phase": "Failed", "lastTransitionTime": at(430).isoformat()}}
    tl = build_timeline(events_frame(rollout_events()[:4]), at(0), at(900), canary=failed)
    assert tl.outcome == "rolled_back" and tl.weight_steps[-1].weight == 20
    f = frames(1.0)
    tab = prepare_counters(f.series_frame(), f.samples_frame())
    b = blast_radius(tab, tl, at(0), at(900), scrape_times(tab, ms(0), ms(900)))
    assert not b.exposure_open and b.exposure_end == at(420)
    assert not any(s.mismatch for s in b.shares)
