"""--prometheus-compression: which answers are asked gzip-compressed, and that the data is the same either way."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from evidence.errors import UsageError
from evidence.sources.prometheus import PrometheusSource, wants_gzip
from fixtures.prom import PrometheusServer

from .faultproxy import FaultProxy
from .test_collect import collect_args, run


@pytest.mark.parametrize(
    ("url", "gzip"),
    [
        ("http://127.0.0.1:9090", False),
        ("http://127.8.9.10:9090", False),
        ("http://[::1]:9090", False),
        ("http://localhost:9090", False),
        ("http://prometheus:9090", False),  # a compose or same-namespace name
        ("http://prometheus-server.monitoring.svc:80", False),
        ("http://prometheus.monitoring.svc.cluster.local:9090/prom", False),
        ("https://thanos.example.com", True),
        ("https://prometheus.monitoring.svc.example.com", True),  # a public name that only looks internal
        ("http://10.0.0.12:9090", True),  # a private address can be across a VPN
        ("https://api.prod.example:6443/api/v1/namespaces/monitoring/services/prometheus:9090/proxy", True),
    ],
)
def test_auto_asks_uncompressed_only_from_near_addresses(url: str, gzip: bool) -> None:
    assert wants_gzip(url) is gzip
    assert wants_gzip(url, "gzip") is True
    assert wants_gzip(url, "none") is False


def test_an_unknown_mode_is_a_usage_error_naming_the_choices() -> None:
    with pytest.raises(UsageError, match=r"--prometheus-compression 'brotli': choose from auto, gzip, none"):
        PrometheusSource("http://127.0.0.1:9090", compression="brotli")


def test_a_source_for_another_address_decides_for_that_address() -> None:
    near = PrometheusSource("http://127.0.0.1:9090")
    assert near.gzip is False and near.at("https://thanos.example.com").gzip is True
    assert PrometheusSource("http://127.0.0.1:9090", compression="gzip").at("http://127.0.0.1:9091").gzip is True


@pytest.mark.parametrize(("mode", "sent"), [("none", "identity"), ("auto", "identity"), ("gzip", "gzip")])
def test_every_request_carries_the_chosen_encoding(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path, mode: str, sent: str
) -> None:
    server = prometheus_for("healthy-promotion")
    with FaultProxy(server.url) as proxy:  # loopback: auto asks uncompressed
        res = run(
            *collect_args(simulated("healthy-promotion") / "dump", proxy.url, tmp_path / "out", "--prometheus-compression", mode)
        )
        assert res.returncode == 0, res.stderr
    encodings = {h.get("Accept-Encoding", "") for h in proxy.headers}
    assert len(proxy.headers) > 5
    if sent == "identity":
        assert encodings == {"identity"}
    else:
        assert all("gzip" in e.split(", ") for e in encodings), encodings


def test_gzip_and_uncompressed_answers_give_the_same_bundle(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    server = prometheus_for("healthy-promotion")  # the real Prometheus compresses when asked
    files = {}
    for mode in ("gzip", "none"):
        res = run(
            *collect_args(simulated("healthy-promotion") / "dump", server.url, tmp_path / mode, "--prometheus-compression", mode)
        )
        assert res.returncode == 0, res.stderr
        manifest = json.loads((Path(res.stdout.strip().splitlines()[-1]) / "manifest.json").read_text())
        assert manifest["counts"]["samples"] > 1000
        files[mode] = {name: f["sha256"] for name, f in manifest["files"].items() if name.endswith(".parquet")}
    assert files["gzip"]["samples.parquet"] == files["none"]["samples.parquet"]
    assert files["gzip"] == files["none"]


def test_a_bad_mode_on_the_command_line_is_a_usage_error(simulated: Callable[[str], Path], tmp_path: Path) -> None:
    res = run(
        *collect_args(
            simulated("healthy-promotion") / "dump", "http://127.0.0.1:9", tmp_path / "out", "--prometheus-compression", "zstd"
        )
    )
    assert res.returncode == 2 and "--prometheus-compression" in res.stderr and "'zstd' is not one of" in res.stderr
