"""``evidence preflight`` on simulator scenarios: dumps served by a real Prometheus, judged at ``--at``.

Every check is seen both ways (ok and warn/block).  Variants of a scenario are its dump with
one object edited, the way an operator's cluster would differ.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from click.testing import CliRunner

from evidence.cli import cli
from evidence.errors import UsageError
from evidence.model import CanaryRef, rfc3339
from evidence.policy import default_policy, policy_from_dict
from evidence.preflight import CheckResult, Preflight, parse_at, run_preflight
from evidence.sources.dump import DumpSource
from evidence.sources.prometheus import PrometheusSource
from fixtures.prom import PrometheusServer, backfill
from fixtures.scenario import load_scenario

from .conftest import ROOT, SCENARIOS

GUARDED, MISMATCH, EXPORTED = "preflight/guarded", "preflight/service-name-mismatch", "preflight/exported-service"
SCHEMA = json.loads((ROOT / "schemas" / "preflight.schema.json").read_text())


def at_of(truth: dict[str, Any], before_end: float = 60.0) -> dt.datetime:
    """Return a time inside the backfilled data: ``before_end`` seconds before the window's end."""
    return dt.datetime.fromtimestamp(truth["window"]["end"] - before_end, dt.UTC)


def of(p: Preflight, code: str) -> list[CheckResult]:
    return [c for c in p.checks if c.code == code]


def one(p: Preflight, code: str, needle: str) -> CheckResult:
    found = [c for c in of(p, code) if needle in c.message]
    assert len(found) == 1, (needle, [c.message for c in of(p, code)])
    return found[0]


@pytest.fixture()
def preflight_of(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], truth_of: Callable[[str], dict[str, Any]]
) -> Callable[..., Preflight]:
    def run(name: str, dump: Path | None = None, policy: Any = None, at: dt.datetime | None = None) -> Preflight:
        truth = truth_of(name)
        return run_preflight(
            CanaryRef.parse(truth["canary"]),
            DumpSource(dump or simulated(name) / "dump"),
            PrometheusSource(prometheus_for(name).url),
            policy or default_policy(),
            at or at_of(truth),
        )

    return run


