"""Real services for the tests: simulated rollouts served by a real Prometheus.

``simulated(name)`` runs the simulator once per session for a scenario and returns its
output folder; ``prometheus_for(name)`` backfills that scenario into a TSDB and starts the
Debian ``prometheus`` binary on a free 127.0.0.1 port, once per session, stopping it by its
PID at the end.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fixtures.prom import PrometheusServer, backfill
from fixtures.scenario import load_scenario
from fixtures.simulator import write_outputs

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "fixtures" / "scenarios"
SMALL_SCENARIOS = sorted(p.stem for p in SCENARIOS.glob("*.yaml") if p.stem != "large")


@pytest.fixture(scope="session")
def simulated(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    cache: dict[str, Path] = {}

    def run(name: str) -> Path:
        if name not in cache:
            out = tmp_path_factory.mktemp("sim") / name
            write_outputs(load_scenario(SCENARIOS / f"{name}.yaml"), out)
            cache[name] = out
        return cache[name]

    return run


@pytest.fixture(scope="session")
def truth_of(simulated: Callable[[str], Path]) -> Callable[[str], dict[str, Any]]:
    def read(name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((simulated(name) / "truth.json").read_text())
        return data

    return read


@pytest.fixture(scope="session")
def prometheus_for(
    simulated: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[str], PrometheusServer]]:
    if not shutil.which("prometheus") or not shutil.which("promtool"):
        pytest.fail("prometheus and promtool are needed: run `make test`, which installs Debian's prometheus package")
    servers: dict[str, PrometheusServer] = {}

    def start(name: str) -> PrometheusServer:
        if name not in servers:
            work = tmp_path_factory.mktemp(f"prom-{name.replace('/', '-')}")  # e.g. preflight/guarded
            backfill(simulated(name) / "openmetrics.txt", work / "tsdb")
            servers[name] = PrometheusServer(work / "tsdb", work).start()
        return servers[name]

    yield start
    for s in servers.values():
        s.stop()


@pytest.fixture(scope="session")
def bundle_for(
    simulated: Callable[[str], Path],
    prometheus_for: Callable[[str], PrometheusServer],
    truth_of: Callable[[str], dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str], Path]:
    """Collect each scenario once per session (dump + real Prometheus) and return the bundle path."""
    import datetime as dt

    from evidence.collect import CollectOptions, collect_rollout
    from evidence.model import CanaryRef
    from evidence.sources.dump import DumpSource
    from evidence.sources.prometheus import PrometheusSource

    cache: dict[str, Path] = {}

    def collect(name: str) -> Path:
        if name not in cache:
            truth = truth_of(name)
            ref = CanaryRef.parse(truth["canary"])
            now = dt.datetime.fromtimestamp(truth["snapshot_at"], dt.UTC)
            out = tmp_path_factory.mktemp(f"bundle-{name.replace('/', '-')}")
            cache[name] = collect_rollout(
                ref,
                DumpSource(simulated(name) / "dump"),
                PrometheusSource(prometheus_for(name).url),
                CollectOptions(out=out),
                clock=lambda: now,
            )
        return cache[name]

    return collect


@pytest.fixture(scope="session")
def evaluated(bundle_for: Callable[[str], Path]) -> Callable[[str], Any]:
    """Evaluate each scenario's bundle once per session with the default policy."""
    from evidence.bundle import read_bundle
    from evidence.evaluate import evaluate_bundle
    from evidence.policy import default_policy

    cache: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in cache:
            cache[name] = evaluate_bundle(read_bundle(bundle_for(name)), default_policy())
        return cache[name]

    return get
