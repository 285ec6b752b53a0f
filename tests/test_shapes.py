"""The shapes real setups give the series, collected from a real Prometheus against the simulator's truth.

kube-prometheus-stack scrapes without honorLabels: Traefik's ``service`` arrives as
``exported_service`` and Flagger's ``namespace`` as ``exported_namespace``. Its twin scenario,
scraped with honorLabels, has the same seed and traffic, so both bundles must give the same numbers.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evidence.bundle import read_bundle
from evidence.collect import CollectOptions, collect_rollout
from evidence.errors import PartialError, UsageError
from evidence.evaluate import Evaluation, evaluate_bundle
from evidence.model import CanaryRef
from evidence.policy import default_policy
from evidence.render.evaluation import evaluation_to_json
from evidence.routers import FLAGGER_NAMESPACE_LABELS, TRAEFIK
from evidence.sources.dump import DumpSource
from evidence.sources.prometheus import PrometheusSource
from fixtures.dumpstyles import UNUSABLE, kubectl_style_dump
from fixtures.groundtruth import policy_first_breaches
from fixtures.prom import PrometheusServer
from fixtures.scenario import load_scenario
from tests.conftest import SCENARIOS

KPS, HONOR = "shapes/kube-prometheus-stack", "shapes/honor-labels"


def _ts(x: float | None) -> dt.datetime | None:
    return None if x is None else dt.datetime.fromtimestamp(x, dt.UTC)


def assert_first_breaches_match(ev: Evaluation, truth: dict[str, Any], name: str) -> dict[str, float | None]:
    """Assert each criterion's first breach is the ground truth's (within a scrape); return the truth's."""
    ref = policy_first_breaches(truth, list(load_scenario(SCENARIOS / f"{name}.yaml").buckets))
    for c in ev.criteria:
        first, want = c.first_breach_at, _ts(ref[c.name])
        assert (first is None) == (want is None), c.name
        if first is not None and want is not None:
            assert abs((first - want).total_seconds()) <= truth["scrape_interval"], c.name
    return ref


@pytest.mark.parametrize("name", [KPS, HONOR])
def test_labels_are_detected_and_recorded(name: str, bundle_for: Callable[[str], Path]) -> None:
    b = read_bundle(bundle_for(name))
    labels = b.record.sources.labels
    assert labels is not None and labels.chosen == "detected"
    want = load_scenario(SCENARIOS / f"{name}.yaml")
    assert (labels.service, labels.namespace) == (want.service_label, want.namespace_label)
    assert labels.service in TRAEFIK.service_labels and labels.namespace in FLAGGER_NAMESPACE_LABELS
    series = b.table("series")
    roles = series.groupby("role").size().to_dict()
    # Traefik's series of both sides and Flagger's gauges were found under the stored labels.
    assert roles.get("canary", 0) > 0 and roles.get("primary", 0) > 0 and roles.get("flagger", 0) > 0
    assert series[series["role"] != "flagger"]["service"].str.endswith(TRAEFIK.leaf_suffix).all()
    told = [w for w in b.record.warnings if "honorLabels" in w]
    assert bool(told) == (labels.service != TRAEFIK.service_label)


@pytest.mark.parametrize("name", [KPS, HONOR])
def test_numbers_match_the_truth(
    name: str, evaluated: Callable[[str], Evaluation], truth_of: Callable[[str], dict[str, Any]]
) -> None:
    ev, truth = evaluated(name), truth_of(name)
    ro = truth["rollouts"][-1]
    assert ev.outcome == ro["outcome"] == "rolled_back"
    assert ev.timeline.max_weight == ro["max_weight"] == ev.blast.max_weight
    assert (ev.blast.canary_requests, ev.blast.canary_errors) == (ro["canary_requests"], ro["canary_errors"])
    assert [h["at"] for h in ro["halts"]] == pytest.approx([h.time.timestamp() for h in ev.timeline.halts], abs=1)
    assert ev.replay_flagger.failed_checks == len(ro["halts"])
    assert_first_breaches_match(ev, truth, name)
    assert ev.verdict == "abort"