def edited_dump(simulated: Callable[[str], Path], name: str, tmp_path: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    """Copy a scenario's dump and apply ``edit`` to its Canary."""
    dump = tmp_path / "dump"
    shutil.copytree(simulated(name) / "dump", dump)
    canary = json.loads((dump / "canary.json").read_text())
    edit(canary)
    (dump / "canary.json").write_text(json.dumps(canary))
    return dump


def test_guarded_passes_every_check_that_can_run_on_a_dump(preflight_of: Callable[..., Preflight]) -> None:
    p = preflight_of(GUARDED)
    assert not p.blocked
    assert {c.status for c in p.checks} == {"ok", "skip"}
    assert [c.code for c in p.checks if c.status == "skip"] == ["flagger-healthy"]
    assert {c.code for c in p.checks} == set(SCHEMA["properties"]["checks"]["items"]["properties"]["code"]["enum"])


def test_the_exposure_figure_is_max_weight_times_time_to_rollback(
    preflight_of: Callable[..., Preflight], truth_of: Callable[[str], dict[str, Any]]
) -> None:
    truth = truth_of(GUARDED)
    sc = load_scenario(SCENARIOS / f"{GUARDED}.yaml")
    rollback_s = (truth["threshold"] + 1) * truth["interval"]
    weight = truth["rollouts"][-1]["max_weight"]
    e = one(preflight_of(GUARDED), "limits", "worst-case exposure")
    assert e.status == "ok"
    assert (
        f"{sc.max_weight} % × {rollback_s // 60:.0f} min = {weight / 100 * rollback_s / 60:.1f} min of all traffic" in e.message
    )


def test_1767_blocks_naming_the_target_and_the_apex(
    preflight_of: Callable[..., Preflight], truth_of: Callable[[str], dict[str, Any]]
) -> None:
    sc = load_scenario(SCENARIOS / f"{MISMATCH}.yaml")
    assert sc.target != sc.apex
    p = preflight_of(MISMATCH)
    assert p.blocked
    blocks = [c for c in of(p, "flagger-queries-match") if c.status == "block"]
    assert [c.message.split(":")[0] for c in blocks] == [m.name for m in sc.metrics]
    for c in blocks:
        assert repr(sc.target) in c.message and repr(sc.apex) in c.message
        assert truth_of(MISMATCH)["primary_service"] in c.message and "flagger#1767" in c.message
    # The series themselves are fine: only Flagger's queries miss them.
    assert {c.status for c in of(p, "traefik-series")} == {"ok"}


def test_builtin_queries_match_when_the_names_agree(preflight_of: Callable[..., Preflight]) -> None:
    checks = of(preflight_of(GUARDED), "flagger-queries-match")
    assert [c.status for c in checks] == ["ok", "ok"]
    assert "shop-cart-canary-" in checks[0].message and "on the primary's traffic" in checks[0].message


def test_exported_service_label_makes_flaggers_queries_blind(preflight_of: Callable[..., Preflight]) -> None:
    p = preflight_of(EXPORTED)
    series = one(p, "traefik-series", "stored under")
    assert series.status == "warn" and "`exported_service`" in series.message and "honorLabels" in series.fix
    assert [c.status for c in of(p, "flagger-queries-match")] == ["block"]
    assert "`exported_service`" in of(p, "flagger-queries-match")[0].message
    assert [c.status for c in of(p, "abort-policy")] == ["block"]


def test_traefik_series_stale_or_missing_blocks(
    preflight_of: Callable[..., Preflight], truth_of: Callable[[str], dict[str, Any]]
) -> None:
    truth = truth_of(GUARDED)
    stale = preflight_of(GUARDED, at=at_of(truth, before_end=-60))  # a minute after the last scrape
    c = one(stale, "traefik-series", "stored under")
    assert c.status == "block" and "stale" in c.message
    gone = preflight_of(GUARDED, at=at_of(truth, before_end=-3600))
    c = one(gone, "traefik-series", "no traefik_service_requests_total")
    assert c.status == "block" and "observability.metrics" in c.fix


def test_missing_traefikservice_blocks(
    preflight_of: Callable[..., Preflight], simulated: Callable[[str], Path], tmp_path: Path
) -> None:
    dump = edited_dump(simulated, GUARDED, tmp_path, lambda c: None)
    (dump / "traefikservice.json").unlink()
    c = one(preflight_of(GUARDED, dump=dump), "traefik-series", "TraefikService")
    assert c.status == "block" and "shop/cart" in c.message


def test_flagger_absent_from_a_dump_is_skipped_and_another_provider_blocks(
    preflight_of: Callable[..., Preflight], simulated: Callable[[str], Path], tmp_path: Path
) -> None:
    absent = of(preflight_of(EXPORTED), "flagger-healthy")[0]  # the dump does not hold Flagger's Deployment
    assert absent.status == "skip" and "not checked" in absent.message
    dump = edited_dump(simulated, GUARDED, tmp_path, lambda c: c["spec"].pop("provider"))
    deploy = json.loads((dump / "flagger-deployment.json").read_text())
    args = deploy["spec"]["template"]["spec"]["containers"][0]["args"]
    args[:] = [a.replace("-mesh-provider=traefik", "-mesh-provider=istio") for a in args]
    (dump / "flagger-deployment.json").write_text(json.dumps(deploy))
    c = of(preflight_of(GUARDED, dump=dump), "flagger-healthy")[0]
    assert c.status == "block" and "-mesh-provider=istio" in c.message and "not traefik" in c.message


def test_metric_templates_both_ways(
    preflight_of: Callable[..., Preflight], simulated: Callable[[str], Path], tmp_path: Path
) -> None:
    name = "promoted-despite-breach"
    good = [c for c in of(preflight_of(name), "metric-templates")]
    assert [c.status for c in good] == ["ok"] and "renders and returns" in good[0].message
    dump = edited_dump(simulated, name, tmp_path, lambda c: None)
    (dump / "metrictemplates.json").unlink()
    missing = of(preflight_of(name, dump=dump), "metric-templates")
    assert [c.status for c in missing] == ["block"] and "not found" in missing[0].message
    bad = edited_dump(simulated, name, tmp_path / "bad", lambda c: None)
    templates = json.loads((bad / "metrictemplates.json").read_text())
    templates["items"][0]["spec"]["query"] = "sum(rate(x{a={{ variables.region }}}[1m]))"
    (bad / "metrictemplates.json").write_text(json.dumps(templates))
    unrendered = of(preflight_of(name, dump=bad), "metric-templates")
    assert [c.status for c in unrendered] == ["block"] and "region" in unrendered[0].message
    templates["items"][0]["spec"]["provider"] = {"type": "datadog"}
    (bad / "metrictemplates.json").write_text(json.dumps(templates))
    assert [c.status for c in of(preflight_of(name, dump=bad), "metric-templates")] == ["skip"]


def test_limits_both_ways(preflight_of: Callable[..., Preflight], simulated: Callable[[str], Path], tmp_path: Path) -> None:
    weights = of(preflight_of(EXPORTED), "limits")[0]
    assert weights.status == "block" and "up to 60 %" in weights.message and "policy limit 50 %" in weights.message
    loose = policy_from_dict({"limits": {"max_weight": 60}})
    assert of(preflight_of(EXPORTED, policy=loose), "limits")[0].status == "ok"

    def edit(c: dict[str, Any]) -> None:
        c["spec"].pop("progressDeadlineSeconds")
        for m in c["spec"]["analysis"]["metrics"]:
            m["interval"] = "20s"

    p = preflight_of(GUARDED, dump=edited_dump(simulated, GUARDED, tmp_path, edit))
    assert one(p, "limits", "progressDeadlineSeconds").status == "block"
    intervals = one(p, "limits", "metric windows")
    assert intervals.status == "block" and "fewer than two samples" in intervals.message
    relaxed = preflight_of(
        GUARDED, dump=tmp_path / "dump", policy=policy_from_dict({"limits": {"require_progress_deadline": False}})
    )
    assert one(relaxed, "limits", "progressDeadlineSeconds").status == "ok"


def test_an_analysis_that_cannot_fail_has_unbounded_exposure(
    preflight_of: Callable[..., Preflight], simulated: Callable[[str], Path], tmp_path: Path
) -> None:
    def edit(c: dict[str, Any]) -> None:
        c["spec"]["analysis"]["metrics"] = []
        c["spec"]["analysis"]["webhooks"] = [
            w for w in c["spec"]["analysis"]["webhooks"] if w["type"] in ("event", "post-rollout")
        ]

    p = preflight_of(GUARDED, dump=edited_dump(simulated, GUARDED, tmp_path, edit))
    c = one(p, "limits", "nothing can fail")
    assert c.status == "block" and p.blocked


def test_rollback_path_both_ways(preflight_of: Callable[..., Preflight]) -> None:
    ok = of(preflight_of(GUARDED), "rollback-path")
    assert [c.status for c in ok] == ["ok"] and "rollback hook rollback-gate" in ok[0].message
    assert [c.status for c in of(preflight_of(EXPORTED), "rollback-path")] == ["block"]
    lenient = policy_from_dict({"limits": {"require_rollback_path": False}})
    assert [c.status for c in of(preflight_of(EXPORTED, policy=lenient), "rollback-path")] == ["warn"]


def test_evidence_capture_both_ways(
    preflight_of: Callable[..., Preflight],
    simulated: Callable[[str], Path],
    truth_of: Callable[[str], dict[str, Any]],
    tmp_path: Path,
) -> None:
    assert [c.status for c in of(preflight_of(GUARDED), "evidence-capture")] == ["ok", "ok", "ok"]
    hooks = of(preflight_of(MISMATCH), "evidence-capture")
    assert [c.status for c in hooks[:2]] == ["warn", "warn"] and "1 h" in hooks[0].message
    # A Prometheus that keeps 30 minutes cannot hold a 40-minute rollout record.
    backfill(simulated(GUARDED) / "openmetrics.txt", tmp_path / "tsdb")
    with PrometheusServer(tmp_path / "tsdb", tmp_path, retention="30m") as short:
        truth = truth_of(GUARDED)
        ref, dump, prom = CanaryRef.parse(truth["canary"]), DumpSource(simulated(GUARDED) / "dump"), PrometheusSource(short.url)
        now = at_of(truth) + dt.timedelta(minutes=5)
        p = run_preflight(ref, dump, prom, default_policy(), at_of(truth), now=now)
        later = run_preflight(ref, dump, prom, default_policy(), at_of(truth), now=now + dt.timedelta(hours=1))
    c = one(p, "evidence-capture", "Prometheus keeps")
    assert c.status == "warn" and "keeps 30 min; the rollout needs" in c.message
    c = one(later, "evidence-capture", "Prometheus keeps")
    assert c.status == "warn" and "--at is 1 h 5 min ago" in c.message


def test_abort_policy_both_ways(preflight_of: Callable[..., Preflight]) -> None:
    assert {c.status for c in of(preflight_of(GUARDED), "abort-policy")} == {"ok"}
    thin = policy_from_dict(
        {
            "min_requests": 5000,
            "criteria": {
                "analysis": {
                    "kind": "gauge",
                    "series": {"metric": "flagger_canary_metric_analysis", "role": "flagger"},
                    "window": "2m",
                    "breach_when": "<",
                    "threshold": 99,
                },
                "ghost": {
                    "kind": "gauge",
                    "series": {"metric": "no_such_metric_total"},
                    "window": "2m",
                    "breach_when": ">",
                    "threshold": 1,
                },
            },
        }
    )
    p = preflight_of(GUARDED, policy=thin)
    assert (
        one(p, "abort-policy", "success_rate").status == "warn" and '"no data"' in one(p, "abort-policy", "success_rate").message
    )
    assert one(p, "abort-policy", "analysis (").status == "ok"
    assert one(p, "abort-policy", "ghost").status == "warn"


def test_cli_json_validates_and_exit_codes(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], truth_of: Callable[[str], dict[str, Any]]
) -> None:
    runner = CliRunner()
    for name, code in ((GUARDED, 0), (MISMATCH, 4)):
        truth = truth_of(name)
        at = str(int(at_of(truth).timestamp() * 1000))  # Unix milliseconds
        args = [
            "preflight",
            truth["canary"],
            "--prometheus",
            prometheus_for(name).url,
            "--from-dump",
            str(simulated(name) / "dump"),
        ]
        result = runner.invoke(cli, [*args, "--at", at, "-o", "json"])
        assert result.exit_code == code, result.output
        doc = json.loads(result.output)
        jsonschema.validate(doc, SCHEMA, format_checker=jsonschema.FormatChecker())
        assert doc["at"] == rfc3339(dt.datetime.fromtimestamp(int(at) / 1000, dt.UTC)) and doc["blocked"] == (code == 4)
        table = runner.invoke(cli, [*args, "--at", at_of(truth).strftime("%Y-%m-%dT%H:%M:%SZ")])
        assert table.exit_code == code
        assert ("worst-case exposure" in table.output) and ("nothing blocks" in table.output) == (code == 0)


