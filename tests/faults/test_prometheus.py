"""A real Prometheus behind a misbehaving proxy: partial, slow, endless, malformed and refusing answers."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from evidence.errors import PrometheusError
from evidence.sources.prometheus import PrometheusSource
from fixtures.prom import PrometheusServer
from tests.faultproxy import FaultProxy, Rule
from tests.faults.common import bundle_path, collect_args, manifest, nothing_partial, run
from tests.faults.ledger import LEDGER

SCENARIO = "rollback-error-rate"
RAW = "traefik_service_requests_total{service"


def collect_through(
    rules: list[Rule], simulated: Callable[[str], Path], prom: PrometheusServer, out: Path, *extra: str
) -> tuple[object, FaultProxy]:
    with FaultProxy(prom.url, rules) as proxy:
        res = run(*collect_args(simulated(SCENARIO) / "dump", proxy.url, out, *extra))
    return res, proxy


def test_a_thanos_partial_answer_is_a_gap_never_a_complete_bundle(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    prom = prometheus_for(SCENARIO)
    res, proxy = collect_through([Rule(RAW, "partial")], simulated, prom, tmp_path / "out")
    assert res.returncode == 1, res.stderr  # type: ignore[attr-defined]
    assert "only in part" in res.stderr and "--allow-partial" in res.stderr  # type: ignore[attr-defined]
    assert (nothing_partial(tmp_path / "out") and not (tmp_path / "out").exists()) or not list((tmp_path / "out").iterdir())
    assert any("partial_response=false" in r for r in proxy.requests)
    res, _ = collect_through([Rule(RAW, "partial")], simulated, prom, tmp_path / "out", "--allow-partial")
    m = manifest(bundle_path(res))  # type: ignore[arg-type]
    q = next(q for q in m["queries"] if q["id"] == "raw:traefik_service_requests_total")
    if q["status"] != "failed":
        LEDGER.lost("a partial answer was recorded as a complete query")
    assert q["status"] == "failed" and "only in part" in q["error"]
    assert any(g["kind"] == "query_failed" and g["query"] == q["id"] for g in m["gaps"])
    ev = run("evaluate", str(bundle_path(res)))  # type: ignore[arg-type]
    assert "missing from the bundle" in ev.stdout


def test_a_trickling_body_is_bound_by_the_timeout(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    t0 = time.monotonic()
    res, _ = collect_through(
        [Rule("vector(1)", "trickle", delay=0.4)], simulated, prometheus_for(SCENARIO), tmp_path / "out", "--timeout", "2"
    )
    took = time.monotonic() - t0
    assert res.returncode == 1 and "did not answer" in res.stderr and "within 2s" in res.stderr  # type: ignore[attr-defined]
    assert took < 30, took  # 2 s per attempt and a few retries, never the whole trickle (minutes)


def test_an_endless_body_is_refused_at_the_size_bound(prometheus_for: Callable[[str], PrometheusServer]) -> None:
    with FaultProxy(prometheus_for(SCENARIO).url, [Rule("up", "endless")]) as proxy:
        src = PrometheusSource(proxy.url, timeout=20, max_bytes=4 * 2**20)
        with pytest.raises(PrometheusError, match="more than 4 MiB"):
            src.instant("up", dt.datetime.now(dt.UTC))


@pytest.mark.parametrize(
    "result",
    [
        b'{"metric":{},"value":[1764000000]}',
        b'{"metric":{},"value":[1764000000,null]}',
        b'{"metric":{},"values":[[null,"1"]]}',
        b'{"metric":{},"value":[1764000000,"1","x"]}',
        b'{"metric":{},"values":[[1e16,"1"]]}',
        b'{"metric":{},"values":[[-5,"1"]]}',
        b'{"metric":{},"value":[1764000000,1' + b"0" * 400 + b"]}",
        b'{"metric":{},"values":[[[1764000000],"1"]]}',
        b'{"metric":{},"value":[1764000000,true]}',
        b'{"metric":{},"value":["1764000000","1"]}',
    ],
    ids=[
        "vector-short",
        "vector-null",
        "matrix-null-time",
        "vector-three-items",
        "time-far-future",
        "time-negative",
        "value-integer-beyond-float",
        "time-a-list",
        "value-true",
        "time-a-string",
    ],
)
def test_every_reader_of_samples_gets_a_clear_error_for_a_malformed_one(
    result: bytes, prometheus_for: Callable[[str], PrometheusServer]
) -> None:
    """The watcher's catch-up, preflight and the label probes read instant answers themselves: the source checks them."""
    body = b'{"status":"success","data":{"resultType":"vector","result":[' + result + b"]}}"
    with FaultProxy(prometheus_for(SCENARIO).url, [Rule("up", "body", 200, body=body)]) as proxy:
        src = PrometheusSource(proxy.url, timeout=20)
        with pytest.raises(PrometheusError, match="malformed sample"):
            src.instant("up", dt.datetime.now(dt.UTC))
        with pytest.raises(PrometheusError, match="malformed sample"):
            src.range("up", dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5), dt.datetime.now(dt.UTC), 15)