def test_kube_prometheus_stack_gives_the_numbers_of_honor_labels(evaluated: Callable[[str], Evaluation]) -> None:
    kps, honor = (evaluation_to_json(evaluated(n)) for n in (KPS, HONOR))
    for key in ("outcome", "verdict", "criteria", "flagger", "detection_lag_seconds", "blast_radius", "replay", "timeline"):
        assert kps[key] == honor[key], key


def test_service_label_overrides_the_detection(
    simulated: Callable[[str], Path],
    prometheus_for: Callable[[str], PrometheusServer],
    truth_of: Callable[[str], dict[str, Any]],
    tmp_path: Path,
) -> None:
    truth = truth_of(KPS)
    now = dt.datetime.fromtimestamp(truth["snapshot_at"], dt.UTC)
    ref, dump, prom = (
        CanaryRef.parse(truth["canary"]),
        DumpSource(simulated(KPS) / "dump"),
        PrometheusSource(prometheus_for(KPS).url),
    )
    # `service` is the scrape target's here: forced to it, no Traefik series of the canary is found,
    # which is an error naming the likely causes, or with --allow-partial a bundle without them.
    with pytest.raises(PartialError, match="exported_service"):
        collect_rollout(ref, dump, prom, CollectOptions(out=tmp_path, service_label=TRAEFIK.service_label), clock=lambda: now)
    forced = CollectOptions(out=tmp_path, service_label=TRAEFIK.service_label, allow_partial=True)
    path = collect_rollout(ref, dump, prom, forced, clock=lambda: now)
    b = read_bundle(path)
    labels = b.record.sources.labels
    assert labels is not None and (labels.service, labels.chosen) == (TRAEFIK.service_label, "--service-label")
    assert set(b.table("series")["role"]) == {"flagger"}
    with pytest.raises(UsageError, match="--service-label"):
        collect_rollout(ref, dump, prom, CollectOptions(out=tmp_path, service_label="exported-service"), clock=lambda: now)


GRPC = "preflight/grpc"


def test_grpc_failures_are_counted_by_their_grpc_codes(
    evaluated: Callable[[str], Evaluation], truth_of: Callable[[str], dict[str, Any]]
) -> None:
    ev, truth = evaluated(GRPC), truth_of(GRPC)
    ro = truth["rollouts"][-1]
    assert truth["protocol"] == "grpc" and truth["error_codes"]
    # Flagger's builtin success rate sees no failure and promotes; the evidence counts code 14 (Unavailable).
    assert ev.outcome == ro["outcome"] == "promoted"
    assert (ev.blast.canary_requests, ev.blast.canary_errors) == (ro["canary_requests"], ro["canary_errors"])
    assert ev.blast.canary_errors > 0
    assert assert_first_breaches_match(ev, truth, GRPC)["success_rate"] is not None
    assert ev.verdict == "abort"
    codes = {f.code for f in ev.findings}
    assert {"grpc-builtin-blind", "promoted-despite-breach"} <= codes
    blind = next(f for f in ev.findings if f.code == "grpc-builtin-blind")
    assert all(c in blind.message for c in TRAEFIK.grpc_error_codes)


def test_http_canaries_get_no_grpc_finding(evaluated: Callable[[str], Evaluation]) -> None:
    assert "grpc-builtin-blind" not in {f.code for f in evaluated(HONOR).findings}


@pytest.mark.parametrize(
    ("code", "protocol", "error"),
    [("500", "http", True), ("200", "http", False), ("14", "grpc", True), ("13", "grpc-web", True),
     ("0", "grpc", False), ("5", "grpc", False), ("500", "grpc", False), ("14", "http", False), ("503", None, True)],
)  # fmt: skip
def test_what_counts_as_an_error(code: str, protocol: str | None, error: bool) -> None:
    assert TRAEFIK.is_error(code, protocol) is error


