"""`evidence show`: the rollout, outcome and weights are the ones `evidence evaluate` judges."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from evidence.bundle import read_bundle
from evidence.collect import CollectOptions, collect_rollout
from evidence.evaluate import Evaluation, evaluate_bundle
from evidence.model import CanaryRef, rfc3339
from evidence.sources.dump import DumpSource
from evidence.sources.prometheus import PrometheusSource
from evidence.summary import summarise_bundle
from fixtures.prom import PrometheusServer
from tests.conftest import SMALL_SCENARIOS

UTC = dt.UTC


def line(text: str, label: str) -> str:
    """Return the value of the summary line that starts with ``label:``."""
    found = [ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith(f"{label}:")]
    assert len(found) == 1, text
    return found[0]


def weights_of(ev: Evaluation) -> str:
    reached = [s.weight for s in ev.timeline.weight_steps if s.weight > 0]
    if not reached:
        return "none reached"
    return " → ".join(str(w) for w in reached) + f" %  (max {ev.timeline.max_weight} %)"


def assert_show_agrees_with_evaluate(bundle: Path) -> str:
    b = read_bundle(bundle)
    text = summarise_bundle(b)
    ev = evaluate_bundle(b)
    outcome = line(text, "outcome")
    assert outcome.startswith(f"{ev.outcome.replace('_', ' ')}: {ev.timeline.outcome_reason}"), (outcome, ev.outcome)
    assert f"confidence {ev.timeline.confidence}" in outcome
    assert line(text, "weights") == weights_of(ev)
    assert line(text, "rollout").startswith(f"{rfc3339(ev.rollout_start)} → ")
    return text


@pytest.mark.parametrize("name", SMALL_SCENARIOS)
def test_show_says_what_evaluate_says(
    name: str, bundle_for: Callable[[str], Path], truth_of: Callable[[str], dict[str, Any]]
) -> None:
    text = assert_show_agrees_with_evaluate(bundle_for(name))
    ro = truth_of(name)["rollouts"][-1]
    assert line(text, "outcome").startswith(ro["outcome"].replace("_", " "))
    assert line(text, "weights") == (
        " → ".join(str(w["weight"]) for w in ro["weights"]) + f" %  (max {ro['max_weight']} %)"
        if ro["weights"]
        else "none reached"
    )


def test_show_keeps_an_earlier_rollout_in_the_window_out(
    simulated: Callable[[str], Path],
    prometheus_for: Callable[[str], PrometheusServer],
    truth_of: Callable[[str], dict[str, Any]],
    tmp_path: Path,
) -> None:
    """An explicit window holding the earlier healthy rollout (09:05:07Z, up to 50 %) and the failing one (10:00:07Z)."""
    name = "rollback-error-rate"
    truth = truth_of(name)
    now = dt.datetime.fromtimestamp(truth["snapshot_at"], UTC)
    earlier, later = truth["rollouts"]
    assert dt.datetime.fromtimestamp(earlier["start"], UTC) == dt.datetime(2026, 11, 20, 9, 5, 7, tzinfo=UTC)
    assert earlier["max_weight"] == 50 and later["max_weight"] == 40
    bundle = collect_rollout(
        CanaryRef.parse(truth["canary"]),
        DumpSource(simulated(name) / "dump"),
        PrometheusSource(prometheus_for(name).url),
        CollectOptions(out=tmp_path, start=dt.datetime(2026, 11, 20, 9, 0, tzinfo=UTC), end=now),
        clock=lambda: now,
    )
    events = read_bundle(bundle).table("events")
    # The earlier rollout is in the window, with its weight 50 that the later one never reached.
    assert (events["time"] < dt.datetime(2026, 11, 20, 9, 30, tzinfo=UTC)).any() and (events["weight"] == 50).any()
    text = assert_show_agrees_with_evaluate(bundle)
    assert line(text, "rollout").startswith("2026-11-20T10:00:07Z → ")
    assert line(text, "outcome").startswith("rolled back: ")
    assert line(text, "weights") == "10 → 20 → 30 → 40 %  (max 40 %)"