def test_a_malformed_sample_error_never_carries_the_credentials(prometheus_for: Callable[[str], PrometheusServer]) -> None:
    """A proxy that echoes the bearer token into a series' labels: the error names the series, scrubbed."""
    from evidence.progress import Progress
    from evidence.queries import Query, run_queries
    from evidence.samplestream import parse_raw
    from evidence.sources.prometheus import PrometheusAuth

    token = "tok-3f9a8c77d2e14b6f"
    body = (
        b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"t":"'
        + token.encode()
        + b'"},"values":[[1]]}]}}'
    )
    with FaultProxy(prometheus_for(SCENARIO).url, [Rule("up", "body", 200, body=body)]) as proxy:
        src = PrometheusSource(proxy.url, timeout=20, auth=PrometheusAuth(bearer_token=token))
        with pytest.raises(PrometheusError, match="malformed sample") as caught:
            src.instant("up", dt.datetime.now(dt.UTC))
        assert token not in str(caught.value)
        # Collect's raw chunks are checked as they are parsed, in the fetch threads: scrubbed there too.
        end = dt.datetime.now(dt.UTC)
        q = Query("raw:up", "up", "up", "raw", end - dt.timedelta(minutes=5), end)
        run_queries(src, [q], 1, Progress(quiet=True, warnings=False), on_raw=lambda q, r: None, parse_raw=parse_raw)
        assert q.status == "failed" and "malformed sample" in str(q.error) and token not in str(q.error), q.error


@pytest.mark.parametrize(
    ("body", "status", "said"),
    [
        (
            b'{"status":"error","errorType":"internal","error":"query processing would load too many samples"}',
            200,
            "too many samples",
        ),
        (b'{"status":"success"}', 200, "without a result list"),
        (b'{"status":"success","data":{"resultType":"vector","result":{"a":1}}}', 200, "without a result list"),
        (b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":"x","values":"no"}]}}', 200, "malformed series"),
        (b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1]]}]}}', 200, "malformed sample"),
        (
            b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[["t","1"]]}]}}',
            200,
            "malformed sample",
        ),
        (
            b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"x"]]}]}}',
            200,
            "malformed sample",
        ),
        (
            b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,null]]}]}}',
            200,
            "malformed sample",
        ),
        (b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[7]}]}}', 200, "malformed sample"),
        (
            b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1764000000,"1","x"]]}]}}',
            200,
            "malformed sample",
        ),
        (
            b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1e16,"1"]]}]}}',
            200,
            "malformed sample",
        ),
        (
            b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1764000000,"1","x"],[1764000015,"2"]]}]}}',
            200,
            "malformed sample",
        ),
        (
            b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1764000000,"1'
            + b"0" * 400
            + b'"],[1'
            + b"0" * 400
            + b',"1"]]}]}}',
            200,
            "malformed sample",
        ),
        (
            b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[[1764000000,1764000001],"1"]]}]}}',
            200,
            "malformed sample",
        ),
        (
            b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1764000000,true]]}]}}',
            200,
            "malformed sample",
        ),
        (
            b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[true,"1"]]}]}}',
            200,
            "malformed sample",
        ),
        (b"<html><body>Please sign in</body></html>", 200, "HTML page"),
        (b"upstream connect error", 502, "not JSON"),
        (b"[1, 2, 3]", 200, "JSON list"),
    ],
    ids=[
        "status-error-in-200",
        "no-data",
        "result-not-a-list",
        "series-malformed",
        "sample-short",
        "sample-time-text",
        "sample-value-text",
        "sample-value-null",
        "sample-not-a-pair",
        "sample-three-items",
        "sample-time-far-future",
        "sample-rows-of-mixed-length",
        "sample-time-integer-beyond-float",
        "sample-time-a-list",
        "sample-value-true",
        "sample-time-true",
        "login-page",
        "proxy-502-text",
        "json-list",
    ],
)
def test_a_malformed_answer_is_a_clear_error_not_a_traceback(
    body: bytes,
    status: int,
    said: str,
    simulated: Callable[[str], Path],
    prometheus_for: Callable[[str], PrometheusServer],
    tmp_path: Path,
) -> None:
    ctype = "text/html" if body.startswith(b"<") else "application/json"
    res, _ = collect_through(
        [Rule(RAW, "body", status, body=body, content_type=ctype)], simulated, prometheus_for(SCENARIO), tmp_path / "out"
    )
    assert res.returncode == 1, res.stderr  # type: ignore[attr-defined]
    assert said in res.stderr and "unreachable" not in res.stderr, res.stderr  # type: ignore[attr-defined]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_malformed_check_answer_blocks_the_bundle_and_is_a_gap_with_allow_partial(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    """Flagger's check queries (range answers) are read after the fetch: a bad sample there was a traceback."""
    prom = prometheus_for(SCENARIO)
    body = b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1764000000,"1"],[5,"1","x"]]}]}}'
    rules = [Rule("histogram_quantile", "body", 200, body=body)]
    res, _ = collect_through(rules, simulated, prom, tmp_path / "out")
    assert res.returncode == 1, res.stderr  # type: ignore[attr-defined]
    assert 'malformed sample [5, "1", "x"]' in res.stderr and "Traceback" not in res.stderr, res.stderr  # type: ignore[attr-defined]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    res, _ = collect_through(rules, simulated, prom, tmp_path / "out", "--allow-partial")
    m = manifest(bundle_path(res))  # type: ignore[arg-type]
    failed = [q for q in m["queries"] if q["status"] == "failed"]
    if not failed:
        LEDGER.lost("a malformed check answer was recorded as a complete query")
    assert failed and all("malformed sample" in q["error"] for q in failed)
    assert {g["query"] for g in m["gaps"] if g["kind"] == "query_failed"} == {q["id"] for q in failed}


