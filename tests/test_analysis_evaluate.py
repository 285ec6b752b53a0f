"""evaluate_bundle end to end on small bundles written with bundle_writer: the JSON contract and the summary."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from evidence.bundle import SCHEMA, SCHEMA_VERSION, bundle_writer, read_bundle
from evidence.evaluate import evaluate_bundle, evaluate_rollout
from evidence.policy import default_policy, load_policy
from evidence.render.context import summary_sentences
from evidence.render.evaluation import evaluation_to_json, format_evaluation
from tests.test_analysis_blast import frames
from tests.test_analysis_support import Frames, at, checks_frame, columns, event, events_frame

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$")
C = "podinfo.shop"


def canary(**analysis: Any) -> dict[str, Any]:
    spec_analysis = {
        "interval": "1m",
        "threshold": 2,
        "stepWeight": 10,
        "maxWeight": 20,
        "metrics": [{"name": "request-success-rate", "interval": "1m", "thresholdRange": {"min": 99}}],
        "webhooks": [{"name": "gate", "type": "rollback", "url": "http://gate/"}],
    }
    spec_analysis.update(analysis)
    return {
        "apiVersion": "flagger.app/v1beta1",
        "kind": "Canary",
        "metadata": {"name": "podinfo", "namespace": "shop"},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
            "progressDeadlineSeconds": 600,
            "service": {"port": 80},
            "analysis": spec_analysis,
        },
        "status": {"phase": "Failed", "lastTransitionTime": at(420).isoformat()},
    }


def rolled_back_events() -> pd.DataFrame:
    return events_frame(
        [
            event(0, "new-revision", "New revision detected! Scaling up podinfo.shop"),
            event(60, "start", "Starting canary analysis for podinfo.shop"),
            event(60.005, "advance", f"Advance {C} canary weight 10", weight=10),
            event(180.005, "advance", f"Advance {C} canary weight 20", weight=20),
            event(
                300.005,
                "halt",
                f"Halt {C} advancement success rate 80.00% < 99%",
                metric="request-success-rate",
                value=80.0,
                threshold=99.0,
                comparator="<",
            ),
            event(
                360.005,
                "halt",
                f"Halt {C} advancement success rate 75.00% < 99%",
                metric="request-success-rate",
                value=75.0,
                threshold=99.0,
                comparator="<",
            ),
            event(420.005, "rollback", f"Rolling back {C} failed checks threshold reached 2", weight=0, failed_checks=2),
            event(420.01, "failed", f"Canary failed! Scaling down {C}", weight=0),
        ]
    )


def write_bundle(tmp: Path, name: str, f: Frames, events: pd.DataFrame, canary_obj: dict[str, Any], checks: pd.DataFrame) -> Path:
    objects = pd.DataFrame(
        [
            {
                "kind": "Canary",
                "api_version": "flagger.app/v1beta1",
                "namespace": "shop",
                "name": "podinfo",
                "role": "canary",
                "source": "dump",
                "redacted": [],
                "body": json.dumps(canary_obj, sort_keys=True),
            }
        ],
        columns=columns("objects"),
    )
    logs = pd.DataFrame({c: pd.Series(dtype="object") for c in columns("logs")})
    logs["time"] = pd.Series(dtype="datetime64[ms, UTC]")
    manifest = {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "bundle_id": "0123456789abcdef0123456789abcdef",
        "canary": {"namespace": "shop", "name": "podinfo", "target": "podinfo", "service": "podinfo", "port": 80},
        "window": {"start": "2026-11-20T09:59:00Z", "end": "2026-11-20T10:15:00Z"},
        "rollout": {"start": "2026-11-20T10:00:00Z", "end": "2026-11-20T10:07:00.010Z"},
        "queries": [{"id": "check:request-success-rate", "kind": "range", "metric": "request-success-rate", "status": "ok"}],
        "gaps": [],
    }
    with bundle_writer(tmp, name) as w:
        w.write_table("objects", objects)
        w.write_table("events", events)
        w.write_table("logs", logs)
        w.write_table("series", f.series_frame())
        w.write_table("samples", f.samples_frame())
        w.write_table("checks", checks)
        return w.commit(manifest)


@pytest.fixture
def rolled_back(tmp_path: Path) -> Path:
    checks = checks_frame(
        [
            ("request-success-rate", t, v, 99.0, None)
            for t, v in ((120, 100.0), (180, 100.0), (240, 100.0), (300, 80.0), (360, 75.0))
        ]
    )
    return write_bundle(tmp_path, "shop_podinfo_rb", frames(1.0), rolled_back_events(), canary(), checks)


def test_the_json_holds_the_contract(rolled_back: Path) -> None:
    ev = evaluate_bundle(read_bundle(rolled_back), default_policy())
    js = evaluation_to_json(ev)
    json.dumps(js, allow_nan=False)  # strict JSON
    assert js["canary"] == "shop/podinfo"
    assert js["outcome"] == "rolled_back" and js["verdict"] == "abort"
    assert [c["name"] for c in js["criteria"]] == ["error_rate_ratio", "p95_latency_increase", "success_rate"]
    for c in js["criteria"]:
        assert set(c) >= {"name", "threshold", "breached", "first_breach_at", "worst_value"}
        assert isinstance(c["threshold"], float) and isinstance(c["breached"], bool)
        assert c["first_breach_at"] is None or RFC3339.match(c["first_breach_at"])
    by = {c["name"]: c for c in js["criteria"]}
    assert by["error_rate_ratio"]["breached"] and by["error_rate_ratio"]["status"] == "breached"
    assert not by["p95_latency_increase"]["breached"]  # every request is in the 0.1 s bucket
    # At most 32 canary requests a minute: the 1-minute success rate never has data.
    assert by["success_rate"]["status"] == "no_data" and not by["success_rate"]["breached"]
    assert by["success_rate"]["no_data_reason"] == "fewer than 50 canary requests in the 1m window"
    fl = js["flagger"]
    assert fl["first_halt_at"] == "2026-11-20T10:05:00.005Z"
    assert fl["rollback_at"] == "2026-11-20T10:07:00.005Z"
    assert fl["promoted_at"] is None and fl["max_weight"] == 20 and isinstance(fl["max_weight"], int)
    assert fl["rollback_inferred"] is False  # "Rolling back …" is in the record
    first = min(c["first_breach_at"] for c in js["criteria"] if c["first_breach_at"])
    assert first == js["detection_lag"]["first_breach_at"]
    lag = (pd.Timestamp(fl["rollback_at"]) - pd.Timestamp(first)).total_seconds()
    assert js["detection_lag_seconds"] == pytest.approx(lag)
    br = js["blast_radius"]
    assert br == br | {"max_weight": 20, "canary_requests": 160, "canary_errors": 24}
    assert isinstance(br["canary_requests"], int) and isinstance(br["exposure_seconds"], float)
    assert br["exposure_seconds"] == pytest.approx(360.0)
    assert js["flagger"]["max_weight"] == br["max_weight"]


def test_the_replays_say_when_each_would_have_rolled_back(rolled_back: Path) -> None:
    js = evaluation_to_json(evaluate_bundle(read_bundle(rolled_back)))
    fl = js["replay"]["flagger"]
    assert fl["failed_checks"] == 2 and fl["threshold_reached_at"] == "2026-11-20T10:06:00Z"
    assert fl["rollback_at"] == "2026-11-20T10:07:00Z"
    po = js["replay"]["policy"]
    assert po["would_roll_back"] and po["rollback_at"] <= fl["rollback_at"]
    codes = {f["code"] for f in js["findings"]}
    assert "detection-lag" in codes and "replay-differs" not in codes


def test_the_summary_shows_verdict_outcome_criteria_lag_blast_and_findings(rolled_back: Path) -> None:
    text = format_evaluation(evaluate_bundle(read_bundle(rolled_back)))
    assert "VERDICT   ABORT: 1 of 3 criteria breached" in text
    assert "OUTCOME   rolled_back" in text
    for word in (
        "error_rate_ratio",
        "BREACHED",
        "NO DATA",
        "Detection lag",
        "rollback decision",
        "canary traffic at 0",
        "Blast radius",
        "Findings",
    ):
        assert word in text
    assert "max weight 20%, canary requests 160, 5xx 24" in text


def test_series_are_included_on_request(rolled_back: Path) -> None:
    js = evaluation_to_json(evaluate_bundle(read_bundle(rolled_back)), include_series=True)
    series = js["criteria"][0]["series"]
    assert series and {"t", "value", "state", "canary_requests"} <= set(series[0])
    json.dumps(js, allow_nan=False)


def test_a_canary_that_was_never_ready_passes_with_no_data_and_says_so(tmp_path: Path) -> None:
    f = Frames()
    times = list(range(0, 601, 15))
    f.requests("primary", times, [40.0 * i for i in range(len(times))], [0.0] * len(times))
    f.weight([(t, 0) for t in times])
    msg = "canary deployment podinfo.shop not ready: waiting for rollout to finish: 0 of 1 (readyThreshold 100%) updated replicas are available"
    events = events_frame(
        [
            event(0, "new-revision", "New revision detected! Scaling up podinfo.shop"),
            *[event(60 * k, "not-ready", msg) for k in range(1, 6)],
            event(360.01, "failed", f"Canary failed! Scaling down {C}", weight=0),
        ]
    )
    path = write_bundle(tmp_path, "shop_podinfo_nr", f, events, canary(), checks_frame([]))
    ev = evaluate_bundle(read_bundle(path), default_policy())
    js = evaluation_to_json(ev)
    assert (js["outcome"], js["verdict"], js["evidence_sufficient"]) == ("failed", "pass", False)
    assert all(c["status"] == "no_data" and "weight stayed 0" in c["no_data_reason"] for c in js["criteria"])
    assert js["blast_radius"] == js["blast_radius"] | {"max_weight": 0, "canary_requests": 0, "exposure_seconds": 0.0}
    assert js["flagger"]["rollback_at"] == "2026-11-20T10:06:00.010Z"
    assert js["detection_lag_seconds"] is None
    codes = {f["code"] for f in js["findings"]}
    assert {"silent-failure", "no-evidence", "criterion-no-data"} <= codes
    assert "PASS (NO DATA)" in format_evaluation(ev)


def test_a_policy_file_changes_the_verdict(rolled_back: Path, tmp_path: Path) -> None:
    p = tmp_path / "lenient.yaml"
    p.write_text(
        "criteria:\n  error_rate_ratio: false\n  success_rate: {threshold: 50}\nlimits: {max_weight: 10}\n", encoding="utf-8"
    )
    ev = evaluate_bundle(read_bundle(rolled_back), load_policy(p))
    js = evaluation_to_json(ev)
    assert js["verdict"] == "pass" and [c["name"] for c in js["criteria"]] == ["p95_latency_increase", "success_rate"]
    assert js["policy"]["disabled"] == ["error_rate_ratio"] and js["policy"]["source"] == str(p)
    codes = {f["code"] for f in js["findings"]}
    assert {"max-weight-planned", "max-weight-reached"} <= codes
    assert "halt-without-breach" in codes


def weight_gauge_frames() -> Frames:
    """frames(1.0) plus Flagger's weight gauge scraped every 15 s: 10 % from 75 s, 20 % from 195 s, 0 from 435 s."""
    f = frames(1.0)
    f.weight([(t, 0 if t <= 60 or t > 420 else 10 if t <= 180 else 20) for t in range(0, 901, 15)])
    return f


