"""The simulator: scenario validation, Flagger's control loop, and PromQL fidelity."""

from __future__ import annotations

import json
import math
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fixtures import promql
from fixtures.eventsapi import COMBINED_PREFIX, EventCorrelator, rfc3339
from fixtures.prom import PrometheusServer
from fixtures.scenario import ScenarioError, load_scenario
from fixtures.simulator import DURATION_QUERY, SUCCESS_RATE_QUERY, go_duration_ms, write_outputs

from .conftest import SCENARIOS, SMALL_SCENARIOS


def query(server: PrometheusServer, q: str, at: float) -> float | None:
    url = f"{server.url}/api/v1/query?" + urllib.parse.urlencode({"query": q, "time": f"{at:.3f}"})
    with urllib.request.urlopen(url, timeout=10) as r:
        body = json.load(r)
    assert body["status"] == "success", body
    result = body["data"]["result"]
    if not result:
        return None
    v = float(result[0]["value"][1])
    return None if math.isnan(v) else v


@pytest.mark.parametrize("name", ["rollback-error-rate", "rollback-latency", "healthy-promotion", "promoted-despite-breach"])
def test_prometheus_agrees_with_the_simulators_judgement(
    name: str, prometheus_for: Callable[[str], PrometheusServer], truth_of: Callable[[str], dict[str, Any]]
) -> None:
    server = prometheus_for(name)
    truth = truth_of(name)
    ns, target = truth["canary"].split("/")[0], truth["target"]
    compared = 0
    for tick in truth["ticks"]:
        for ev in tick.get("evaluations", []):
            interval = "1m" if ev["metric"] != "request-duration" or name != "promoted-despite-breach" else "2m"
            if ev["metric"] == "request-success-rate":
                got = query(server, SUCCESS_RATE_QUERY.format(ns=ns, target=target, interval=interval), ev["at"])
                assert got is not None and ev["value"] is not None
                assert abs(got - ev["value"]) <= 0.5, (tick["t"], got, ev)
            elif ev["metric"] == "request-duration":
                got = query(server, DURATION_QUERY.format(ns=ns, target=target, interval=interval), ev["at"])
                assert got is not None and ev["value"] is not None
                # The simulator truncates to whole ms as Flagger does.
                assert abs(got - ev["value"]) <= 0.05 * got + 1, (tick["t"], got, ev)
            else:
                continue
            compared += 1
    assert compared >= 6


def test_rollback_scenario_halts_then_rolls_back_at_the_threshold(truth_of: Callable[[str], dict[str, Any]]) -> None:
    truth = truth_of("rollback-error-rate")
    msgs = [e["message"] for e in truth["events"]]
    halts = [i for i, m in enumerate(msgs) if m.startswith("Halt podinfo.shop advancement success rate")]
    rollback = msgs.index("Rolling back podinfo.shop failed checks threshold reached 3")
    assert len(halts) == 3 and halts[-1] < rollback
    assert msgs[rollback + 1] == "Canary failed! Scaling down podinfo.shop"
    ro = truth["rollouts"][-1]
    assert ro["outcome"] == "rolled_back"
    # Rollback is detected one tick after the third failed check.
    assert ro["rollback_at"] - ro["halts"][-1]["at"] == truth["interval"]
    # Halts carry Flagger's exact format: two decimals and a percent sign.
    assert all(m.endswith("% < 99%") for m in (msgs[i] for i in halts))


def test_every_small_scenario_has_its_outcome(truth_of: Callable[[str], dict[str, Any]]) -> None:
    expected = {
        "healthy-promotion": "promoted",
        "rollback-error-rate": "rolled_back",
        "rollback-latency": "rolled_back",
        "promoted-despite-breach": "promoted",
        "never-ready": "failed",
        "no-traffic": "rolled_back",
        "metrics-outage": "rolled_back",
        "tutorial-404s": "rolled_back",
        "datadog-template": "promoted",
        "inf-and-query-errors": "rolled_back",
    }
    assert sorted(expected) == SMALL_SCENARIOS
    for name, outcome in expected.items():
        assert truth_of(name)["rollouts"][-1]["outcome"] == outcome, name


