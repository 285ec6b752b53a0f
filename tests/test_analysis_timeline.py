"""Flagger's timeline and outcome from hand-made event tables, one per outcome and each silent case."""

from __future__ import annotations

import numpy as np

from evidence.analysis.timeline import build_timeline, rollout_span
from evidence.analysis.traffic import StatusSeries, WeightSeries
from tests.test_analysis_support import at, event, events_frame, ms

C, T = "podinfo.shop", "podinfo.shop"


def start_rows() -> list[dict]:
    return [
        event(0, "new-revision", f"New revision detected! Scaling up {T}"),
        event(60, "start", f"Starting canary analysis for {T}"),
        event(60.01, "advance", f"Advance {C} canary weight 10", weight=10),
        event(120, "advance", f"Advance {C} canary weight 20", weight=20),
    ]


def halt(t: float, value: float = 93.5) -> dict:
    return event(
        t,
        "halt",
        f"Halt {C} advancement success rate {value:.2f}% < 99%",
        metric="request-success-rate",
        value=value,
        threshold=99.0,
        comparator="<",
    )


def test_promoted() -> None:
    rows = [
        *start_rows(),
        event(180, "promote-start", f"Copying {T} template spec to podinfo-primary.shop"),
        event(240, "route-primary", "Routing all traffic to primary", weight=0),
        event(300, "promoted", f"Promotion completed! Scaling down {T}"),
    ]
    tl = build_timeline(events_frame(rows), at(0), at(600))
    assert tl.outcome == "promoted" and tl.outcome_source == "events" and tl.confidence == "high"
    assert tl.promoted_at == at(300) and tl.rollback_at is None and tl.first_halt_at is None
    assert tl.max_weight == 20
    assert [(s.time, s.weight) for s in tl.weight_steps] == [(at(60.01), 10), (at(120), 20), (at(240), 0)]
    assert tl.first_traffic_at == at(60.01) and tl.traffic_to_primary_at == at(240)
    assert tl.promotion_started_at == at(180) and tl.analysis_ended_at == at(180)


def test_promotion_with_primary_weight_steps_ends_exposure_at_the_last_step() -> None:
    rows = [
        *start_rows(),
        event(180, "promote-start", f"Copying {T} template spec to podinfo-primary.shop"),
        event(240, "promote-step", f"Advance {C} primary weight 90", weight=10),
        event(300, "promote-step", f"Advance {C} primary weight 100"),  # weight parsed from the message
        event(360, "promoted", f"Promotion completed! Scaling down {T}"),
    ]
    tl = build_timeline(events_frame(rows), at(0), at(600))
    assert tl.traffic_to_primary_at == at(300)
    assert [s.weight for s in tl.weight_steps] == [10, 20, 10, 0]


def test_rolled_back_on_the_failed_checks_threshold() -> None:
    rows = [
        *start_rows(),
        halt(180),
        halt(240, 91.0),
        halt(300, 90.0),
        event(360, "rollback", f"Rolling back {C} failed checks threshold reached 3", failed_checks=3, weight=0),
        event(360.01, "failed", f"Canary failed! Scaling down {C}", weight=0),
    ]
    tl = build_timeline(events_frame(rows), at(0), at(600))
    assert tl.outcome == "rolled_back"
    assert tl.outcome_reason == "failed checks threshold reached (3 failed checks)"
    assert tl.first_halt_at == at(180) and tl.rollback_at == at(360) and tl.failed_at == at(360.01)
    assert next((h.metric, h.value, h.threshold, h.comparator) for h in tl.halts) == ("request-success-rate", 93.5, 99.0, "<")
    assert tl.failed_checks_reported == 3 and tl.max_weight == 20 and tl.traffic_to_primary_at == at(360)
    assert tl.analysis_ended_at == at(360)


