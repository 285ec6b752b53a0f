"""What-if replays of Flagger's checks and of the policy, and the analysis ticks they run at."""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evidence.analysis.counters import prepare_counters
from evidence.analysis.replay import analysis_ticks, replay_flagger, replay_policy
from evidence.analysis.traffic import WeightSeries
from evidence.bundle import read_bundle
from evidence.collect import CollectOptions, collect_rollout
from evidence.evaluate import Evaluation, evaluate_bundle
from evidence.model import CanaryRef
from evidence.policy import default_policy
from evidence.sources.dump import DumpSource
from evidence.sources.prometheus import PrometheusSource
from fixtures.prom import PrometheusServer
from tests.test_analysis_support import Frames, at, checks_frame, ms

SR, RD = "request-success-rate", "request-duration"


def weights(*steps: tuple[float, float]) -> WeightSeries:
    return WeightSeries(np.array([ms(t) for t, _ in steps], dtype=np.int64), np.array([w for _, w in steps]), "events")


def ticks(*seconds: float) -> np.ndarray:
    return np.array([ms(s) for s in seconds], dtype=np.int64)


def test_ticks_follow_the_checks_phase_and_need_weight_before_them() -> None:
    checks = checks_frame([(SR, 7 + 60 * k, 100.0, 99, None) for k in range(10)])
    # Advance at 67.004 s (the tick at 67 s emitted it): the tick at 67 ran no check at weight 0.
    w = weights((67.004, 10), (127.004, 20))
    got = analysis_ticks(checks, 60, at(7), at(600), w)
    assert got.tolist() == ticks(127, 187, 247, 307, 367, 427, 487, 547).tolist()
    # Promotion started at the 247 s tick (checks ran then); a rollback at 307 s ran none.
    assert (
        analysis_ticks(checks, 60, at(7), at(600), w, promotion_started_at=at(247.005)).tolist() == ticks(127, 187, 247).tolist()
    )
    assert analysis_ticks(checks, 60, at(7), at(600), w, stopped_at=at(307.004)).tolist() == ticks(127, 187, 247).tolist()
    # Kubernetes times are whole seconds: the rollback event at 307 still excludes the 307 s tick.
    assert analysis_ticks(checks, 60, at(7), at(600), w, stopped_at=at(307)).tolist() == ticks(127, 187, 247).tolist()
    # No checks: the grid starts at the rollout's start.
    assert analysis_ticks(checks_frame([]), 60, at(7), at(200), w).tolist() == ticks(127, 187).tolist()


def test_flagger_replay_stops_at_the_first_failure_and_rolls_back_a_tick_after_the_threshold() -> None:
    rows = []
    for k, (sr, rd) in enumerate([(100.0, 120.0), (98.0, 900.0), (100.0, 600.0), (math.nan, 100.0), (100.0, 100.0)]):
        t = 60 * (k + 1)
        rows += [(SR, t, sr, 99.0, None), (RD, t, rd, None, 500.0)]
    r = replay_flagger(checks_frame(rows), [SR, RD], 3, 60, ticks(60, 120, 180, 240, 300))
    fails = [(t.time, t.check, t.reason) for t in r.ticks if t.failed]
    assert fails == [(at(120), SR, "98 < 99"), (at(180), RD, "600 > 500"), (at(240), SR, "no values found")]
    assert r.failed_checks == 3 and r.first_failure_at == at(120)
    assert r.threshold_reached_at == at(240) and r.rollback_at == at(300) and r.would_roll_back
    assert len(r.ticks) == 4  # nothing is checked once the threshold is reached


def test_flagger_replay_truncates_durations_to_whole_milliseconds() -> None:
    r = replay_flagger(checks_frame([(RD, 60, 500.9, None, 500.0)]), [RD], 1, 60, ticks(60))
    assert not r.ticks[0].failed


def test_a_missing_value_fails_and_a_queried_metric_without_rows_fails_every_tick() -> None:
    r = replay_flagger(checks_frame([(SR, 60, 100.0, 99, None)]), [SR], 2, 60, ticks(60, 120))
    assert [t.failed for t in r.ticks] == [False, True] and r.ticks[1].reason == "no values found"
    r = replay_flagger(checks_frame([]), [SR, RD], 3, 60, ticks(60, 120, 180), queried={SR, RD})
    assert r.failed_checks == 3 and r.rollback_at == at(240)
    r = replay_flagger(checks_frame([]), [SR], 3, 60, ticks(60, 120, 180))
    assert r.checks == () and r.failed_checks == 0 and any("not replayed" in n for n in r.notes)


