"""--prometheus from Flagger's -metrics-server, through the API server's service proxy when in-cluster."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from evidence.discovery import ServiceRef, in_cluster_service, service_proxy_url
from fixtures.prom import PrometheusServer
from fixtures.scenario import FlaggerInstall
from fixtures.simulator import flagger_deployment

from .archive_support import run, validated
from .kubeapi import KubeApiServer

ENV = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
IN_CLUSTER = "http://prometheus.monitoring:9090"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://prometheus:9090", ServiceRef("http", "flagger-system", "prometheus", 9090, "")),
        ("http://prometheus.monitoring:9090", ServiceRef("http", "monitoring", "prometheus", 9090, "")),
        ("https://thanos.obs.svc:10902/", ServiceRef("https", "obs", "thanos", 10902, "")),
        ("http://vm.obs.svc.cluster.local/select/0/prometheus", ServiceRef("http", "obs", "vm", 80, "/select/0/prometheus")),
        ("https://prometheus.example.com", None),
        ("http://10.0.0.7:9090", None),
        ("ftp://prometheus:21", None),
    ],
)
def test_which_urls_name_an_in_cluster_service(url: str, expected: ServiceRef | None) -> None:
    assert in_cluster_service(url, "flagger-system") == expected


def test_proxy_url_shape() -> None:
    svc = ServiceRef("https", "obs", "thanos", 10902, "/x")
    assert (
        service_proxy_url("https://api:6443/", svc)
        == "https://api:6443/api/v1/namespaces/obs/services/https:thanos:10902/proxy/x"
    )


@pytest.fixture(scope="module")
def cluster(
    simulated: Callable[[str], Path],
    prometheus_for: Callable[[str], PrometheusServer],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[KubeApiServer]:
    dump = tmp_path_factory.mktemp("with-flagger")
    for f in (simulated("rollback-error-rate") / "dump").iterdir():
        shutil.copy(f, dump / f.name)
    flagger = flagger_deployment(FlaggerInstall("flagger-system", "1.42.0", "traefik", IN_CLUSTER, True, None))
    (dump / "flagger-deployment.json").write_text(json.dumps(flagger))
    with KubeApiServer(dump, tmp_path_factory.mktemp("kubeapi")) as api:
        api.proxy_service("monitoring", "prometheus:9090", prometheus_for("rollback-error-rate").url)
        yield api


def test_collect_finds_flaggers_prometheus_through_the_service_proxy(cluster: KubeApiServer, tmp_path: Path) -> None:
    env = {**ENV, "EVIDENCE_PROMETHEUS_URL": ""}
    res = run("collect", "podinfo", "--kubeconfig", str(cluster.kubeconfig), "--out", str(tmp_path), "-q", "-o", "json", env=env)
    assert res.returncode == 0, res.stderr
    proxy = f"{cluster.url}/api/v1/namespaces/monitoring/services/prometheus:9090/proxy"
    assert f"Flagger's -metrics-server {IN_CLUSTER} (flagger-system/flagger)" in res.stderr
    assert f"through the API server's service proxy: {proxy}" in res.stderr
    doc = validated(res.stdout, "BundleSummary")
    manifest = json.loads((Path(doc["location"]) / "manifest.json").read_text())
    assert manifest["sources"]["prometheus"]["url"] == proxy
    assert cluster.requests_for("/api/v1/namespaces/monitoring/services/prometheus:9090/proxy/api/v1/query_range")
    assert doc["summary"]["outcome"] == "rolled_back" and doc["summary"]["canary_requests"] > 0


def test_without_flagger_or_on_a_dump_prometheus_is_required(simulated: Callable[[str], Path], tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "EVIDENCE_PROMETHEUS_URL"}
    res = run(
        "collect",
        "podinfo",
        "--from-dump",
        str(simulated("rollback-error-rate") / "dump"),
        env={**env, "EVIDENCE_PROMETHEUS_URL": ""},
    )
    assert res.returncode == 2 and "--prometheus URL is required" in res.stderr
    with KubeApiServer(simulated("rollback-error-rate") / "dump", tmp_path / "k") as api:
        res = run("collect", "podinfo", "--kubeconfig", str(api.kubeconfig), env={**ENV, "EVIDENCE_PROMETHEUS_URL": ""})
    assert res.returncode == 2 and "no Flagger Deployment" in res.stderr