def test_manual_rollback() -> None:
    rows = [
        *start_rows(),
        event(170, "hook-rollback", "Rollback check rollback-gate passed"),
        event(180, "rollback-manual", f"Rolling back {C} manual webhook invoked", weight=0),
        event(180.01, "failed", f"Canary failed! Scaling down {C}", weight=0),
    ]
    tl = build_timeline(events_frame(rows), at(0), at(600))
    assert (tl.outcome, tl.outcome_reason) == ("rolled_back", "manual rollback webhook invoked")
    assert tl.rollback_at == at(180)


def test_never_ready_is_a_silent_failure() -> None:
    msg = f"canary deployment {T} not ready: waiting for rollout to finish: 0 of 1 (readyThreshold 100%) updated replicas are available"
    rows = [
        event(0, "new-revision", f"New revision detected! Scaling up {T}"),
        *[event(60 * i, "not-ready", msg) for i in range(1, 6)],
        event(360, "not-ready", f'canary deployment {T} not ready: deployment "podinfo" exceeded its progress deadline'),
        event(360.01, "failed", f"Canary failed! Scaling down {C}", weight=0),
    ]
    tl = build_timeline(events_frame(rows), at(0), at(600))
    assert tl.outcome == "failed"
    assert "never became ready" in tl.outcome_reason and "no 'Rolling back' line" in tl.outcome_reason
    # The contract: rollback_at is the first "Rolling back …" or "Canary failed! …".
    assert tl.rollback_at == at(360.01) and tl.failed_at == at(360.01)
    assert tl.max_weight == 0 and tl.weight_steps == () and tl.first_traffic_at is None


def test_failed_promotion_in_flagger_1_44_sends_traffic_back_to_the_canary() -> None:
    rows = [
        *start_rows(),
        event(180, "promote-start", f"Copying {T} template spec to podinfo-primary.shop"),
        event(
            240,
            "primary-not-ready",
            "podinfo-primary.shop not ready: waiting for rollout to finish: 0 of 2 updated replicas are available",
        ),
        event(300, "promotion-failed", f"Promotion of {T} failed, primary not ready: timeout"),
    ]
    tl = build_timeline(events_frame(rows), at(0), at(600))
    assert tl.outcome == "failed" and "primary was not ready" in tl.outcome_reason
    assert tl.rollback_at is None  # no "Rolling back" and no "Canary failed!"
    assert tl.failed_at == at(300) and tl.promoted_at is None
    assert tl.weight_steps[-1].weight == 100 and tl.max_weight == 100
    assert tl.traffic_to_primary_at is None


def test_in_progress_and_unknown() -> None:
    tl = build_timeline(events_frame([*start_rows(), halt(180)]), at(0), at(600))
    assert tl.outcome == "in_progress" and tl.first_halt_at == at(180)
    tl = build_timeline(
        events_frame([*start_rows()]),
        at(0),
        at(600),
        canary={"status": {"phase": "Progressing", "lastTransitionTime": at(120).isoformat()}},
    )
    assert tl.outcome == "in_progress" and "Progressing" in tl.outcome_reason
    tl = build_timeline(events_frame([]), at(0), at(600))
    assert (tl.outcome, tl.outcome_source, tl.confidence) == ("unknown", "none", "low")


def test_canary_status_is_the_fallback_when_the_terminal_events_are_missing() -> None:
    status = {"status": {"phase": "Succeeded", "lastTransitionTime": at(400).isoformat().replace("+00:00", "Z")}}
    tl = build_timeline(events_frame(start_rows()), at(0), at(600), canary=status)
    assert (tl.outcome, tl.outcome_source, tl.confidence) == ("promoted", "canary-status", "low")
    assert any("Canary's status" in n for n in tl.notes)
    failed = {"status": {"phase": "Failed", "lastTransitionTime": at(400).isoformat()}}
    tl = build_timeline(events_frame([*start_rows(), halt(180)]), at(0), at(600), canary=failed)
    assert (tl.outcome, tl.outcome_source) == ("rolled_back", "canary-status")
    tl = build_timeline(events_frame([]), at(0), at(600), canary=failed)
    assert tl.outcome == "failed" and "do not say" in tl.outcome_reason
    # A status older than the rollout describes an earlier one: not used.
    stale = {"status": {"phase": "Succeeded", "lastTransitionTime": at(-3600).isoformat()}}
    tl = build_timeline(events_frame(start_rows()), at(0), at(600), canary=stale)
    assert tl.outcome == "in_progress" and any("predates" in n for n in tl.notes)