def test_policy_replay_fails_a_tick_when_a_criterion_is_breached() -> None:
    f = Frames()
    times = list(range(0, 421, 15))
    f.requests("primary", times, [100.0 * i for i in range(len(times))], [0] * len(times))
    # The canary: clean until 180 s, then 20 % errors.
    ok = np.cumsum([20 if t < 180 else 16 for t in times]).tolist()
    err = np.cumsum([0 if t < 180 else 4 for t in times]).tolist()
    f.requests("canary", times, ok, err)
    tab = prepare_counters(f.series_frame(), f.samples_frame())
    r = replay_policy(tab, default_policy(), 2, 60, ticks(60, 120, 180, 240, 300, 360, 420))
    fails = [(t.time, t.check) for t in r.ticks if t.failed]
    assert fails[0] == (at(180), "error_rate_ratio")
    assert r.threshold_reached_at == at(240) and r.rollback_at == at(300)
    assert "does not fail a tick" in r.notes[0]


SEVERAL = "shapes/several-series"


def test_a_check_with_several_series_is_read_as_flagger_reads_it(
    evaluated: Callable[[str], Evaluation], bundle_for: Callable[[str], Path], truth_of: Callable[[str], dict[str, Any]]
) -> None:
    """One series per code: Flagger reads the last (code 500) and does not fail; the replay gives its halts."""
    ev, ro = evaluated(SEVERAL), truth_of(SEVERAL)["rollouts"][-1]
    assert ev.outcome == ro["outcome"] == "rolled_back"
    rf = ev.replay_flagger
    assert rf.failed_checks == len(ro["halts"]) == 2
    assert [t.time.timestamp() for t in rf.ticks if t.failed] == pytest.approx([h["at"] for h in ro["halts"]], abs=1)
    assert rf.rollback_at is not None and abs(rf.rollback_at.timestamp() - ro["rollback_at"]) <= 1
    # The values replayed are the error shares the Halt messages print (the code 500 series).
    printed = [float(h["message"].rsplit(" ", 3)[-3]) for h in ro["halts"]]
    assert [t.value for t in rf.ticks if t.failed] == pytest.approx(printed, abs=0.01)
    found = [f for f in ev.findings if f.code == "check-several-series"]
    assert len(found) == 1 and "share by code returned 2 series" in found[0].message and "code=500" in found[0].message
    b = read_bundle(bundle_for(SEVERAL))
    (q,) = [q for q in b.record.queries if q.kind == "range"]
    assert q.extra["series"] == 2 and q.extra["last_series"]["code"] == "500" and "error" not in q.extra
    checks = b.table("checks")
    assert not checks["timestamp"].duplicated().any()  # one value per tick, as Flagger has
    assert not [w for w in b.record.warnings if "multiple values" in w]


def test_a_check_answered_with_a_matrix_fails_every_tick(
    simulated: Callable[[str], Path],
    prometheus_for: Callable[[str], PrometheusServer],
    truth_of: Callable[[str], dict[str, Any]],
    tmp_path: Path,
) -> None:
    """A range-vector template: Flagger's instant query gets a matrix, 'query returned multiple values', each tick."""
    truth = truth_of(SEVERAL)
    dump = tmp_path / "dump"
    shutil.copytree(simulated(SEVERAL) / "dump", dump)
    doc = json.loads((dump / "metrictemplates.json").read_text())
    doc["items"][0]["spec"]["query"] = (
        'traefik_service_requests_total{service=~"{{ namespace }}-{{ target }}-canary-.+"}[{{ interval }}]'
    )
    (dump / "metrictemplates.json").write_text(json.dumps(doc))
    now = dt.datetime.fromtimestamp(truth["snapshot_at"], dt.UTC)
    out = collect_rollout(
        CanaryRef.parse(truth["canary"]),
        DumpSource(dump),
        PrometheusSource(prometheus_for(SEVERAL).url),
        CollectOptions(out=tmp_path / "b", allow_partial=True),
        clock=lambda: now,
    )
    b = read_bundle(out)
    (q,) = [q for q in b.record.queries if q.kind == "range"]
    assert q.extra["result_type"] == "matrix" and "query returned multiple values" in q.extra["error"]
    rf = evaluate_bundle(b, default_policy()).replay_flagger
    assert rf.ticks and all(t.failed and t.reason == "query returned multiple values" for t in rf.ticks)
    assert rf.failed_checks == rf.threshold == 2 and rf.would_roll_back
