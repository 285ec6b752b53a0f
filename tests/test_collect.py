"""`evidence collect`, `verify` and `show` against the simulator's scenarios and a real Prometheus."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from evidence.bundle import read_bundle, safe_component, verify_bundle
from evidence.errors import VerifyError
from fixtures.prom import PrometheusServer

from .conftest import SMALL_SCENARIOS
from .faultproxy import FaultProxy, Rule

EVIDENCE = [sys.executable, "-m", "evidence"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EVIDENCE, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=120)


def window_of(bundle: Path) -> tuple[float, float]:
    m = json.loads((bundle / "manifest.json").read_text())
    start = dt.datetime.fromisoformat(m["window"]["start"].replace("Z", "+00:00")).timestamp()
    end = dt.datetime.fromisoformat(m["window"]["end"].replace("Z", "+00:00")).timestamp()
    return start, end


def openmetrics_samples(sim: Path, services: set[str], start: float, end: float) -> dict[tuple[str, str], dict[int, float]]:
    """Parse the simulator's OpenMetrics: (metric, labels json) -> {ms: value} within the window."""
    out: dict[tuple[str, str], dict[int, float]] = {}
    for line in (sim / "openmetrics.txt").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        head, value, ts = line.rsplit(" ", 2)
        name, _, rest = head.partition("{")
        labels = dict(kv.split("=", 1) for kv in rest.rstrip("}").split(",")) if rest else {}
        labels = {k: v.strip('"') for k, v in labels.items()}
        if name.startswith("traefik_") and labels.get("service") not in services:
            continue
        t = int(ts)
        if start <= t <= end:
            key = (name, json.dumps(dict(sorted(labels.items())), separators=(",", ":")))
            out.setdefault(key, {})[t * 1000] = float(value)
    return out


@pytest.mark.parametrize("name", SMALL_SCENARIOS)
def test_bundle_holds_every_raw_sample_exactly(
    name: str, bundle_for: Callable[[str], Path], simulated: Callable[[str], Path], truth_of: Callable[[str], dict[str, Any]]
) -> None:
    bundle = bundle_for(name)
    truth = truth_of(name)
    start, end = window_of(bundle)
    expected = openmetrics_samples(simulated(name), {truth["primary_service"], truth["canary_service"]}, start, end)
    b = read_bundle(bundle)
    series = b.table("series")
    samples = b.table("samples")
    got: dict[tuple[str, str], dict[int, float]] = {}
    labels_of = dict(zip(series["series_id"], zip(series["metric"], series["labels"])))
    for sid, ts, v in zip(samples["series_id"], samples["timestamp"], samples["value"]):
        got.setdefault(labels_of[sid], {})[int(ts.timestamp() * 1000)] = float(v)
    assert got == expected
    assert samples["timestamp"].dt.tz is not None
    roles = set(series["role"])
    assert {"primary", "flagger"} <= roles
    if truth["rollouts"][-1]["canary_requests"]:
        assert "canary" in roles


@pytest.mark.parametrize("name", SMALL_SCENARIOS)
def test_bundle_holds_every_event_of_the_window_once(
    name: str, bundle_for: Callable[[str], Path], truth_of: Callable[[str], dict[str, Any]]
) -> None:
    bundle = bundle_for(name)
    start, end = window_of(bundle)
    events = read_bundle(bundle).table("events")
    truth = [e for e in truth_of(name)["events"] if start <= e["ts"] <= end]
    assert len(events) == len(truth)
    for e in truth:
        hits = events[
            (events["message"] == e["message"]) & ((events["time"].map(lambda t: t.timestamp()) - e["ts"]).abs() < 0.002)
        ]
        assert len(hits) == 1, e
        assert "log" in hits.iloc[0]["sources"]
        assert hits.iloc[0]["type"] == e["type"]


def test_weights_halts_and_rollback_are_parsed(
    bundle_for: Callable[[str], Path], truth_of: Callable[[str], dict[str, Any]]
) -> None:
    events = read_bundle(bundle_for("rollback-error-rate")).table("events")
    ro = truth_of("rollback-error-rate")["rollouts"][-1]
    weights = [int(w) for w in events.loc[events["action"] == "advance", "weight"]]
    assert weights == [w["weight"] for w in ro["weights"]]
    halts = events[events["action"] == "halt"]
    assert len(halts) == len(ro["halts"]) == 3
    assert set(halts["metric"]) == {"request-success-rate"} and (halts["threshold"] == 99).all()
    assert (halts["value"] < 99).all() and set(halts["comparator"]) == {"<"}
    rb = events[events["action"] == "rollback"].iloc[0]
    assert rb["failed_checks"] == 3 and "k8s" in rb["sources"]
    # Events deduplicated with the earlier rollout are recognised, not misread.
    adv10 = events[(events["action"] == "advance") & (events["weight"] == 10)].iloc[0]
    assert bool(adv10["cross_rollout"]) and adv10["k8s_count"] == 2
    assert adv10["time"].timestamp() == pytest.approx(ro["weights"][0]["at"], abs=0.1)