def success_checks() -> pd.DataFrame:
    return checks_frame(
        [
            ("request-success-rate", t, v, 99.0, None)
            for t, v in ((120, 100.0), (180, 100.0), (240, 100.0), (300, 80.0), (360, 75.0))
        ]
    )


def test_a_failed_canary_whose_weight_fell_to_0_counts_as_the_rollback(tmp_path: Path) -> None:
    """Only the Canary object (phase Failed) and Prometheus: no 'Flagger did not roll back'."""
    path = write_bundle(tmp_path, "shop_podinfo_k", weight_gauge_frames(), events_frame([]), canary(), success_checks())
    ev = evaluate_bundle(read_bundle(path), default_policy())
    js = evaluation_to_json(ev)
    assert js["outcome"] == "rolled_back" and js["flagger"]["outcome_source"] == "canary-status"
    assert js["flagger"]["rollback_at"] == "2026-11-20T10:07:15Z" and js["flagger"]["confidence"] == "low"
    assert js["flagger"]["rollback_inferred"] is True
    assert js["flagger"]["max_weight"] == 20
    assert any("the rollback is inferred" in n for n in js["confidence"]["notes"])
    messages = " ".join(f["message"] for f in js["findings"])
    assert "did not roll back" not in messages
    assert js["replay"]["policy"]["would_roll_back"]
    # Exposure ends where the gauge shows the canary at 0 (scrape precision: traffic stopped at 420 s).
    assert not js["blast_radius"]["exposure_open"] and js["blast_radius"]["exposure_end"] == "2026-11-20T10:07:15Z"
    assert "rolled back at 2026-11-20T10:07:15Z (inferred)" in format_evaluation(ev)
    # The report's summary does not invent "after 0 failed checks": the record does not say.
    first = summary_sentences(ev)[0]
    assert first.startswith("Rolled back by Flagger at 10:07:15 (inferred") and "after 0 failed" not in first


