"""The shared vocabulary: the Go-duration, user time and user duration parsers, and CanarySpec.from_object."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from evidence.analysis.counters import to_ms
from evidence.bundle import read_bundle
from evidence.canary import CanarySpec
from evidence.cli import cli
from evidence.collect import CollectOptions, collect_rollout
from evidence.errors import UsageError
from evidence.evaluate import evaluate_bundle
from evidence.model import (
    CanaryRef,
    parse_go_duration,
    parse_stored_time,
    parse_time,
    parse_user_duration,
    parse_user_time,
    prometheus_duration,
)
from evidence.sources.dump import DumpSource
from evidence.sources.prometheus import PrometheusSource
from fixtures.prom import PrometheusServer

UTC = dt.UTC
NOW = dt.datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1m", 60), ("1.5m", 90), ("500ms", 0.5), ("1m30s", 90), ("1.515s", 1.515), ("2h", 7200), ("0", 0), ("10µs", 1e-5)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "1d", "1w", "m", "1.5", "abc", "1m 30s"])
def test_not_go_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_go_duration(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("90s", 90), ("5m", 300), ("2h", 7200), ("1d", 86400), ("7d", 604800), ("2w", 1209600), ("1h30m", 5400)],
)
def test_user_durations(text: str, seconds: float) -> None:
    assert parse_user_duration(text, "--lookback").total_seconds() == pytest.approx(seconds)
    assert prometheus_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "ten", "7x", "-1h", "1h 30m"])
def test_bad_user_durations_name_the_option(text: str) -> None:
    with pytest.raises(UsageError, match="--lookback"):
        parse_user_duration(text, "--lookback")
    assert prometheus_duration(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-20T10:00:00Z", dt.datetime(2026, 11, 20, 10, tzinfo=UTC)),
        ("2026-11-20T10:00:00.250Z", dt.datetime(2026, 11, 20, 10, 0, 0, 250000, tzinfo=UTC)),
        ("2026-11-20T11:00:00+01:00", dt.datetime(2026, 11, 20, 10, tzinfo=UTC)),
        ("1795168800", dt.datetime(2026, 11, 20, 10, tzinfo=UTC)),
        ("1795168800000", dt.datetime(2026, 11, 20, 10, tzinfo=UTC)),
        ("1795168800.5", dt.datetime(2026, 11, 20, 10, 0, 0, 500000, tzinfo=UTC)),
        ("now", NOW),
        ("now-2h", NOW - dt.timedelta(hours=2)),
        ("now+30m", NOW + dt.timedelta(minutes=30)),
    ],
)
def test_user_times(text: str, expected: dt.datetime) -> None:
    warned: list[str] = []
    assert parse_user_time(text, "--start", now=NOW, warn=warned.append) == expected
    assert warned == []


def test_a_time_without_zone_is_utc_and_said() -> None:
    warned: list[str] = []
    t = parse_user_time("2026-11-20T10:00:00.5", "--end", warn=warned.append)
    assert t == dt.datetime(2026, 11, 20, 10, 0, 0, 500000, tzinfo=UTC)
    assert len(warned) == 1 and warned[0].startswith("Warning: --end") and "UTC" in warned[0]


@pytest.mark.parametrize("text", ["yesterday", "now-2x", "0001-01-01T00:00:00Z", "99999999999999999999"])
def test_bad_user_times_name_the_option(text: str) -> None:
    with pytest.raises(UsageError, match="--start"):
        parse_user_time(text, "--start")


def test_zone_is_required_where_times_are_stored() -> None:
    with pytest.raises(UsageError, match="give a time zone"):
        parse_time("2026-11-20T10:00:00", "--at")
    with pytest.raises(UsageError):
        parse_time("now", "--at")
    assert parse_stored_time("2026-11-20T10:00:00Z") == dt.datetime(2026, 11, 20, 10, tzinfo=UTC)
    assert parse_stored_time("2026-11-20T10:00:00") is None and parse_stored_time(17) is None


def test_the_cli_says_the_zone_and_refuses_bad_values_with_exit_2(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(cli, ["collect", "shop/podinfo", "--from-dump", str(tmp_path), "--start", "tomorrow"])
    assert res.exit_code == 2 and "--start 'tomorrow': not a time" in res.output
    res = runner.invoke(cli, ["collect", "shop/podinfo", "--from-dump", str(tmp_path), "--lookback", "1y2"])
    assert res.exit_code == 2 and "--lookback '1y2': not a duration" in res.output
    res = runner.invoke(
        cli, ["collect", "shop/podinfo", "--from-dump", str(tmp_path), "--start", "2026-11-20T10:00:00", "--prometheus", ""]
    )
    assert "Warning: --start '2026-11-20T10:00:00' has no time zone; read as UTC" in res.stderr


def _canary(**analysis: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "podinfo", "namespace": "shop"},
        "spec": {"targetRef": {"name": "podinfo"}, "service": {"port": 9898}, "analysis": analysis},
    }


def test_canary_spec_reads_flaggers_defaults_and_both_analysis_keys() -> None:
    spec = CanarySpec.from_object(_canary(interval="1.5m", threshold=3, stepWeights=[5, 20, 50]))
    assert (spec.ref, spec.interval_s, spec.threshold, spec.step_weights) == (CanaryRef("shop", "podinfo"), 90.0, 3, (5, 20, 50))
    assert (spec.apex, spec.primary_service, spec.canary_service, spec.port) == (
        "podinfo",
        "podinfo-primary",
        "podinfo-canary",
        9898,
    )
    old = {"metadata": {}, "spec": {"canaryAnalysis": {"interval": "500ms", "threshold": "x"}}}
    spec = CanarySpec.from_object(old, CanaryRef("shop", "search"))
    assert (spec.interval_s, spec.threshold, spec.target, spec.has_analysis) == (10.0, 1, "search", True)
    assert any("threshold" in w for w in spec.warnings)
    assert CanarySpec.from_object({}).interval_s == 60.0 and not CanarySpec.from_object({}).has_analysis


@pytest.mark.parametrize(("interval", "seconds"), [("1.5m", 90.0), ("500ms", 10.0), ("90s", 90.0)])
def test_collect_and_evaluate_share_the_tick_grid(
    interval: str,
    seconds: float,
    simulated: Callable[[str], Path],
    prometheus_for: Callable[[str], PrometheusServer],
    truth_of: Callable[[str], dict[str, Any]],
    tmp_path: Path,
) -> None:
    """The bug of issue 9: ``1.5m`` was 90 s in collect and 60 s in evaluate (``500ms``: 10 s against 60 s)."""
    name = "rollback-error-rate"
    dump = tmp_path / "dump"
    shutil.copytree(simulated(name) / "dump", dump)
    canary = json.loads((dump / "canary.json").read_text())
    canary["spec"]["analysis"]["interval"] = interval
    (dump / "canary.json").write_text(json.dumps(canary))
    truth = truth_of(name)
    now = dt.datetime.fromtimestamp(truth["snapshot_at"], UTC)
    path = collect_rollout(
        CanaryRef.parse(truth["canary"]),
        DumpSource(dump),
        PrometheusSource(prometheus_for(name).url),
        CollectOptions(out=tmp_path / "out"),
        clock=lambda: now,
    )
    bundle = read_bundle(path)
    checks = bundle.table("checks")
    planned = np.diff(np.unique(to_ms(checks["timestamp"]))) / 1000
    assert planned.size and set(planned) == {seconds}, "collect's checks are not on the interval's grid"
    ev = evaluate_bundle(bundle)
    assert ev.interval_seconds == ev.replay_flagger.interval_seconds == seconds
    ticks = np.array([t.time.timestamp() for t in ev.replay_flagger.ticks])
    assert ticks.size and set(np.diff(ticks)) <= {seconds}


def test_flaggers_messages_parse_to_actions() -> None:
    from evidence.flagger import _PATTERNS, parse_message
    from evidence.model import Action

    assert all(label.startswith("halt:") or label in Action._value2member_map_ for _, label in _PATTERNS)
    parsed = parse_message("Advance podinfo.shop canary weight 20")
    assert parsed.action is Action.ADVANCE and parsed.weight == 20
    assert parse_message("Halt podinfo.shop advancement success rate 75.00% < 99%").action is Action.HALT
    assert parse_message("something Flagger never says").action is Action.OTHER