def test_never_ready_fails_silently_without_rolling_back(truth_of: Callable[[str], dict[str, Any]]) -> None:
    msgs = [e["message"] for e in truth_of("never-ready")["events"]]
    assert not any(m.startswith("Rolling back") for m in msgs)
    assert msgs[-2] == 'canary deployment search.shop not ready: deployment "search" exceeded its progress deadline'
    assert msgs[-1] == "Canary failed! Scaling down search.shop"
    assert truth_of("never-ready")["rollouts"][0]["max_weight"] == 0


def test_no_traffic_halts_with_no_values_found(truth_of: Callable[[str], dict[str, Any]]) -> None:
    msgs = [e["message"] for e in truth_of("no-traffic")["events"]]
    expected = (
        "Halt advancement no values found for traefik metric request-success-rate probably reviews.shop "
        "is not receiving traffic: running query failed: no values found"
    )
    assert msgs.count(expected) == 3


def test_latency_halts_use_go_durations(truth_of: Callable[[str], dict[str, Any]]) -> None:
    halts = [e["message"] for e in truth_of("rollback-latency")["events"] if e["message"].startswith("Halt")]
    assert halts and all(
        h.startswith("Halt api.payments advancement request duration ") and h.endswith(" > 500ms") for h in halts
    )
    assert go_duration_ms(1515) == "1.515s" and go_duration_ms(500) == "500ms" and go_duration_ms(2000) == "2s"


def test_dump_holds_kubectl_objects_and_lossy_events(simulated: Callable[[str], Path]) -> None:
    out = simulated("rollback-error-rate")
    canary = json.loads((out / "dump" / "canary.json").read_text())
    assert canary["kind"] == "Canary" and canary["status"]["phase"] == "Failed"
    # Flagger's rollback zeroes the counters in the final status.
    assert canary["status"]["failedChecks"] == 0 and canary["status"]["canaryWeight"] == 0
    events = json.loads((out / "dump" / "events.json").read_text())
    assert events["kind"] == "List"
    ours = [e for e in events["items"] if e["involvedObject"]["name"] == "podinfo" and e["involvedObject"]["kind"] == "Canary"]
    assert all(e["reason"] == "Synced" and e["source"]["component"] == "flagger" for e in ours)
    truth = json.loads((out / "truth.json").read_text())
    last_start = rfc3339(truth["rollouts"][-1]["start"])
    # Identical messages of the earlier rollout were deduplicated into today's events...
    merged = [e for e in ours if e["count"] >= 2 and e["firstTimestamp"] < last_start <= e["lastTimestamp"]]
    assert any(e["message"] == "Advance podinfo.shop canary weight 10" for e in merged)
    # ...and the earlier rollout's own messages expired with the 1 h TTL.
    assert not any("Copying" in e["message"] or "Promotion completed" in e["message"] for e in ours)
    healthy = json.loads((simulated("healthy-promotion") / "dump" / "events.json").read_text())["items"]
    assert any(e["message"].startswith(COMBINED_PREFIX) for e in healthy), "a typical rollout trips aggregation"
    log = [json.loads(line) for line in (out / "dump" / "flagger.log").read_text().splitlines()]
    assert {"level", "ts", "caller", "msg"} <= set(log[-1])
    hooks = [json.loads(line) for line in (out / "webhook-events.jsonl").read_text().splitlines()]
    assert [h["metadata"]["eventMessage"] for h in hooks] == [e["message"] for e in truth["events"]]


