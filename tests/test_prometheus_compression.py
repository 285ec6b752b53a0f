"""--prometheus-compression: which answers are asked gzip-compressed, and that the data is the same either way."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from evidence.errors import UsageError
from evidence.sources.prometheus import NEAR_MS, PrometheusAuth, PrometheusSource
from fixtures.prom import PrometheusServer

from .faultproxy import FaultProxy, Rule
from .test_collect import collect_args, run

SCENARIO = "healthy-promotion"


def encodings_after_ping(proxy: FaultProxy, src: PrometheusSource) -> set[str]:
    """Ping, run one instant query, and return the Accept-Encoding of the requests after the ping's."""
    src.ping()
    seen = len(proxy.headers)
    src.instant("vector(2)", dt.datetime.now(dt.UTC))
    return {h.get("Accept-Encoding", "") for h in proxy.headers[seen:]}


def test_an_unknown_mode_is_a_usage_error_naming_the_choices() -> None:
    with pytest.raises(UsageError, match=r"--prometheus-compression 'brotli': choose from auto, gzip, none"):
        PrometheusSource("http://127.0.0.1:9090", compression="brotli")


def test_gzip_and_none_are_decided_before_any_request_auto_by_the_ping() -> None:
    assert PrometheusSource("http://127.0.0.1:9090", compression="gzip").gzip is True
    assert PrometheusSource("http://127.0.0.1:9090", compression="none").gzip is False
    auto = PrometheusSource("http://127.0.0.1:9090")
    assert auto.gzip is True and auto.answer_ms is None  # as requests asks, until ping() has timed the server
    other = PrometheusSource("http://127.0.0.1:9090", near_ms=1.5).at("https://thanos.example.com")
    assert (other.compression, other.near_ms) == ("auto", 1.5)


def test_a_near_prometheus_is_asked_uncompressed_after_the_ping(prometheus_for: Callable[[str], PrometheusServer]) -> None:
    with FaultProxy(prometheus_for(SCENARIO).url) as proxy:
        near = PrometheusSource(proxy.url, near_ms=60_000)  # whatever this machine's load: near
        assert encodings_after_ping(proxy, near) == {"identity"}
        assert near.gzip is False and near.answer_ms is not None and near.answer_ms < 60_000
        # The ping's own first request went out as requests asks (nothing was known yet).
        assert "gzip" in proxy.headers[0].get("Accept-Encoding", "")


def test_a_far_prometheus_is_asked_for_gzip(prometheus_for: Callable[[str], PrometheusServer]) -> None:
    # A proxy that answers vector(1) 50 ms late: a port-forward to another site, as far as the ping can tell.
    with FaultProxy(prometheus_for(SCENARIO).url, [Rule("vector(1)", "slow", delay=0.05)]) as proxy:
        far = PrometheusSource(proxy.url)
        assert far.near_ms == NEAR_MS
        encodings = encodings_after_ping(proxy, far)
        assert far.gzip is True and far.answer_ms is not None and far.answer_ms >= 50
        assert encodings and all("gzip" in e.split(", ") for e in encodings), encodings


def test_a_fixed_mode_is_never_changed_by_the_ping(prometheus_for: Callable[[str], PrometheusServer]) -> None:
    with FaultProxy(prometheus_for(SCENARIO).url) as proxy:
        none = PrometheusSource(proxy.url, compression="none")
        assert encodings_after_ping(proxy, none) == {"identity"} and none.answer_ms is None
    with FaultProxy(prometheus_for(SCENARIO).url) as proxy:
        gz = PrometheusSource(proxy.url, compression="gzip", near_ms=60_000)
        assert all("gzip" in e for e in encodings_after_ping(proxy, gz))


def test_an_accept_encoding_header_given_by_the_user_wins(prometheus_for: Callable[[str], PrometheusServer]) -> None:
    with FaultProxy(prometheus_for(SCENARIO).url) as proxy:
        auth = PrometheusAuth(headers={"Accept-Encoding": "br"})
        src = PrometheusSource(proxy.url, auth=auth, near_ms=60_000)
        assert encodings_after_ping(proxy, src) == {"br"}


def test_the_real_prometheus_compresses_when_asked_and_not_otherwise(prometheus_for: Callable[[str], PrometheusServer]) -> None:
    server = prometheus_for(SCENARIO)
    for mode, expected in (("gzip", "gzip"), ("none", None)):
        src = PrometheusSource(server.url, compression=mode)
        session = src._http()  # the session every query goes through, as configured for the mode
        answer = session.get(f"{server.url}/api/v1/query", params={"query": "vector(1)"}, timeout=10)
        assert answer.headers.get("Content-Encoding") == expected, (mode, answer.headers)