def test_at_parser_and_usage_errors(simulated: Callable[[str], Path]) -> None:
    t = dt.datetime(2026, 11, 26, 14, 20, tzinfo=dt.UTC)
    assert parse_at("2026-11-26T14:20:00Z") == parse_at(str(int(t.timestamp()))) == parse_at(str(int(t.timestamp() * 1000))) == t
    assert parse_at("2026-11-26T15:20:00+01:00") == t
    with pytest.raises(UsageError, match="RFC3339"):
        parse_at("yesterday")
    result = CliRunner().invoke(
        cli,
        [
            "preflight",
            "shop/cart",
            "--prometheus",
            "http://127.0.0.1:9",
            "--from-dump",
            str(simulated(GUARDED) / "dump"),
            "--at",
            "soon",
        ],
    )
    assert result.exit_code == 2 and "--at 'soon'" in result.output and "Traceback" not in result.output


def test_a_crafted_target_name_is_never_pasted_into_promql(
    preflight_of: Callable[..., Preflight], simulated: Callable[[str], Path], tmp_path: Path
) -> None:
    def edit(c: dict[str, Any]) -> None:
        c["spec"]["targetRef"]["name"] = 'cart"} or vector(1) #'

    p = preflight_of(GUARDED, dump=edited_dump(simulated, GUARDED, tmp_path, edit))
    c = of(p, "flagger-queries-match")
    assert [x.status for x in c] == ["block"] and "not a Kubernetes name" in c[0].message


