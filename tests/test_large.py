"""The large scenario end to end: 24 h, 50 services, six rollouts, a Traefik restart and a scrape gap.

Slow (about half a minute: 2 M samples are simulated and backfilled), so it runs once per session.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evidence.bundle import read_bundle, verify_bundle
from evidence.collect import CollectOptions, collect_rollout
from evidence.evaluate import evaluate_bundle
from evidence.model import CanaryRef
from evidence.render.evaluation import evaluation_to_json
from evidence.sources.dump import DumpSource
from evidence.sources.prometheus import PrometheusSource
from fixtures.prom import PrometheusServer, backfill
from fixtures.scenario import load_scenario
from fixtures.simulator import write_outputs

from .conftest import SCENARIOS
from .test_collect import run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, Any], PrometheusServer]]:
    work = tmp_path_factory.mktemp("large")
    truth = write_outputs(load_scenario(SCENARIOS / "large.yaml"), work / "sim")
    backfill(work / "sim" / "openmetrics.txt", work / "tsdb")
    (work / "sim" / "openmetrics.txt").unlink()  # 400 MB no longer needed
    with PrometheusServer(work / "tsdb", work) as server:
        yield work, truth, server


@pytest.fixture(scope="module")
def bundle_24h(large: tuple[Path, dict[str, Any], PrometheusServer]) -> Path:
    work, truth, server = large
    start = dt.datetime.fromtimestamp(truth["window"]["start"], dt.UTC)
    now = dt.datetime.fromtimestamp(truth["snapshot_at"], dt.UTC)
    return collect_rollout(
        CanaryRef.parse(truth["canary"]),
        DumpSource(work / "sim" / "dump"),
        PrometheusSource(server.url),
        CollectOptions(out=work / "bundles", start=start, end=start + dt.timedelta(hours=24)),
        clock=lambda: now,
    )


def test_the_24h_bundle_records_the_gap_and_verifies(
    bundle_24h: Path, large: tuple[Path, dict[str, Any], PrometheusServer]
) -> None:
    _, truth, _ = large
    verify_bundle(bundle_24h)
    m = json.loads((bundle_24h / "manifest.json").read_text())
    gaps = [g for g in m["gaps"] if g["kind"] == "scrape_gap"]
    first = truth["rollouts"][0]["start"]
    gap_start = dt.datetime.fromtimestamp(first + 16 * 3600, dt.UTC)
    assert any(
        dt.datetime.fromisoformat(g["from"].replace("Z", "+00:00"))
        <= gap_start
        <= dt.datetime.fromisoformat(g["to"].replace("Z", "+00:00"))
        for g in gaps
    ), gaps
    # Raw samples span the 24 h in chunks; only the canary's primary and canary services were fetched.
    q = next(q for q in m["queries"] if q["id"] == "raw:traefik_service_requests_total")
    assert q["chunks"] == 12 and q["status"] == "ok"
    series = read_bundle(bundle_24h).table("series")
    assert set(series["service"].dropna()) == {truth["primary_service"], truth["canary_service"]}


def test_every_rollout_is_found_and_the_latest_is_evaluated(
    bundle_24h: Path, large: tuple[Path, dict[str, Any], PrometheusServer]
) -> None:
    _, truth, _ = large
    ev = evaluation_to_json(evaluate_bundle(read_bundle(bundle_24h)))
    last = truth["rollouts"][-1]
    assert ev["outcome"] == last["outcome"]
    assert ev["blast_radius"]["canary_requests"] == last["canary_requests"]
    assert ev["blast_radius"]["canary_errors"] == last["canary_errors"]
    assert ev["flagger"]["max_weight"] == last["max_weight"]


@pytest.mark.parametrize("index", [1, 3])
def test_a_rolled_back_rollout_of_the_day_collects_and_evaluates(
    index: int, large: tuple[Path, dict[str, Any], PrometheusServer], tmp_path: Path
) -> None:
    """Collect the rollback on errors (after the counter reset is not needed) and the one on latency, by window."""
    work, truth, server = large
    ro = truth["rollouts"][index]
    start = dt.datetime.fromtimestamp(ro["start"] - 600, dt.UTC)
    end = dt.datetime.fromtimestamp(ro["end"] + 600, dt.UTC)
    now = dt.datetime.fromtimestamp(truth["snapshot_at"], dt.UTC)
    path = collect_rollout(
        CanaryRef.parse(truth["canary"]),
        DumpSource(work / "sim" / "dump"),
        PrometheusSource(server.url),
        CollectOptions(out=tmp_path, start=start, end=end),
        clock=lambda: now,
    )
    res = run("evaluate", str(path), "--json")
    assert res.returncode in (0, 3), res.stderr
    ev = json.loads(res.stdout)
    assert ev["outcome"] == "rolled_back"
    assert ev["blast_radius"]["canary_requests"] == ro["canary_requests"]
    assert ev["blast_radius"]["canary_errors"] == ro["canary_errors"]
    assert ev["flagger"]["max_weight"] == ro["max_weight"]


def test_the_24h_bundle_renders_under_8_mb(bundle_24h: Path, tmp_path: Path) -> None:
    res = run("render", str(bundle_24h), "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr
    html = Path(res.stdout.strip())
    assert html.stat().st_size < 8_000_000


def test_the_24h_evaluation_matches_the_golden_copy(bundle_24h: Path) -> None:
    from tests.test_golden import check_golden

    check_golden("large", bundle_24h)