@pytest.mark.parametrize(("mode", "sent"), [("none", "identity"), ("gzip", "gzip")])
def test_every_request_of_a_collect_carries_the_chosen_encoding(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path, mode: str, sent: str
) -> None:
    server = prometheus_for(SCENARIO)
    with FaultProxy(server.url) as proxy:
        res = run(*collect_args(simulated(SCENARIO) / "dump", proxy.url, tmp_path / "out", "--prometheus-compression", mode))
        assert res.returncode == 0, res.stderr
    encodings = {h.get("Accept-Encoding", "") for h in proxy.headers}
    assert len(proxy.headers) > 5
    if sent == "identity":
        assert encodings == {"identity"}
    else:
        assert all("gzip" in e.split(", ") for e in encodings), encodings


def test_collect_asks_a_far_prometheus_for_gzip_by_default(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    with FaultProxy(prometheus_for(SCENARIO).url, [Rule("vector(1)", "slow", delay=0.05)]) as proxy:
        res = run(*collect_args(simulated(SCENARIO) / "dump", proxy.url, tmp_path / "out"))
        assert res.returncode == 0, res.stderr
    encodings = {h.get("Accept-Encoding", "") for h in proxy.headers}
    assert len(proxy.headers) > 5 and all("gzip" in e.split(", ") for e in encodings), encodings


def test_gzip_and_uncompressed_answers_give_the_same_bundle(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    server = prometheus_for(SCENARIO)  # the real Prometheus compresses when asked (the test above)
    files = {}
    for mode in ("gzip", "none"):
        res = run(*collect_args(simulated(SCENARIO) / "dump", server.url, tmp_path / mode, "--prometheus-compression", mode))
        assert res.returncode == 0, res.stderr
        manifest = json.loads((Path(res.stdout.strip().splitlines()[-1]) / "manifest.json").read_text())
        assert manifest["counts"]["samples"] > 1000
        files[mode] = {name: f["sha256"] for name, f in manifest["files"].items() if name.endswith(".parquet")}
    assert files["gzip"]["samples.parquet"] == files["none"]["samples.parquet"]
    assert files["gzip"] == files["none"]


def test_a_bad_mode_on_the_command_line_is_a_usage_error(simulated: Callable[[str], Path], tmp_path: Path) -> None:
    for command in (
        collect_args(simulated(SCENARIO) / "dump", "http://127.0.0.1:9", tmp_path / "out", "--prometheus-compression", "zstd"),
        ["watch", "--store", str(tmp_path / "store"), "--prometheus", "http://127.0.0.1:9", "--prometheus-compression", "zstd"],
    ):
        res = run(*command)
        assert res.returncode == 2 and "--prometheus-compression" in res.stderr and "'zstd' is not one of" in res.stderr


def test_credentials_in_the_url_keep_every_other_setting_of_the_auth() -> None:
    """user:password in the URL used to rebuild the auth and drop its client certificate (the service proxy's)."""
    auth = PrometheusAuth(bearer_token=None, ca_file=None, headers={"X-Scope-OrgID": "a"}, client_cert=("c.pem", "k.pem"))
    src = PrometheusSource("http://alice:s3cret@127.0.0.1:9090", auth=auth, compression="none")
    assert (src.auth.username, src.auth.password) == ("alice", "s3cret")
    assert src.auth.client_cert == ("c.pem", "k.pem") and src.auth.headers == {"X-Scope-OrgID": "a"}
    assert "s3cret" not in src.describe()


def test_a_failed_timing_query_leaves_the_answers_compressed(prometheus_for: Callable[[str], PrometheusServer]) -> None:
    """The health check answered, the timing queries after it fail: the collect goes on, compressed."""
    with FaultProxy(prometheus_for(SCENARIO).url, [Rule("vector(1)", "status", 500, after=1)]) as proxy:
        src = PrometheusSource(proxy.url, near_ms=60_000, retries=0)
        src.ping()
        assert src.gzip is True and src.answer_ms is None
        assert sum("vector(1)" in r for r in proxy.requests) == 2  # the check, and the first timing query that failed


def test_a_user_encoding_skips_the_timing_queries(prometheus_for: Callable[[str], PrometheusServer]) -> None:
    with FaultProxy(prometheus_for(SCENARIO).url) as proxy:
        src = PrometheusSource(proxy.url, auth=PrometheusAuth(headers={"Accept-Encoding": "identity"}))
        src.ping()
        assert len(proxy.requests) == 1 and src.answer_ms is None