def test_an_invalid_check_query_is_recorded_and_the_bundle_still_written(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    bad = b'{"status":"error","errorType":"bad_data","error":"1:23: parse error: unexpected character"}'
    res, _ = collect_through(
        [Rule("histogram_quantile", "body", 400, body=bad)], simulated, prometheus_for(SCENARIO), tmp_path / "out"
    )
    m = manifest(bundle_path(res))  # type: ignore[arg-type]
    invalid = [g for g in m["gaps"] if g["kind"] == "query_invalid"]
    assert invalid and all("permanent" in g["detail"] for g in invalid)
    assert {q["id"] for q in m["queries"] if q.get("invalid")} == {g["query"] for g in invalid}
    assert m["counts"]["samples"] > 0


def test_an_invalid_core_query_blocks_and_says_rerunning_will_not_help(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    bad = b'{"status":"error","errorType":"bad_data","error":"invalid parameter \\"query\\""}'
    res, proxy = collect_through([Rule(RAW, "body", 400, body=bad)], simulated, prometheus_for(SCENARIO), tmp_path / "out")
    assert res.returncode == 1 and "re-running will not help" in res.stderr  # type: ignore[attr-defined]
    # A permanent error is not retried chunk after chunk (the scrape-label probe before it is another query).
    assert sum(RAW in r and "count_over_time" not in r for r in proxy.requests) == 1


def test_a_transient_502_is_retried_and_the_bundle_is_whole(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    res, proxy = collect_through([Rule(RAW, "status", 502, times=2)], simulated, prometheus_for(SCENARIO), tmp_path / "out")
    m = manifest(bundle_path(res))  # type: ignore[arg-type]
    assert sum(RAW in r for r in proxy.requests) >= 3
    assert all(q["status"] in ("ok", "empty") for q in m["queries"]) and not [g for g in m["gaps"] if g["kind"] == "query_failed"]


@pytest.mark.parametrize(
    "url", ["http://[::1", "http://127.0.0.1:99999", "http://127.0.0.1:0", "http:// space.example", "ftp://x"]
)
def test_a_malformed_prometheus_url_is_a_usage_error(url: str, simulated: Callable[[str], Path], tmp_path: Path) -> None:
    res = run(*collect_args(simulated(SCENARIO) / "dump", url, tmp_path / "out"))
    assert res.returncode == 2, res.stderr
    assert "--prometheus" in res.stderr
