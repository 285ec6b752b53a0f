"""The postmortem's timeline from an evaluation: in time order, and dated when the rollout crosses midnight."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from evidence.evaluate import Evaluation, evaluate_rollout
from evidence.policy import default_policy
from evidence.render.sections import postmortem_facts
from tests.test_analysis_evaluate import canary
from tests.test_analysis_support import Frames, at, checks_frame, event, events_frame

C = "podinfo.shop"
MIDNIGHT = 14 * 3600  # seconds after T0 (10:00 UTC) to 00:00 UTC the next day


def rollout(offset: float, rows: list[dict[str, Any]] | None = None) -> Evaluation:
    """A rollout starting ``offset`` s after T0: weight 10 then 20, the canary's 5xx at 25 % from +240 s, rolled back at +420 s.

    ``rows`` replaces Flagger's events.
    """
    f = Frames()
    times = [offset + t for t in range(0, 901, 15)]
    p_ok, p_err, c_ok, c_err = [], [], [], []
    po = pe = co = ce = 0.0
    for t in range(0, 901, 15):
        c = 4 if 60 < t <= 180 else 8 if 180 < t <= 420 else 0
        errors = c // 4 if t > 240 else 0
        po += 40 - c
        pe += 1 if t % 60 == 0 else 0
        co += c - errors
        ce += errors
        p_ok.append(po)
        p_err.append(pe)
        c_ok.append(co)
        c_err.append(ce)
    f.requests("primary", times, p_ok, p_err)
    f.requests("canary", times, c_ok, c_err)
    halt: dict[str, Any] = {"metric": "request-success-rate", "value": 75.0, "threshold": 99.0, "comparator": "<"}
    rows = rows or [
        event(offset, "new-revision", f"New revision detected! Scaling up {C}"),
        event(offset + 60.005, "advance", f"Advance {C} canary weight 10", weight=10),
        event(offset + 180.005, "advance", f"Advance {C} canary weight 20", weight=20),
        event(offset + 300.005, "halt", f"Halt {C} advancement success rate 75.00% < 99%", **halt),
        event(offset + 360.005, "halt", f"Halt {C} advancement success rate 75.00% < 99%", **halt),
        event(offset + 420.005, "rollback", f"Rolling back {C} failed checks threshold reached 2", weight=0),
        event(offset + 420.01, "failed", f"Canary failed! Scaling down {C}", weight=0),
    ]
    manifest = {
        "bundle_id": "0123456789abcdef0123456789abcdef",
        "canary": {"namespace": "shop", "name": "podinfo", "target": "podinfo"},
        "window": {"start": at(offset - 60).isoformat(), "end": at(offset + 900).isoformat()},
        "rollout": {"start": at(offset).isoformat()},
    }
    return evaluate_rollout(
        manifest=manifest,
        canary=canary(),
        series=f.series_frame(),
        samples=f.samples_frame(),
        events=events_frame(rows),
        checks=checks_frame([]),
        policy=default_policy(),
    )


def test_the_timeline_across_midnight_is_in_time_order_and_dated() -> None:
    ev = rollout(MIDNIGHT - 180)  # 23:57:00 → rolled back at 00:04:00
    assert ev.lag.first_breach_at is not None  # the policy row joins the timeline
    facts = postmortem_facts(ev, [], [])
    shown = [r["time"] for r in facts["timeline"]]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", s) for s in shown), shown
    parsed = [dt.datetime.strptime(s, "%Y-%m-%d %H:%M:%S") for s in shown]
    assert parsed == sorted(parsed)
    assert facts["timeline"][0] == {"time": "2026-11-20 23:57:00", "message": f"New revision detected! Scaling up {C}"}
    assert facts["timeline"][-1]["time"] == "2026-11-21 00:04:00"
    assert "2026-11-21 00:04:00" in facts["resolution"]


def test_a_rollout_within_one_day_shows_only_clock_times() -> None:
    facts = postmortem_facts(rollout(0), [], [])
    shown = [r["time"] for r in facts["timeline"]]
    assert shown[0] == "10:00:00" and shown == sorted(shown)
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d", s) for s in shown)


def test_the_timeline_holds_every_terminal_and_weight_changing_event() -> None:
    """The progress deadline's rollback, the promotion's primary-weight steps and traffic sent back to the canary."""
    deadline = [
        event(0, "new-revision", f"New revision detected! Scaling up {C}"),
        event(60, "advance", f"Advance {C} canary weight 10", weight=10),
        event(420, "rollback-deadline", f"Rolling back {C} progress deadline exceeded canary deployment {C} not ready", weight=0),
        event(420.01, "failed", f"Canary failed! Scaling down {C}", weight=0),
    ]
    shown = [r["message"] for r in postmortem_facts(rollout(0, deadline), [], [])["timeline"]]
    assert f"Rolling back {C} progress deadline exceeded canary deployment {C} not ready" in shown
    promotion = [
        event(0, "new-revision", f"New revision detected! Scaling up {C}"),
        event(60, "advance", f"Advance {C} canary weight 10", weight=10),
        event(180, "advance", f"Advance {C} canary weight 20", weight=20),
        event(240, "promote-start", f"Copying {C} template spec to podinfo-primary.shop"),
        event(300, "promote-step", f"Advance {C} primary weight 90", weight=10),
        event(360, "promote-step", f"Advance {C} primary weight 100", weight=0),
        event(420, "promotion-failed", f"Promotion of {C} failed, primary not ready: timeout", weight=100),
        event(420.01, "route-canary", "Routing all traffic to canary", weight=100),
    ]
    shown = [r["message"] for r in postmortem_facts(rollout(0, promotion), [], [])["timeline"]]
    for message in (
        f"Advance {C} primary weight 90",
        f"Advance {C} primary weight 100",
        f"Promotion of {C} failed, primary not ready: timeout",
        "Routing all traffic to canary",
    ):
        assert message in shown, shown