def test_openmetrics_is_backfillable(simulated: Callable[[str], Path]) -> None:
    text = (simulated("healthy-promotion") / "openmetrics.txt").read_text()
    assert text.endswith("# EOF\n")
    stamps = [int(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line and not line.startswith("#")]
    # Seconds, not milliseconds (milliseconds land in year ~58,000).
    assert 1.7e9 < min(stamps) <= max(stamps) < 2.2e9


def test_correlator_aggregates_dedups_and_filters() -> None:
    c = EventCorrelator("ns", "c", "uid-1")
    for i in range(12):
        c.record(1000 + i, "Normal", f"Advance c.ns canary weight {i}")
    msgs = [e["message"] for e in c.events()]
    assert sum(1 for m in msgs if m.startswith(COMBINED_PREFIX)) == 1
    combined = next(e for e in c.events() if e["message"].startswith(COMBINED_PREFIX))
    assert combined["count"] == 3  # the 10th, 11th and 12th distinct messages
    # Identical messages bump count and keep firstTimestamp, even an hour later.
    d = EventCorrelator("ns", "c", "uid-1")
    d.record(1000, "Warning", "same")
    d.record(5000, "Warning", "same")
    (only,) = d.events()
    assert only["count"] == 2 and only["firstTimestamp"] != only["lastTimestamp"]
    # Spam filter: burst 25, then one per 300 s.
    s = EventCorrelator("ns", "c", "uid-1")
    fates = [s.record(1000 + i, "Warning", f"m{i % 5}") for i in range(40)]
    assert fates.count("dropped") == 15


def test_promql_rate_and_quantile_match_prometheus_rules() -> None:
    samples = [(0.0, 0.0), (15.0, 15.0), (30.0, 30.0), (45.0, 45.0)]
    assert promql.extrapolated_rate(samples, 60.0, 60.0) == pytest.approx(1.0)
    # A counter reset adds the value before the reset.
    assert promql.extrapolated_rate([(0, 10), (15, 20), (30, 5), (45, 20)], 45.0, 45.0) is not None
    assert promql.bucket_quantile(0.5, [(0.1, 50), (0.3, 100), (math.inf, 100)]) == pytest.approx(0.1)
    # A quantile in the +Inf bucket returns the second-highest bound.
    assert promql.bucket_quantile(0.99, [(0.1, 0), (0.3, 0), (math.inf, 10)]) == 0.3


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (("  threshold: 3", "  threshold: three"), "canary.analysis.threshold: must be an integer from 1 to 100, got 'three'"),
        (
            ("    interval: 1m\n    threshold", "    interval: 1minute\n    threshold"),
            "canary.analysis.interval: must be a duration",
        ),
        (("seed: 7", "seed: 7\nsurprise: 1"), "surprise: unknown field; allowed: canary, description"),
        (
            ("    type: rollback", "    type: confirm-everything"),
            "canary.analysis.webhooks[2].type: the simulator supports: pre-rollout",
        ),
        (("start: 2026-11-20T09:05:07Z", "start: yesterday"), "rollouts[0].start: must be an RFC3339 time"),
    ],
)
def test_bad_scenarios_name_file_field_and_allowed(tmp_path: Path, patch: tuple[str, str], message: str) -> None:
    text = (SCENARIOS / "rollback-error-rate.yaml").read_text()
    assert patch[0] in text
    bad = tmp_path / "bad.yaml"
    bad.write_text(text.replace(patch[0], patch[1], 1))
    with pytest.raises(ScenarioError) as err:
        load_scenario(bad)
    assert str(err.value).startswith(f"{bad}: ")
    assert message in str(err.value)


def test_a_failed_simulation_leaves_nothing_behind(tmp_path: Path) -> None:
    sc = load_scenario(SCENARIOS / "healthy-promotion.yaml")
    blocker = tmp_path / "sim"
    blocker.write_text("a file where the output folder should go")
    with pytest.raises(OSError):
        write_outputs(sc, blocker)
    assert [p.name for p in tmp_path.iterdir()] == ["sim"]
    assert blocker.read_text().startswith("a file")


def test_the_simulator_never_replaces_a_folder_it_did_not_write(tmp_path: Path) -> None:
    sc = load_scenario(SCENARIOS / "healthy-promotion.yaml")
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    with pytest.raises(FileExistsError, match="not a simulator output"):
        write_outputs(sc, precious)
    assert (precious / "thesis.tex").read_text() == "years of work"
    assert [p.name for p in tmp_path.iterdir()] == ["precious"]