def test_canary_failed_after_halts_without_the_rolling_back_line_is_inferred() -> None:
    rows = [*start_rows(), halt(180), halt(240), event(300, "failed", f"Canary failed! Scaling down {C}", weight=0)]
    tl = build_timeline(events_frame(rows), at(0), at(600))
    assert tl.outcome == "rolled_back" and tl.outcome_reason.startswith("inferred")
    assert tl.confidence == "medium" and tl.rollback_at == at(300)


def test_kubernetes_only_events_lower_the_confidence() -> None:
    k8s = {"sources": "k8s"}
    rows = [
        event(0, "new-revision", f"New revision detected! Scaling up {T}", **k8s, k8s_count=2, cross_rollout=True),
        event(60, "advance", f"Advance {C} canary weight 10", weight=10, **k8s, k8s_count=1),
        event(
            240,
            "halt",
            f"Halt {C} advancement success rate 90.00% < 99%",
            metric="request-success-rate",
            value=90.0,
            threshold=99.0,
            comparator="<",
            **k8s,
            k8s_count=3,
        ),
        event(
            300, "rollback", f"Rolling back {C} failed checks threshold reached 3", weight=0, **k8s, aggregated=True, k8s_count=1
        ),
        event(300, "failed", f"Canary failed! Scaling down {C}", weight=0, **k8s, k8s_count=1),
    ]
    tl = build_timeline(events_frame(rows), at(0), at(600))
    assert tl.outcome == "rolled_back" and tl.confidence == "low"
    assert tl.halts[0].occurrences == 3
    text = " ".join(tl.notes)
    assert "only from the Kubernetes Events API" in text
    assert "aggregated by client-go" in text
    assert "deduplicated with an older rollout" in text
    assert "halt count is a lower bound" in text
    assert all(e.lossy for e in tl.entries)


def test_weight_steps_come_from_the_gauge_when_the_events_have_none() -> None:
    rows = [event(0, "new-revision", f"New revision detected! Scaling up {T}")]
    gauge = WeightSeries(np.array([ms(t) for t in (30, 75, 135, 195)]), np.array([0.0, 10.0, 20.0, 0.0]), "flagger_canary_weight")
    tl = build_timeline(events_frame(rows), at(0), at(600), gauge=gauge)
    assert [(s.time, s.weight, s.action) for s in tl.weight_steps] == [
        (at(75), 10, "gauge"),
        (at(135), 20, "gauge"),
        (at(195), 0, "gauge"),
    ]
    assert tl.max_weight == 20 and tl.first_traffic_at == at(75) and tl.traffic_to_primary_at == at(195)
    # With events, a higher gauge still raises max_weight and says the events miss a step.
    tl = build_timeline(events_frame(start_rows()[:3]), at(0), at(600), gauge=gauge)
    assert tl.max_weight == 20 and any("weight events are missing" in n for n in tl.notes)


def test_rollout_span_cuts_at_the_next_rollout() -> None:
    rows = [
        event(-3000, "new-revision", f"New revision detected! Scaling up {T}"),
        *start_rows(),
        event(900, "new-revision", f"New revision detected! Scaling up {T}"),
    ]
    ev = events_frame(rows)
    start, end, how = rollout_span(ev, at(-3600), at(1800), at(0))
    assert (start, end) == (at(0), at(900)) and "later rollout" in how
    start, end, how = rollout_span(ev, at(-3600), at(1800), None)
    assert start == at(900) and end == at(1800) and "latest new-revision" in how
    # Events of the earlier rollout are outside the timeline.
    tl = build_timeline(ev, at(0), at(900))
    assert tl.started_at == at(0) and len([e for e in tl.entries if e.action == "new-revision"]) == 1