def test_without_a_terminal_event_whether_flagger_rolled_back_is_unknown(tmp_path: Path) -> None:
    rows = rolled_back_events().iloc[:6]  # up to the second halt: the rollback events were lost
    still = canary()
    still["status"] = {"phase": "Progressing", "lastTransitionTime": at(60).isoformat()}
    path = write_bundle(tmp_path, "shop_podinfo_u", frames(1.0), rows, still, success_checks())
    ev = evaluate_bundle(read_bundle(path), default_policy())
    assert ev.outcome == "in_progress" and ev.timeline.rollback_at is None
    would = next(f for f in ev.findings if f.code == "policy-would-roll-back")
    assert "whether Flagger rolled back is unknown" in would.message and "did not roll back" not in would.message
    assert "actual            unknown: no terminal event in the record" in format_evaluation(ev)


def test_a_later_rollout_s_failed_status_does_not_roll_this_one_back(tmp_path: Path) -> None:
    """The Canary object says Failed since an hour after the window: that is another rollout's outcome."""
    later = canary()
    later["status"] = {"phase": "Failed", "lastTransitionTime": at(3600 + 420).isoformat()}
    path = write_bundle(tmp_path, "shop_podinfo_l", weight_gauge_frames(), events_frame([]), later, success_checks())
    ev = evaluate_bundle(read_bundle(path), default_policy())
    js = evaluation_to_json(ev)
    assert js["outcome"] == "unknown" and js["flagger"]["outcome_source"] == "none"
    assert js["flagger"]["rollback_at"] is None and js["flagger"]["rollback_inferred"] is False
    assert js["detection_lag_seconds"] is None
    assert any("set after the evaluated span" in n for n in ev.notes)
    assert not js["blast_radius"]["exposure_open"]  # the weight gauge still closes the exposure
    assert "actual            unknown: no terminal event in the record" in format_evaluation(ev)