def test_manifest_records_queries_sources_and_hashes(bundle_for: Callable[[str], Path]) -> None:
    bundle = bundle_for("rollback-error-rate")
    m = json.loads((bundle / "manifest.json").read_text())
    assert m["schema"] == "evidence.bundle" and m["schema_version"] == 1
    assert m["canary"] == {"namespace": "shop", "name": "podinfo", "target": "podinfo", "service": "podinfo", "port": 80}
    assert m["sources"]["kubernetes"]["kind"] == "dump"
    assert m["sources"]["prometheus"]["url"].startswith("http://127.0.0.1:")
    ids = {q["id"]: q for q in m["queries"]}
    assert ids["raw:traefik_service_requests_total"]["status"] == "ok"
    assert ids["check:request-success-rate"]["step_seconds"] == 60
    for name in ("objects", "events", "logs", "series", "samples", "checks"):
        info = m["files"][f"{name}.parquet"]
        assert (
            len(info["sha256"]) == 64 and info["bytes"] > 0 and info["rows"] == m["counts"].get(name, info["rows"])
        ) or name in ("logs",)
    assert m["rollout"]["start"] == "2026-11-20T10:00:07Z"
    assert any("deduplicated with an earlier rollout" in w for w in m["warnings"])


def test_checks_are_flaggers_queries_at_its_ticks(
    bundle_for: Callable[[str], Path], truth_of: Callable[[str], dict[str, Any]]
) -> None:
    checks = read_bundle(bundle_for("rollback-error-rate")).table("checks")
    truth = truth_of("rollback-error-rate")
    sr = checks[checks["metric"] == "request-success-rate"]
    sr = sr.set_index(sr["timestamp"].map(lambda t: round(t.timestamp())))
    compared = 0
    for tick in truth["ticks"]:
        for ev in tick.get("evaluations", []):
            if ev["metric"] == "request-success-rate" and round(tick["t"]) in sr.index:
                assert sr.loc[round(tick["t"]), "value"] == pytest.approx(ev["value"], abs=0.5)
                compared += 1
    assert compared >= 5
    assert (checks.loc[checks["metric"] == "request-success-rate", "threshold_min"] == 99).all()


def test_secrets_never_enter_the_bundle(bundle_for: Callable[[str], Path]) -> None:
    bundle = bundle_for("rollback-error-rate")
    blob = b"".join(p.read_bytes() for p in bundle.iterdir())
    text = json.dumps(read_bundle(bundle).objects())
    for secret in ("eyJhbGciOiJIUzI1NiJ9", "s3cr3t-pass", "aHR0cHM6Ly9ob29rcy5zbGFjay5jb20"):
        assert secret.encode() not in blob and secret not in text
    canary = read_bundle(bundle).canary
    hooks = {h["name"]: h for h in canary["spec"]["analysis"]["webhooks"]}
    assert hooks["rollback-gate"]["metadata"]["authorization"] == "<redacted>"
    assert hooks["audit"]["url"] == "https://<redacted>@evidence-receiver.ops.svc/flagger/events"
    # Harmless metadata survives.
    assert "hey -z 1m" in hooks["load-test"]["metadata"]["cmd"]
    assert not read_bundle(bundle).objects(kind="Secret")
    workloads = read_bundle(bundle).objects(kind="Deployment")
    assert {w["metadata"]["name"] for w in workloads} == {"podinfo", "podinfo-primary"}
    assert workloads[0]["spec"]["template"]["spec"]["containers"][0]["image"].startswith("ghcr.io/stefanprodan/podinfo:")