def test_a_restart_resets_the_weight_and_exposure_ends_at_the_last_return_to_zero() -> None:
    rows = [
        *start_rows(),
        event(150, "restart", f"New revision detected! Restarting analysis for {T}"),
        event(210, "advance", f"Advance {C} canary weight 10", weight=10),
        event(270, "rollback", f"Rolling back {C} failed checks threshold reached 1", weight=0),
        event(270.01, "failed", f"Canary failed! Scaling down {C}", weight=0),
    ]
    tl = build_timeline(events_frame(rows), at(0), at(600))
    assert [s.weight for s in tl.weight_steps] == [10, 20, 0, 10, 0]
    assert tl.restarts == 1 and any("restarted 1 time" in n for n in tl.notes)
    assert tl.first_traffic_at == at(60.01) and tl.traffic_to_primary_at == at(270)


def promotion_without_routing(*, k8s: bool = True) -> list[dict]:
    """A promotion whose "Routing all traffic to primary" client-go folded into "Promotion completed!"."""
    src = {"sources": "k8s", "k8s_count": 1} if k8s else {}
    return [
        event(0, "new-revision", f"New revision detected! Scaling up {T}", **src),
        event(60, "advance", f"Advance {C} canary weight 10", weight=10, **src),
        event(120, "advance", f"Advance {C} canary weight 20", weight=20, **src),
        event(180, "promote-start", f"Copying {T} template spec to podinfo-primary.shop", **src),
        event(300, "promoted", f"Promotion completed! Scaling down {T}", **{**src, "aggregated": k8s, "k8s_count": 2}),
    ]


def test_a_completed_promotion_sets_the_weight_to_0_when_no_event_did() -> None:
    tl = build_timeline(events_frame(promotion_without_routing()), at(0), at(600))
    assert tl.outcome == "promoted" and tl.promoted_at == at(300)
    assert [(s.time, s.weight, s.action) for s in tl.weight_steps][-1] == (at(300), 0, "promoted")
    assert tl.traffic_to_primary_at == at(300) and tl.max_weight == 20
    # A later step says otherwise: it wins (a failed promotion sends traffic back to the canary).
    rows = [*promotion_without_routing(k8s=False), event(360, "route-canary", "Routing all traffic to canary", weight=100)]
    tl = build_timeline(events_frame(rows), at(0), at(600))
    assert tl.weight_steps[-1].weight == 100 and tl.traffic_to_primary_at is None


def test_the_weight_gauge_dates_the_return_to_0_that_only_promotion_completed_implies() -> None:
    # Flagger set the canary to 0 at 240 s (scraped at 255 s); "Promotion completed!" came at 300 s.
    gauge = WeightSeries(
        np.array([ms(t) for t in (15, 75, 135, 195, 255, 315)]),
        np.array([0.0, 10.0, 20.0, 20.0, 0.0, 0.0]),
        "flagger_canary_weight",
    )
    tl = build_timeline(events_frame(promotion_without_routing()), at(0), at(600), gauge=gauge)
    assert (tl.weight_steps[-1].time, tl.weight_steps[-1].weight, tl.weight_steps[-1].action) == (at(255), 0, "gauge")
    assert tl.traffic_to_primary_at == at(255) and tl.promoted_at == at(300)
    assert any("weight gauge shows it at 0 from" in n for n in tl.notes)
    # Events with no return to 0 at all (the terminal events were lost): the gauge's drop is added.
    tl = build_timeline(events_frame(promotion_without_routing()[:3]), at(0), at(600), gauge=gauge)
    assert tl.weight_steps[-1].weight == 0 and tl.traffic_to_primary_at == at(255)