DEMO = "rollback-error-rate"


def test_a_dump_saved_as_people_save_it_gives_the_same_evidence(
    simulated: Callable[[str], Path],
    prometheus_for: Callable[[str], PrometheusServer],
    truth_of: Callable[[str], dict[str, Any]],
    bundle_for: Callable[[str], Path],
    evaluated: Callable[[str], Evaluation],
    tmp_path: Path,
) -> None:
    made = kubectl_style_dump(simulated(DEMO) / "dump", tmp_path / "dump")
    assert {"get-canary.out", "events.txt", "deploy.yaml", "flagger.log.1", "logs.txt", UNUSABLE} <= set(made)
    truth = truth_of(DEMO)
    now = dt.datetime.fromtimestamp(truth["snapshot_at"], dt.UTC)
    path = collect_rollout(
        CanaryRef.parse(truth["canary"]),
        DumpSource(tmp_path / "dump"),
        PrometheusSource(prometheus_for(DEMO).url),
        CollectOptions(out=tmp_path / "out"),
        clock=lambda: now,
    )
    b, tidy = read_bundle(path), read_bundle(bundle_for(DEMO))
    # Every log line once although the two files overlap; the same events and objects.
    assert b.record.counts == tidy.record.counts
    assert b.record.sources.events == tidy.record.sources.events
    skipped = [w for w in b.record.warnings if w.startswith("skipped ")]
    assert skipped == [w for w in skipped if w.startswith(f"skipped {UNUSABLE} ")] and len(skipped) == 1
    got, want = evaluation_to_json(evaluate_bundle(b, default_policy())), evaluation_to_json(evaluated(DEMO))
    for key in ("outcome", "verdict", "criteria", "flagger", "blast_radius", "replay", "timeline"):
        assert got[key] == want[key], key


LE_GO, LE_NORMALISED = "shapes/le-both-forms", "rollback-latency"


def test_bucket_bounds_are_numbers_whichever_form_le_is_stored_in(
    bundle_for: Callable[[str], Path], evaluated: Callable[[str], Evaluation], truth_of: Callable[[str], dict[str, Any]]
) -> None:
    """``le="5"`` (Traefik's form, Prometheus 2) beside ``le="5.0"`` (Prometheus 3): one bucket, the same p95."""
    go, norm = read_bundle(bundle_for(LE_GO)), read_bundle(bundle_for(LE_NORMALISED))
    les = {name: set(b.table("series")["le"].dropna()) for name, b in ((LE_GO, go), (LE_NORMALISED, norm))}
    assert {"5", "5.0"} <= les[LE_GO]  # both forms in one bundle, for the same canary
    assert "5.0" in les[LE_NORMALISED] and "5" not in les[LE_NORMALISED]
    buckets = [*load_scenario(SCENARIOS / f"{LE_GO}.yaml").buckets, math.inf]
    for name in (LE_GO, LE_NORMALISED):
        table = evaluated(name).table
        pos = table.select(TRAEFIK.duration_buckets, role="canary")
        bounds, _ = table.bucket_increases(pos, np.array([table.times.max()]), 60_000)
        assert bounds.tolist() == buckets, name  # 5 and 5.0 are one bound: 5
    p95 = {name: next(c for c in evaluated(name).criteria if c.name == "p95_latency_increase") for name in (LE_GO, LE_NORMALISED)}
    a, b = p95[LE_GO], p95[LE_NORMALISED]
    assert a.evaluated > 0 and a.breached
    assert a.points["value"].to_numpy() == pytest.approx(b.points["value"].to_numpy(), nan_ok=True)
    assert (a.first_breach_at, a.worst_value) == (b.first_breach_at, b.worst_value)
    assert truth_of(LE_GO)["rollouts"][-1]["halts"] == truth_of(LE_NORMALISED)["rollouts"][-1]["halts"]