def test_errors_exit_1_without_a_traceback(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer]
) -> None:
    from fixtures.prom import free_port

    dump = str(simulated(GUARDED) / "dump")
    runner = CliRunner()
    down = runner.invoke(cli, ["preflight", "shop/cart", "--prometheus", f"http://127.0.0.1:{free_port()}", "--from-dump", dump])
    assert down.exit_code == 1 and "unreachable" in down.output and "Traceback" not in down.output
    unknown = runner.invoke(cli, ["preflight", "shop/nope", "--prometheus", prometheus_for(GUARDED).url, "--from-dump", dump])
    assert unknown.exit_code == 1 and "shop/nope not found" in unknown.output
    no_url = runner.invoke(cli, ["preflight", "shop/cart", "--from-dump", dump], env={"EVIDENCE_PROMETHEUS_URL": ""})
    assert no_url.exit_code == 2 and "--prometheus" in no_url.output


def test_blue_green_shifts_all_traffic_at_once(
    preflight_of: Callable[..., Preflight], simulated: Callable[[str], Path], tmp_path: Path
) -> None:
    def edit(c: dict[str, Any]) -> None:
        analysis = c["spec"]["analysis"]
        analysis.pop("stepWeight")
        analysis.pop("maxWeight")
        analysis["iterations"] = 10

    c = of(preflight_of(GUARDED, dump=edited_dump(simulated, GUARDED, tmp_path, edit)), "limits")[0]
    assert c.status == "block" and "blue/green with 10 iterations" in c.message and "up to 100 %" in c.message


def test_grpc_traffic_warns_that_5xx_rules_are_blind(
    preflight_of: Callable[..., Preflight], truth_of: Callable[[str], dict[str, Any]]
) -> None:
    name = "preflight/grpc"
    assert truth_of(name)["rollouts"][-1]["outcome"] == "promoted"  # 8 % failed calls, unseen by Flagger
    p = preflight_of(name)
    q = of(p, "flagger-queries-match")
    assert [c.status for c in q] == ["warn"] and "grpc" in q[0].message and 'code!~"5.."' in q[0].message
    policy = {c.message.split(" (")[0]: c.status for c in of(p, "abort-policy")}
    assert policy == {"error_rate_ratio": "warn", "p95_latency_increase": "ok", "success_rate": "warn"}
    assert not p.blocked