def test_a_failed_canary_whose_weight_gauge_fell_to_0_was_rolled_back() -> None:
    """Only the Canary object (status Failed) and the gauge: the drop is the rollback, with low confidence."""
    gauge = WeightSeries(
        np.array([ms(t) for t in (15, 75, 135, 195, 255, 315, 375)]),
        np.array([0.0, 10.0, 20.0, 40.0, 40.0, 0.0, 0.0]),
        "flagger_canary_weight",
    )
    failed = {"status": {"phase": "Failed", "lastTransitionTime": at(310).isoformat()}}
    tl = build_timeline(events_frame([]), at(0), at(600), canary=failed, gauge=gauge)
    assert tl.outcome == "rolled_back" and tl.outcome_source == "canary-status" and tl.confidence == "low"
    assert tl.rollback_at == at(315) and tl.traffic_to_primary_at == at(315) and tl.max_weight == 40
    assert tl.rollback_inferred
    assert "inferred" in tl.outcome_reason
    assert any("the rollback is inferred from the Canary's status" in n for n in tl.notes)
    # A canary that never took weight and failed is no rollback.
    flat = WeightSeries(np.array([ms(t) for t in (15, 75)]), np.array([0.0, 0.0]), "flagger_canary_weight")
    tl = build_timeline(events_frame([]), at(0), at(600), canary=failed, gauge=flat)
    assert tl.outcome == "failed" and tl.rollback_at is None


def test_a_status_set_after_the_span_belongs_to_a_later_rollout_and_decides_nothing() -> None:
    """The Canary object is its state at collection: a later rollout's Failed must not roll this one back."""
    gauge = WeightSeries(
        np.array([ms(t) for t in (15, 75, 135, 195, 255, 315, 375)]),
        np.array([0.0, 10.0, 20.0, 40.0, 40.0, 0.0, 0.0]),
        "flagger_canary_weight",
    )
    later = {"status": {"phase": "Failed", "lastTransitionTime": at(3600 + 480).isoformat()}}
    for rows in ([], start_rows()):
        tl = build_timeline(events_frame(rows), at(0), at(600), canary=later, gauge=gauge)
        assert tl.outcome == "unknown" and tl.outcome_source == "none" and tl.confidence == "low"
        assert tl.rollback_at is None and not tl.rollback_inferred
        assert tl.traffic_to_primary_at == at(315)  # the exposure still closes where the weight fell
        assert any("set after the evaluated span" in n for n in tl.notes)
    # Without a weight back at 0, the rollout may still be running: in progress, not rolled back.
    tl = build_timeline(events_frame([*start_rows(), halt(180)]), at(0), at(600), canary=later)
    assert tl.outcome == "in_progress" and tl.rollback_at is None
    # The same status inside the span (within Kubernetes' one-second precision of its end) is used.
    now = {"status": {"phase": "Failed", "lastTransitionTime": at(601).isoformat()}}
    tl = build_timeline(events_frame([]), at(0), at(600), canary=now, gauge=gauge)
    assert tl.outcome == "rolled_back" and tl.rollback_at == at(315) and tl.rollback_inferred


def test_rollback_inferred_only_without_a_rollback_event() -> None:
    rows = [*start_rows(), halt(180), event(240, "rollback", f"Rolling back {C} failed checks threshold reached 1", weight=0)]
    tl = build_timeline(events_frame(rows), at(0), at(600))
    assert tl.rollback_at == at(240) and not tl.rollback_inferred
    rows = [*start_rows(), halt(180), event(240, "failed", f"Canary failed! Scaling down {C}", weight=0)]
    tl = build_timeline(events_frame(rows), at(0), at(600))
    assert tl.outcome == "rolled_back" and tl.rollback_at == at(240) and not tl.rollback_inferred


def status_gauge(*points: tuple[float, float]) -> StatusSeries:
    """Flagger's flagger_canary_status as scraped: (seconds, value) — 0 Progressing, 2 Failed, 1 any other phase."""
    return StatusSeries(np.array([ms(t) for t, _ in points]), np.array([float(v) for _, v in points]))


def weight_gauge(*points: tuple[float, float]) -> WeightSeries:
    return WeightSeries(np.array([ms(t) for t, _ in points]), np.array([float(v) for _, v in points]), "flagger_canary_weight")