@pytest.mark.parametrize(
    "name",
    ["manifest.json", "objects.parquet", "events.parquet", "logs.parquet", "series.parquet", "samples.parquet", "checks.parquet"],
)
def test_verify_fails_when_any_byte_of_any_file_changes(name: str, bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    copy = tmp_path / "b"
    shutil.copytree(bundle_for("healthy-promotion"), copy)
    verify_bundle(copy)
    victim = copy / name
    data = bytearray(victim.read_bytes())
    # A byte that keeps the manifest valid JSON: a digit inside a number or hash, or any parquet byte.
    i = (
        next(i for i in range(len(data) // 3, len(data)) if chr(data[i]) in "0123456789")
        if name.endswith(".json")
        else len(data) // 3
    )
    data[i] = ord("7") if data[i] != ord("7") else ord("3")
    victim.write_bytes(bytes(data))
    res = run("verify", str(copy))
    assert res.returncode == 1, res.stdout
    assert name in res.stderr


def test_verify_passes_then_fails_on_any_change(bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    copy = tmp_path / "b"
    shutil.copytree(bundle_for("healthy-promotion"), copy)
    ok = run("verify", str(copy))
    assert ok.returncode == 0, ok.stderr
    victim = copy / "samples.parquet"
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    bad = run("verify", str(copy))
    assert bad.returncode == 1 and "samples.parquet differs" in bad.stderr
    victim.unlink()
    with pytest.raises(VerifyError, match=r"samples\.parquet is missing"):
        verify_bundle(copy)
    shutil.copy(bundle_for("healthy-promotion") / "samples.parquet", victim)
    (copy / "notes.txt").write_text("added later")
    with pytest.raises(VerifyError, match=r"notes\.txt is not listed"):
        verify_bundle(copy)
    (copy / "notes.txt").unlink()
    (copy / "extra").mkdir()
    (copy / "extra" / "manifest.json").write_text("{}")
    with pytest.raises(VerifyError, match=r"extra/manifest\.json is not listed"):
        verify_bundle(copy)


def test_show_summarises(bundle_for: Callable[[str], Path]) -> None:
    res = run("show", str(bundle_for("rollback-error-rate")))
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "shop/podinfo" in out and "rolled back" in out and "10 → 20 → 30 → 40 %" in out
    assert "2026-11-20T10:00:07Z" in out


def test_cli_collect_prints_the_path_last(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    dump = tmp_path / "dump"
    shutil.copytree(simulated("rollback-latency") / "dump", dump)
    # The event-webhook journal is read too when it sits in the dump.
    shutil.copy(simulated("rollback-latency") / "webhook-events.jsonl", dump)
    res = run(
        "collect",
        "payments/api",
        "--from-dump",
        str(dump),
        "--out",
        str(tmp_path / "out"),
        env={"EVIDENCE_PROMETHEUS_URL": prometheus_for("rollback-latency").url},
    )
    assert res.returncode == 0, res.stderr
    path = Path(res.stdout.strip().splitlines()[-1])
    assert path.parent == tmp_path / "out" and path.is_dir()
    assert res.stderr == ""  # no progress when stderr is not a terminal
    events = read_bundle(path).table("events")
    assert events["sources"].str.contains("webhook").all()
    assert events["phase"].notna().all()


# ----- faults -------------------------------------------------------------------------------


def collect_args(dump: Path, url: str, out: Path, *extra: str) -> list[str]:
    return ["collect", "shop/podinfo", "--from-dump", str(dump), "--prometheus", url, "--out", str(out), *extra]


def test_unreachable_prometheus_names_the_url(simulated: Callable[[str], Path], tmp_path: Path) -> None:
    res = run(*collect_args(simulated("healthy-promotion") / "dump", "http://127.0.0.1:9", tmp_path / "out"))
    assert res.returncode == 1
    assert "http://127.0.0.1:9 is unreachable" in res.stderr and "EVIDENCE_PROMETHEUS_URL" in res.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_failing_query_is_a_gap_not_silence(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    server = prometheus_for("healthy-promotion")
    dump = simulated("healthy-promotion") / "dump"
    with FaultProxy(server.url, [Rule("flagger_canary_status", "status", 500)]) as proxy:
        res = run(*collect_args(dump, proxy.url, tmp_path / "out"))
        assert res.returncode == 1, res.stderr
        assert "raw:flagger_canary_status" in res.stderr and "--allow-partial" in res.stderr
        assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []
        res = run(*collect_args(dump, proxy.url, tmp_path / "out", "--allow-partial"))
        assert res.returncode == 0, res.stderr
    m = json.loads((Path(res.stdout.strip().splitlines()[-1]) / "manifest.json").read_text())
    failed = [q for q in m["queries"] if q["status"] == "failed"]
    assert [q["id"] for q in failed] == ["raw:flagger_canary_status"]
    assert "500" in failed[0]["error"]
    gap = next(g for g in m["gaps"] if g["kind"] == "query_failed")
    assert gap["query"] == "raw:flagger_canary_status" and gap["detail"] == failed[0]["error"]
    assert gap["from"] == m["window"]["start"] and gap["to"] == m["window"]["end"]


def test_the_scrape_label_probe_is_one_query_and_its_failure_a_recorded_warning(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    server = prometheus_for("healthy-promotion")
    with FaultProxy(server.url, [Rule("evidence_probe", "status", 400)]) as proxy:
        res = run(*collect_args(simulated("healthy-promotion") / "dump", proxy.url, tmp_path / "out"))
        assert res.returncode == 0, res.stderr
    probes = [r for r in proxy.requests if "evidence_probe" in r]
    assert len(probes) == 1 and probes[0].count("count_over_time") == 4  # every form in one round trip
    m = json.loads((Path(res.stdout.strip().splitlines()[-1]) / "manifest.json").read_text())
    assert m["sources"]["labels"]["chosen"] == "default"
    assert any("scrape labels could not be detected" in w and "the defaults are used" in w for w in m["warnings"]), m["warnings"]
    assert m["counts"]["samples"] > 1000  # the defaults are this scenario's labels: the bundle is whole


def test_transient_5xx_is_retried(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    server = prometheus_for("healthy-promotion")
    with FaultProxy(server.url, [Rule("traefik_service_requests_total", "status", 503, times=1)]) as proxy:
        res = run(*collect_args(simulated("healthy-promotion") / "dump", proxy.url, tmp_path / "out"))
        assert res.returncode == 0, res.stderr
        assert sum("traefik_service_requests_total" in r for r in proxy.requests) >= 2


def test_a_hanging_prometheus_times_out(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    server = prometheus_for("healthy-promotion")
    with FaultProxy(server.url, [Rule("vector(1)", "hang")]) as proxy:
        t0 = dt.datetime.now()
        res = run(*collect_args(simulated("healthy-promotion") / "dump", proxy.url, tmp_path / "out", "--timeout", "1"))
        took = (dt.datetime.now() - t0).total_seconds()
    assert res.returncode == 1
    assert f"{proxy.url} did not answer" in res.stderr and "--timeout" in res.stderr
    assert took < 25


# ----- bad input ----------------------------------------------------------------------------


def test_unknown_canary_lists_what_is_there(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    url = prometheus_for("healthy-promotion").url
    res = run(
        "collect",
        "shop/nope",
        "--from-dump",
        str(simulated("healthy-promotion") / "dump"),
        "--prometheus",
        url,
        "--out",
        str(tmp_path),
    )
    assert res.returncode == 1
    assert "canary shop/nope not found" in res.stderr and "shop/podinfo" in res.stderr


def test_no_rollout_in_the_window(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    dump = tmp_path / "dump"
    dump.mkdir()
    shutil.copy(simulated("healthy-promotion") / "dump" / "canary.json", dump)
    res = run(*collect_args(dump, prometheus_for("healthy-promotion").url, tmp_path / "out"))
    assert res.returncode == 1
    assert "no rollout of canary shop/podinfo found" in res.stderr and "--start" in res.stderr


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--start", "2026-11-20T11:00:00Z", "--end", "2026-11-20T10:00:00Z"], "at or after it ends"),
        (["--start", "2026-11-01T00:00:00Z", "--end", "2026-11-20T10:00:00Z"], "longer than the limit"),
        (["--start", "yesterday"], "--start 'yesterday': not a time"),
        (["--lookback", "7x"], "--lookback '7x': not a duration"),
        (["--since", "2h", "--start", "now-3h"], "drop --start/--end, or drop --since"),
        (["--lead", "ten"], "--lead 'ten': not a duration"),
        (["--prometheus-header", "nonsense"], "write NAME=VALUE"),
    ],
)
def test_bad_windows_and_options_are_usage_errors(
    extra: list[str],
    message: str,
    simulated: Callable[[str], Path],
    prometheus_for: Callable[[str], PrometheusServer],
    tmp_path: Path,
) -> None:
    res = run(
        *collect_args(simulated("healthy-promotion") / "dump", prometheus_for("healthy-promotion").url, tmp_path / "out", *extra)
    )
    assert res.returncode == 2, res.stderr
    assert message in res.stderr


def test_bad_canary_argument_is_a_usage_error() -> None:
    res = run("collect", "shop/", "--prometheus", "http://127.0.0.1:9")
    assert res.returncode == 2 and "write NAME -n NAMESPACE" in res.stderr


def test_dump_with_junk_files_names_them(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    dump = tmp_path / "dump"
    shutil.copytree(simulated("healthy-promotion") / "dump", dump)
    (dump / "notes.json").write_text('{"hello": "world"}')
    (dump / "broken.yaml").write_text("a: [unclosed")
    (dump / "binary.log").write_bytes(b"\xff\xfe\x00garbage")
    res = run(*collect_args(dump, prometheus_for("healthy-promotion").url, tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    m = json.loads((Path(res.stdout.strip().splitlines()[-1]) / "manifest.json").read_text())
    text = "\n".join(m["warnings"])
    assert "skipped notes.json (not a Kubernetes object or List;" in text
    assert "skipped broken.yaml" in text and "skipped binary.log" in text
    assert "Warning: skipped broken.yaml" in res.stderr  # said, not only recorded


def test_dump_with_nothing_usable_is_an_error(tmp_path: Path) -> None:
    dump = tmp_path / "dump"
    dump.mkdir()
    (dump / "readme.md").write_text("# hi")
    (dump / "x.json").write_text("[1, 2]")
    res = run(*collect_args(dump, "http://127.0.0.1:9", tmp_path / "out"))
    assert res.returncode == 1
    assert "nothing usable" in res.stderr and "x.json" in res.stderr and "kubectl get canary" in res.stderr


def test_hostile_names_are_escaped_not_injected(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    dump = tmp_path / "dump"
    shutil.copytree(simulated("healthy-promotion") / "dump", dump)
    canary = json.loads((dump / "canary.json").read_text())
    evil = 'podinfo"} or vector(1) or up{x=".*'
    canary["spec"]["targetRef"]["name"] = evil
    (dump / "canary.json").write_text(json.dumps(canary))
    # No Traefik series has that name: --allow-partial writes the bundle anyway.
    res = run(*collect_args(dump, prometheus_for("healthy-promotion").url, tmp_path / "out"), "--allow-partial")
    assert res.returncode == 0, res.stderr
    bundle = Path(res.stdout.strip().splitlines()[-1])
    m = json.loads((bundle / "manifest.json").read_text())
    # Flagger's templates paste names unquoted: such checks are refused, never sent.
    assert not [q for q in m["queries"] if q["id"].startswith("check:")]
    assert any("Flagger's checks were not re-run" in w and "is not a Kubernetes name" in w for w in m["warnings"])
    assert all(q["status"] != "failed" for q in m["queries"])
    weight = next(q for q in m["queries"] if q["id"] == "raw:flagger_canary_weight")
    # The quote is escaped for PromQL, the regex characters for RE2.
    assert 'workload=~"podinfo\\"\\\\} or vector\\\\(1\\\\)' in weight["query"]
    assert weight["status"] != "failed", weight
    # Nothing was injected: no series of other metrics came back.
    series = read_bundle(bundle).table("series")
    assert set(series["metric"]) <= {
        "traefik_service_requests_total",
        "traefik_service_request_duration_seconds_bucket",
        "traefik_service_request_duration_seconds_sum",
        "traefik_service_request_duration_seconds_count",
        "flagger_canary_weight",
        "flagger_canary_status",
        "flagger_canary_metric_analysis",
    }
    assert not (series["metric"] == "flagger_canary_weight").any()
    assert safe_component("../../etc/passwd") == "etc-passwd"
    assert "/" not in safe_component('a/b\\c:d*e?"f<g>h|') and safe_component("CON") != "CON"


def test_the_bundle_appears_whole_or_not_at_all(tmp_path: Path) -> None:
    from evidence.bundle import bundle_writer

    with pytest.raises(KeyboardInterrupt), bundle_writer(tmp_path, "b") as w:
        w.write_table(
            "samples", pd.DataFrame({"series_id": [1], "timestamp": [pd.Timestamp("2026-01-01", tz="UTC")], "value": [1.0]})
        )
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


# ----- the live path: the real kubernetes client against the loopback API server -----------


def test_live_cluster_path_matches_the_dump_path(
    simulated: Callable[[str], Path],
    prometheus_for: Callable[[str], PrometheusServer],
    bundle_for: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    from .kubeapi import KubeApiServer

    env = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
    url = prometheus_for("rollback-error-rate").url
    with KubeApiServer(simulated("rollback-error-rate") / "dump", tmp_path / "kube") as api:
        res = run(
            "collect",
            "shop/podinfo",
            "--kubeconfig",
            str(api.kubeconfig),
            "--prometheus",
            url,
            "--out",
            str(tmp_path / "out"),
            env=env,
        )
        assert res.returncode == 0, res.stderr
        live = read_bundle(res.stdout.strip().splitlines()[-1])
        assert not api.requests_for("/api/v1/namespaces/shop/secrets")
        denied = run(
            "collect", "shop/podinfo", "--kubeconfig", str(api.kubeconfig), "--context", "no-events",
            "--prometheus", url, "--out", str(tmp_path / "out2"), env=env,
        )  # fmt: skip
        missing = run(
            "collect", "shop/podinfo", "--kubeconfig", str(api.kubeconfig), "--context", "prod",
            "--prometheus", url, "--out", str(tmp_path / "out2"), env=env,
        )  # fmt: skip
    assert live.manifest["sources"]["kubernetes"]["kind"] == "cluster"
    assert live.manifest["sources"]["kubernetes"]["location"] == api.url
    dumped = read_bundle(bundle_for("rollback-error-rate"))
    cols = ["time", "message", "action", "weight", "k8s_count"]
    pd.testing.assert_frame_equal(live.table("events")[cols], dumped.table("events")[cols])
    # The session's bundle was collected at the simulated snapshot time, this one now: compare the common window.
    cut = dumped.table("samples")["timestamp"].max()
    live_samples = live.table("samples")
    assert int((live_samples["timestamp"] <= cut).sum()) == len(dumped.table("samples"))
    assert denied.returncode == 1 and "list events" in denied.stderr and "shop" in denied.stderr
    assert not (tmp_path / "out2").exists() or not list((tmp_path / "out2").iterdir())
    assert missing.returncode == 1 and "prod" in missing.stderr and "test" in missing.stderr


def test_prometheus_credentials_and_tenant_headers(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    server = prometheus_for("healthy-promotion")
    dump = simulated("healthy-promotion") / "dump"
    token = "t0ken-abcdef-123456"
    required = {"Authorization": f"Bearer {token}", "X-Scope-OrgID": "tenant-a"}
    with FaultProxy(server.url, require=required) as proxy:
        res = run(*collect_args(dump, proxy.url, tmp_path / "out"))
        assert res.returncode == 1 and "401" in res.stderr and "--prometheus-token" in res.stderr
        token_file = tmp_path / "token"
        token_file.write_text(token + "\n")
        res = run(
            *collect_args(
                dump,
                proxy.url,
                tmp_path / "out",
                "--prometheus-token-file",
                str(token_file),
                "--prometheus-header",
                "X-Scope-OrgID=tenant-a",
            )
        )
        assert res.returncode == 0, res.stderr
    bundle = Path(res.stdout.strip().splitlines()[-1])
    m = json.loads((bundle / "manifest.json").read_text())
    assert m["sources"]["prometheus"]["auth"] == ["bearer-token"]
    assert m["sources"]["prometheus"]["headers"] == ["X-Scope-OrgID"]
    assert token.encode() not in b"".join(p.read_bytes() for p in bundle.iterdir())


def test_basic_auth_in_the_url_is_used_but_never_recorded(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    import base64

    server = prometheus_for("healthy-promotion")
    basic = "Basic " + base64.b64encode(b"reader:pa55word").decode()
    with FaultProxy(server.url, require={"Authorization": basic}) as proxy:
        url = proxy.url.replace("http://", "http://reader:pa55word@")
        res = run(*collect_args(simulated("healthy-promotion") / "dump", url, tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    bundle = Path(res.stdout.strip().splitlines()[-1])
    m = json.loads((bundle / "manifest.json").read_text())
    assert m["sources"]["prometheus"]["url"] == proxy.url and m["sources"]["prometheus"]["auth"] == ["basic-auth"]
    assert b"pa55word" not in b"".join(p.read_bytes() for p in bundle.iterdir())


def test_progress_shows_on_a_terminal_and_not_with_quiet(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    import pty

    def on_tty(extra: list[str], out: str) -> str:
        args = [
            *EVIDENCE,
            *collect_args(simulated("healthy-promotion") / "dump", prometheus_for("healthy-promotion").url, tmp_path / out),
        ]
        main, child = pty.openpty()
        proc = subprocess.run([*args, *extra], stdout=subprocess.PIPE, stderr=child, timeout=120)
        os.close(child)
        chunks = []
        try:
            while True:
                data = os.read(main, 65536)
                if not data:
                    break
                chunks.append(data)
        except OSError:
            pass
        os.close(main)
        assert proc.returncode == 0
        return b"".join(chunks).decode(errors="replace")

    shown = on_tty([], "a")
    assert "prometheus:" in shown and "queries" in shown
    # --quiet silences progress only: the bundle's warnings are still said, one line each (kubectl style).
    quiet = on_tty(["--quiet"], "b")
    assert "prometheus:" not in quiet and "queries" not in quiet
    assert all(line.startswith("Warning: ") for line in quiet.splitlines()), quiet
    # The same rollout again: nothing is collected, and that is said even with --quiet.
    again = on_tty(["--quiet"], "b")
    assert again.startswith("Warning: a bundle of this rollout is already in") and "prometheus:" not in again


def test_a_failed_chunk_is_recorded_with_its_time_range(
    simulated: Callable[[str], Path],
    prometheus_for: Callable[[str], PrometheusServer],
    truth_of: Callable[[str], dict[str, Any]],
    tmp_path: Path,
) -> None:
    truth = truth_of("healthy-promotion")
    start = truth["rollouts"][-1]["start"] - 5 * 3600
    end = start + 6 * 3600
    first_chunk_end = start + 2 * 3600
    iso = lambda t: dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    rule = Rule(f"[7200s]&time={first_chunk_end:.3f}", "status", 500)
    with FaultProxy(prometheus_for("healthy-promotion").url, [rule]) as proxy:
        res = run(
            *collect_args(
                simulated("healthy-promotion") / "dump",
                proxy.url,
                tmp_path / "out",
                "--start",
                iso(start),
                "--end",
                iso(end),
                "--allow-partial",
            )
        )
    assert res.returncode == 0, res.stderr
    m = json.loads((Path(res.stdout.strip().splitlines()[-1]) / "manifest.json").read_text())
    failed = [g for g in m["gaps"] if g["kind"] == "query_failed"]
    assert {g["query"] for g in failed} == {q["id"] for q in m["queries"] if q["kind"] == "raw"}
    assert all(g["from"] == iso(start) and g["to"] == iso(first_chunk_end) for g in failed), failed
    q = next(q for q in m["queries"] if q["id"] == "raw:traefik_service_requests_total")
    assert q["chunks"] == 3 and q["failed_chunks"] == [{"from": iso(start), "to": iso(first_chunk_end)}]
    # The chunks that answered are kept: the rollout itself is fully there.
    assert q["samples"] > 0


def test_a_query_that_hangs_is_given_up_and_the_others_still_run(
    simulated: Callable[[str], Path],
    prometheus_for: Callable[[str], PrometheusServer],
    truth_of: Callable[[str], dict[str, Any]],
    tmp_path: Path,
) -> None:
    truth = truth_of("healthy-promotion")
    end = truth["rollouts"][-1]["start"] + 1800
    start = end - 40 * 3600
    iso = lambda t: dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")  # noqa: E731
    with FaultProxy(
        prometheus_for("healthy-promotion").url, [Rule('_bucket{service=~"shop-podinfo-(primary|canary)', "hang")]
    ) as proxy:
        t0 = dt.datetime.now()
        args = ["--start", iso(start), "--end", iso(end), "--timeout", "1", "--allow-partial"]
        res = run(*collect_args(simulated("healthy-promotion") / "dump", proxy.url, tmp_path / "out", *args))
        took = (dt.datetime.now() - t0).total_seconds()
    # 20 chunks at 2 s each would take 40 s; the query is given up after 2 timeouts.
    assert took < 30, took
    assert res.returncode == 0, res.stderr
    m = json.loads((Path(res.stdout.strip().splitlines()[-1]) / "manifest.json").read_text())
    status = {q["id"]: q["status"] for q in m["queries"]}
    assert status.pop("raw:traefik_service_request_duration_seconds_bucket") == "failed"
    assert set(status.values()) <= {"ok", "empty"} and status["raw:flagger_canary_weight"] == "ok"
    skipped = [g for g in m["gaps"] if "not attempted" in (g.get("detail") or "")]
    assert skipped and all(g["query"] == "raw:traefik_service_request_duration_seconds_bucket" for g in skipped)
    assert m["counts"]["checks"] > 0


def test_secrets_in_every_disguise_stay_out_of_bundles_and_reports(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    import yaml

    dump = tmp_path / "dump"
    shutil.copytree(simulated("rollback-error-rate") / "dump", dump)
    canary = json.loads((dump / "canary.json").read_text())
    hooks = canary["spec"]["analysis"]["webhooks"]
    hooks[0]["url"] = "https://gate.example/check?token=s3cr3tT0ken42&team=web"
    hooks[0]["metadata"] = {
        "apiToken": "hunter2hunter2",
        "clientSecret": "cl13nt-s3cr3t",
        "header": "Authorization: Basic dXNlcjpzdXBlcnNlY3JldA==",
    }
    hooks[1]["metadata"] = {
        "cmd": "PGPASSWORD=pgS3cret psql -c x; hey --password fl4gP4ss http://x/; curl -u admin:Pa55w0rd http://x/?code=500",
        "cookieName": "canary",
        "note": "token validation failed",
    }
    hooks[2]["metadata"] = {
        "authorization": 918273645,
        "apiTokens": ["tok3nA1", "tok3nB2"],
        "credentials": {"user": "u", "pass": "cr3dP4ss"},
    }
    (dump / "canary.json").write_text(json.dumps(canary))
    providers = yaml.safe_load((dump / "alertproviders.yaml").read_text())
    providers["items"][0]["spec"]["address"] = "https://hooks.slack.com/services/T0000/B0000/XXXXSLACKSECRET"
    providers["items"][0]["spec"]["proxy"] = "http://proxyuser:proxypass@proxy.corp:3128"
    (dump / "alertproviders.yaml").write_text(yaml.safe_dump(providers))
    res = run(*collect_args(dump, prometheus_for("rollback-error-rate").url, tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    bundle = Path(res.stdout.strip().splitlines()[-1])
    reports = run("render", str(bundle), "--format", "all", "--out", str(tmp_path / "reports"))
    assert reports.returncode == 0, reports.stderr
    blobs = [p.read_bytes() for p in bundle.iterdir()] + [p.read_bytes() for p in (tmp_path / "reports").iterdir()]
    for secret in (
        "s3cr3tT0ken42",
        "hunter2hunter2",
        "cl13nt-s3cr3t",
        "dXNlcjpzdXBlcnNlY3JldA",
        "Pa55w0rd",
        "XXXXSLACKSECRET",
        "proxypass",
        "pgS3cret",
        "fl4gP4ss",
        "918273645",
        "tok3nA1",
        "cr3dP4ss",
    ):
        assert not any(secret.encode() in b for b in blobs), secret
    objects = read_bundle(bundle)
    hook = objects.canary["spec"]["analysis"]["webhooks"][1]
    assert hook["metadata"]["cookieName"] == "canary"  # not a secret: kept
    assert hook["metadata"]["note"] == "token validation failed"  # prose is not a credential
    assert "code=500" in hook["metadata"]["cmd"]
    redacted = objects.table("objects").set_index("kind")["redacted"]
    assert "$.spec.address" in list(redacted["AlertProvider"])


def test_microsecond_timestamps_are_kept_to_the_millisecond(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    dump = tmp_path / "dump"
    shutil.copytree(simulated("healthy-promotion") / "dump", dump)
    lines = (dump / "flagger.log").read_text().splitlines()
    i = next(i for i, line in enumerate(lines) if "New revision detected" in line)
    rec = json.loads(lines[i])
    rec["ts"] = rec["ts"].replace("Z", "456Z")  # e.g. 10:00:07.000456Z: microseconds, as MicroTime carries
    lines[i] = json.dumps(rec)
    (dump / "flagger.log").write_text("\n".join(lines) + "\n")
    res = run(*collect_args(dump, prometheus_for("healthy-promotion").url, tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    events = read_bundle(res.stdout.strip().splitlines()[-1]).table("events")
    t = events.loc[events["action"] == "new-revision", "time"].iloc[0]
    assert t.microsecond % 1000 == 0


@pytest.mark.parametrize("extra", ["signatures/extra.parquet", "symlink", "empty-dir"])
def test_verify_refuses_anything_not_in_the_manifest(extra: str, bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    copy = tmp_path / "b"
    shutil.copytree(bundle_for("healthy-promotion"), copy)
    if extra == "symlink":
        (copy / "link").symlink_to("/etc/hostname")
    elif extra == "empty-dir":
        (copy / "empty").mkdir()
    else:
        (copy / "signatures").mkdir()
        (copy / extra).write_text("evil")
    res = run("verify", str(copy))
    assert res.returncode == 1 and "extra" in res.stderr, res.stderr


def test_names_with_a_trailing_newline_are_not_kubernetes_names() -> None:
    from evidence.errors import UsageError
    from evidence.model import CanaryRef

    with pytest.raises(UsageError):
        CanaryRef.parse("shop\n/podinfo")
    with pytest.raises(UsageError):
        CanaryRef.parse("shop/podinfo\n")


def test_the_same_rollout_collected_twice_is_one_bundle(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    sim, url = simulated("healthy-promotion"), prometheus_for("healthy-promotion").url
    first = run(*collect_args(sim / "dump", url, tmp_path / "out"))
    again = run(*collect_args(sim / "dump", url, tmp_path / "out"))
    assert first.returncode == again.returncode == 0, first.stderr + again.stderr
    path = Path(first.stdout.strip().splitlines()[-1])
    assert again.stdout.strip().splitlines()[-1] == str(path)
    assert "already in" in again.stderr
    assert [p.name for p in (tmp_path / "out").iterdir()] == [path.name]
    m = json.loads((path / "manifest.json").read_text())
    assert m["bundle_id"] == m["rollout_id"][:32] and m["cluster"] == {"name": "unknown", "from": "unknown"}
    other = run(*collect_args(sim / "dump", url, tmp_path / "out"), "--cluster", "prod-eu")
    assert other.returncode == 0, other.stderr
    m2 = json.loads((Path(other.stdout.strip().splitlines()[-1]) / "manifest.json").read_text())
    assert m2["cluster"] == {"name": "prod-eu", "from": "--cluster"} and m2["bundle_id"] != m["bundle_id"]


def test_no_traefik_series_for_the_canary_is_an_error_naming_the_causes(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    dump = tmp_path / "dump"
    shutil.copytree(simulated("healthy-promotion") / "dump", dump)
    canary = json.loads((dump / "canary.json").read_text())
    canary["spec"]["service"]["port"] = 8081  # Traefik names the leaf services by another port
    (dump / "canary.json").write_text(json.dumps(canary))
    url = prometheus_for("healthy-promotion").url
    res = run(*collect_args(dump, url, tmp_path / "out"))
    assert res.returncode == 1
    assert "no Traefik series" in res.stderr and "Nothing was written" in res.stderr
    for cause in ("honorLabels", "exported_service", "addServicesLabels", "per-router", "port"):
        assert cause in res.stderr, cause
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    ok = run(*collect_args(dump, url, tmp_path / "out"), "--allow-partial")
    assert ok.returncode == 0, ok.stderr
    m = json.loads((Path(ok.stdout.strip().splitlines()[-1]) / "manifest.json").read_text())
    assert any(w.startswith("no Traefik series") for w in m["warnings"])
    assert "Warning: no Traefik series" in ok.stderr


def test_a_datadog_template_is_kept_and_its_check_marked_not_rerunnable(bundle_for: Callable[[str], Path]) -> None:
    b = bundle_for("datadog-template")
    m = json.loads((b / "manifest.json").read_text())
    text = "\n".join(m["warnings"])
    assert (
        "metric error-rate: its MetricTemplate's provider is datadog, not Prometheus: the check is not re-runnable here" in text
    )
    checks = {q["id"] for q in m["queries"] if q["id"].startswith("check:")}
    assert checks == {"check:request-success-rate"}
    import pandas as pd

    objects = pd.read_parquet(b / "objects.parquet")
    template = objects[objects["kind"] == "MetricTemplate"]
    assert len(template) == 1
    assert '"datadog"' in template.iloc[0]["body"] and "api.datadoghq.eu" in template.iloc[0]["body"]


def test_a_template_address_is_queried_where_it_answers(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    def cart(args: list[str]) -> list[str]:
        return [args[0], "shop/cart", *args[2:]]

    dump = tmp_path / "dump"
    shutil.copytree(simulated("promoted-despite-breach") / "dump", dump)
    url = prometheus_for("promoted-despite-breach").url
    # In the simulator the template names the in-cluster address, which does not answer from here.
    res = run(*cart(collect_args(dump, url, tmp_path / "out")))
    assert res.returncode == 0, res.stderr
    m = json.loads((Path(res.stdout.strip().splitlines()[-1]) / "manifest.json").read_text())
    q = next(q for q in m["queries"] if q["id"] == "check:error-percentage")
    assert q["address"] == "http://prometheus.monitoring:9090" and q["status"] == "ok"
    assert any("provider.address http://prometheus.monitoring:9090 did not answer from here" in w for w in m["warnings"])
    # The template names a Prometheus that answers (the same one under another name): it is queried there.
    other = url.replace("127.0.0.1", "localhost")
    assert other != url
    templates = json.loads((dump / "metrictemplates.json").read_text())
    templates["items"][0]["spec"]["provider"]["address"] = other
    (dump / "metrictemplates.json").write_text(json.dumps(templates))
    res = run(*cart(collect_args(dump, url, tmp_path / "out2")))
    assert res.returncode == 0, res.stderr
    m = json.loads((Path(res.stdout.strip().splitlines()[-1]) / "manifest.json").read_text())
    q = next(q for q in m["queries"] if q["id"] == "check:error-percentage")
    assert q["address"] == other.rstrip("/") and q["status"] == "ok" and q["samples"] > 0
    assert not any("did not answer" in w for w in m["warnings"])