def gap_manifest(gaps: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "bundle_id": "0123456789abcdef0123456789abcdef",
        "canary": {"namespace": "shop", "name": "podinfo", "target": "podinfo"},
        "window": {"start": "2026-11-19T12:00:00Z", "end": "2026-11-20T10:15:00Z"},
        "rollout": {"start": "2026-11-20T10:00:00Z"},
        "gaps": gaps,
    }


def test_gap_notes_are_those_that_touch_the_evaluated_rollout_one_per_query() -> None:
    def failed(query: str, a: str, b: str, detail: str = "HTTP 503") -> dict[str, Any]:
        return {"kind": "query_failed", "query": query, "from": a, "to": b, "detail": detail}

    gaps = [
        failed("raw:traefik_service_requests_total", "2026-11-19T12:00:00Z", "2026-11-19T14:00:00Z"),  # 20 h before
        failed("raw:traefik_service_requests_total", "2026-11-20T08:00:00Z", "2026-11-20T10:00:30Z"),
        failed("raw:traefik_service_requests_total", "2026-11-20T10:00:30Z", "2026-11-20T10:15:00Z", "timeout"),
        failed("raw:flagger_canary_weight", "2026-11-19T14:00:00Z", "2026-11-19T16:00:00Z"),  # before: no note
        {"kind": "query_failed", "query": "check:request-success-rate", "detail": "bad_data"},  # no range: kept
        {"kind": "scrape_gap", "from": "2026-11-19T13:00:00Z", "to": "2026-11-19T13:05:00Z"},  # before: no note
        {"kind": "query_empty", "query": "raw:flagger_canary_status", "detail": "no series"},
    ]
    ev = evaluate_rollout(
        manifest=gap_manifest(gaps),
        canary=canary(),
        series=frames(1.0).series_frame(),
        samples=frames(1.0).samples_frame(),
        events=rolled_back_events(),
        checks=success_checks(),
        policy=default_policy(),
    )
    notes = [n for n in ev.notes if n.startswith(("query ", "scrape gap"))]
    assert notes == [
        "query raw:flagger_canary_status: query empty — no series",
        "query raw:traefik_service_requests_total failed for 2026-11-20T08:00:00Z → 2026-11-20T10:00:30Z, "
        "2026-11-20T10:00:30Z → 2026-11-20T10:15:00Z: its samples there are missing from the bundle — HTTP 503; timeout",
        "query check:request-success-rate failed (when in the window is not recorded): its samples there are missing "
        "from the bundle — bad_data",
    ]

    # Many failed chunks inside the rollout: one line that says how many and where.
    many = [
        failed("raw:flagger_canary_weight", f"2026-11-20T10:0{i}:00Z", f"2026-11-20T10:0{i}:30Z", "HTTP 502") for i in range(5)
    ]
    ev = evaluate_rollout(
        manifest=gap_manifest(many),
        canary=canary(),
        series=frames(1.0).series_frame(),
        samples=frames(1.0).samples_frame(),
        events=rolled_back_events(),
        checks=success_checks(),
        policy=default_policy(),
    )
    assert [n for n in ev.notes if n.startswith("query ")] == [
        "query raw:flagger_canary_weight failed for 5 chunks between 2026-11-20T10:00:00Z and 2026-11-20T10:04:30Z: "
        "its samples there are missing from the bundle — HTTP 502"
    ]