def test_flagger_s_status_gauge_decides_when_no_event_and_no_canary_status_do() -> None:
    """No event, and the Canary's status (Failed at +4080 s) is a later rollout's: the status gauge is the fallback."""
    later = {
        "spec": {"analysis": {"stepWeight": 10, "maxWeight": 40}},
        "status": {"phase": "Failed", "lastTransitionTime": at(4080).isoformat()},
    }
    weights = weight_gauge((15, 0), (75, 10), (135, 20), (195, 40), (255, 40), (315, 0), (375, 0))
    # 0 → 2 after the canary took weight: rolled back at the first scrape that shows Failed.
    failed = status_gauge((-45, 1), (15, 0), (75, 0), (135, 0), (195, 0), (255, 0), (315, 2), (375, 2))
    tl = build_timeline(events_frame([]), at(0), at(600), canary=later, gauge=weights, status=failed)
    assert (tl.outcome, tl.outcome_source, tl.confidence) == ("rolled_back", "status-gauge", "low")
    assert tl.rollback_at == at(315) and tl.rollback_inferred and tl.failed_at == at(315)
    assert tl.promoted_at is None and tl.traffic_to_primary_at == at(315) and tl.max_weight == 40
    assert tl.outcome_reason.startswith("from flagger_canary_status: 0 (Progressing) → 2 (Failed) at 2026-11-20T10:05:15Z")
    assert any("the outcome comes from Flagger's flagger_canary_status gauge" in n for n in tl.notes)
    assert any("set after the evaluated span" in n for n in tl.notes)
    # ... the halts the record kept are named.
    tl = build_timeline(events_frame([*start_rows(), halt(180)]), at(0), at(600), canary=later, gauge=weights, status=failed)
    assert tl.outcome == "rolled_back" and "after 1 halt(s)" in tl.outcome_reason and tl.rollback_at == at(315)
    # 0 → 2 with the weight never above 0 (never ready): failed, not rolled back; the same time.
    flat = weight_gauge((15, 0), (375, 0))
    tl = build_timeline(events_frame([]), at(0), at(600), canary=later, gauge=flat, status=failed)
    assert (tl.outcome, tl.rollback_at, tl.rollback_inferred) == ("failed", at(315), True)
    assert "weight never above 0" in tl.outcome_reason
    # A WaitingPromotion (1) that Flagger then failed (2): failed at the 2.
    waiting = status_gauge((15, 0), (255, 1), (315, 2))
    tl = build_timeline(events_frame([]), at(0), at(600), canary=later, gauge=weights, status=waiting)
    assert (tl.outcome, tl.rollback_at) == ("rolled_back", at(315))

    # 0 → 1 with the weight at the last step (maxWeight 40) and back at 0: promoted, but no promotion time.
    done = status_gauge((-45, 1), (15, 0), (75, 0), (135, 0), (195, 0), (255, 1), (315, 1), (375, 1))
    tl = build_timeline(events_frame([]), at(0), at(600), canary=later, gauge=weights, status=done)
    assert (tl.outcome, tl.outcome_source, tl.confidence) == ("promoted", "status-gauge", "low")
    assert tl.promoted_at is None and tl.rollback_at is None and not tl.rollback_inferred and tl.failed_at is None
    assert tl.traffic_to_primary_at == at(315)
    assert any("flagger_canary_status gauge" in n and "promoted_at stays empty" in n for n in tl.notes)
    # stepWeights: the last step is their last element (60 here), which the canary did not reach.
    steps = {**later, "spec": {"analysis": {"stepWeights": [5, 10, 20, 40, 60]}}}
    tl = build_timeline(events_frame([]), at(0), at(600), canary=steps, gauge=weights, status=done)
    assert tl.outcome == "unknown" and any("not the last step 60 %" in n for n in tl.notes)
    # Without the Canary's spec the last step is unknown: no promotion claimed.
    tl = build_timeline(events_frame([]), at(0), at(600), canary={"status": later["status"]}, gauge=weights, status=done)
    assert tl.outcome == "unknown" and any("spec" in n and "does not decide" in n for n in tl.notes)
    # A 1 with the canary still weighted (WaitingPromotion at the last step): no promotion.
    held = weight_gauge((15, 0), (75, 10), (135, 20), (195, 40), (375, 40))
    tl = build_timeline(events_frame([]), at(0), at(600), canary=later, gauge=held, status=done)
    assert tl.outcome == "unknown" and tl.rollback_at is None

    # Otherwise nothing changes: still Progressing, a 2 that is an earlier rollout's, or no 0 → x at all.
    for gauge in (status_gauge((15, 0), (375, 0)), status_gauge((-45, 2), (15, 2), (375, 2)), status_gauge((15, 1), (375, 1))):
        tl = build_timeline(events_frame([]), at(0), at(600), canary=later, gauge=weights, status=gauge)
        assert (tl.outcome, tl.outcome_source, tl.rollback_at) == ("unknown", "none", None)
    tl = build_timeline(events_frame([*start_rows(), halt(180)]), at(0), at(600), canary=later, status=status_gauge((15, 0)))
    assert tl.outcome == "in_progress"


def test_events_and_a_canary_status_of_the_span_come_before_the_status_gauge() -> None:
    failed = status_gauge((15, 0), (315, 2))
    rows = [*start_rows(), event(300, "promoted", f"Promotion completed! Scaling down {T}")]
    tl = build_timeline(events_frame(rows), at(0), at(600), status=failed)
    assert (tl.outcome, tl.outcome_source, tl.rollback_at) == ("promoted", "events", None)
    succeeded = {"status": {"phase": "Succeeded", "lastTransitionTime": at(400).isoformat()}}
    tl = build_timeline(events_frame(start_rows()), at(0), at(600), canary=succeeded, status=failed)
    assert (tl.outcome, tl.outcome_source) == ("promoted", "canary-status")
    # A Canary of this span still running is what the record says now: the gauge does not override it.
    running = {"status": {"phase": "Progressing", "lastTransitionTime": at(30).isoformat()}}
    tl = build_timeline(events_frame(start_rows()), at(0), at(600), canary=running, status=failed)
    assert tl.outcome == "in_progress" and "Progressing" in tl.outcome_reason
    # A Canary status older than the rollout is an earlier one's: the gauge decides.
    stale = {"status": {"phase": "Succeeded", "lastTransitionTime": at(-3600).isoformat()}}
    tl = build_timeline(events_frame(start_rows()), at(0), at(600), canary=stale, status=failed)
    assert (tl.outcome, tl.outcome_source, tl.rollback_at) == ("rolled_back", "status-gauge", at(315))
    assert any("predates" in n for n in tl.notes)


def test_an_older_bundles_unparsed_failed_checks_are_read_again() -> None:
    import pandas as pd

    from evidence.analysis.timeline import build_timeline

    t0 = pd.Timestamp("2026-11-20T10:00:07Z")
    rows = [
        ("New revision detected! Scaling up podinfo.test", "new-revision", 0),
        ("Advance podinfo.test canary weight 10", "advance", 60),
        ("Halt podinfo.test advancement 404s percentage 6.20 > 5", "other", 120),
        ("Metric query failed for 404s percentage: 503 Service Unavailable", "error", 180),
        ("Halt podinfo.test advancement waiting for promotion approval gate", "wait", 240),
        ("Canary failed! Scaling down podinfo.test", "failed", 300),
    ]
    events = pd.DataFrame(
        {
            "time": [t0 + pd.Timedelta(seconds=s) for _, _, s in rows],
            "message": [m for m, _, _ in rows],
            "action": [a for _, a, _ in rows],
            "sources": ["log"] * len(rows),
            "type": ["Warning"] * len(rows),
        }
    )
    tl = build_timeline(events)
    assert tl.failed_checks == 2
    assert [(h.kind, h.metric, h.value) for h in tl.halts] == [
        ("halt", "404s percentage", 6.2),
        ("query-failed", "404s percentage", None),
    ]
    assert tl.outcome == "rolled_back" and tl.outcome_cause == "halts"
