"""history and history --summary over an archive of simulated rollouts, against the simulator's truth.

The truth of each archived bundle comes from its scenario's ``truth.json`` (the last rollout)
and ``fixtures.groundtruth`` (the default policy on what the simulator really served): no code
shared with the analysis or the ledger.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evidence.archive.store import FolderStore, open_store
from fixtures.archive import reidentify
from fixtures.groundtruth import policy_first_breaches
from fixtures.scenario import load_scenario
from fixtures.seaweed import SeaweedServer

from .archive_support import run, seaweed, validated
from .conftest import SCENARIOS, SMALL_SCENARIOS

__all__ = ["seaweed"]
CLUSTERS = {"eu-1": SMALL_SCENARIOS, "us-1": ["rollback-error-rate", "promoted-despite-breach", "never-ready"]}


def expected_row(name: str, truth: dict[str, Any]) -> dict[str, Any]:
    """Return what the ledger must say of a scenario's last rollout, from the truth alone."""
    ro = truth["rollouts"][-1]
    breaches = policy_first_breaches(truth, list(load_scenario(SCENARIOS / f"{name}.yaml").buckets))
    first = min((t for t in breaches.values() if t is not None), default=None)
    decided = ro["rollback_at"] or ro["failed_at"]
    halted = []
    for tick in truth["ticks"]:
        if tick["rollout"] == ro["index"]:
            bad = [e["metric"] for e in tick.get("evaluations", []) if not e["ok"]]
            if bad and bad[0] not in halted:
                halted.append(bad[0])
    return {
        "namespace": truth["canary"].split("/")[0],
        "canary": truth["canary"].split("/")[1],
        "outcome": ro["outcome"],
        "verdict": "abort" if first is not None else "pass",
        "maxWeight": ro["max_weight"],
        "failedChecks": len(ro["halts"]),
        "canaryRequests": ro["canary_requests"],
        "canaryErrors": ro["canary_errors"],
        "lag": None if first is None or decided is None else decided - first,
        "criteria": sorted(k for k, v in breaches.items() if v is not None),
        "checks": halted,
        "silent": ro["outcome"] == "failed" and ro["max_weight"] == 0,
        "scrape": truth["scrape_interval"],
    }


@pytest.fixture(scope="module")
def archive(
    bundle_for: Callable[[str], Path], truth_of: Callable[[str], dict[str, Any]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("ledger")
    store = FolderStore(work / "archive")
    truths: dict[str, dict[str, Any]] = {}
    local: list[Path] = []
    for cluster, names in CLUSTERS.items():
        for name in names:
            b = reidentify(bundle_for(name), work / "local", cluster)
            local.append(b)
            bid = json.loads((b / "manifest.json").read_text())["bundle_id"]
            truths[bid] = dict(expected_row(name, truth_of(name)), cluster=cluster, scenario=name)
            assert store.put_bundle(b).created
    return {"root": work / "archive", "truth": truths, "local": local}


def _history(target: str, *args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    res = run("history", target, *args, "-o", "json", env=env)
    assert res.returncode == 0, res.stderr
    return validated(res.stdout, "FleetSummary" if "--summary" in args else "History")


def test_history_rows_equal_the_truth(archive: dict[str, Any]) -> None:
    doc = _history(str(archive["root"]))
    assert doc["bundles"] == len(archive["truth"]) == len(doc["rollouts"]) and doc["warnings"] == []
    for row in doc["rollouts"]:
        t = archive["truth"][row["bundleId"]]
        for k in (
            "cluster",
            "namespace",
            "canary",
            "outcome",
            "verdict",
            "maxWeight",
            "failedChecks",
            "canaryRequests",
            "canaryErrors",
        ):
            assert row[k] == t[k], (t["scenario"], k)
        if t["lag"] is None:
            assert row["detectionLagSeconds"] is None, t["scenario"]
        else:
            assert row["detectionLagSeconds"] == pytest.approx(t["lag"], abs=t["scrape"]), t["scenario"]
        assert row["signed"] is False and row["verified"] is None


def _expected_group(rows: list[dict[str, Any]]) -> dict[str, Any]:
    lags = [r["lag"] for r in rows if r["lag"] is not None]
    rolled = sum(r["outcome"] in ("rolled_back", "failed") for r in rows)
    return {
        "rollouts": len(rows),
        "rolledBack": rolled,
        "abortRate": round(rolled / len(rows), 4),
        "promoted": sum(r["outcome"] == "promoted" for r in rows),
        "promotedDespiteBreach": sum(r["outcome"] == "promoted" and r["verdict"] == "abort" for r in rows),
        "silentFailures": sum(r["silent"] for r in rows),
        "lags": lags,
        "criteria": Counter(c for r in rows for c in r["criteria"]),
        "checks": Counter(c for r in rows for c in r["checks"]),
    }


def test_the_fleet_summary_equals_the_truth(archive: dict[str, Any]) -> None:
    doc = _history(str(archive["root"]), "--summary")
    truth = list(archive["truth"].values())
    scrape = truth[0]["scrape"]
    levels = Counter(g["level"] for g in doc["groups"])
    assert levels["fleet"] == 1 and levels["cluster"] == len(CLUSTERS)
    assert levels["canary"] == len({(t["cluster"], t["namespace"], t["canary"]) for t in truth})
    for g in doc["groups"]:
        rows = [t for t in truth if all(g[k] is None or g[k] == t[k] for k in ("cluster", "namespace", "canary"))]
        want = _expected_group(rows)
        for k in ("rollouts", "rolledBack", "abortRate", "promoted", "promotedDespiteBreach", "silentFailures"):
            assert g[k] == want[k], (g["level"], g["cluster"], g["namespace"], k)
        lag = g["detectionLagSeconds"]
        assert lag["count"] == len(want["lags"])
        if want["lags"]:
            for q, key in ((50, "p50"), (90, "p90"), (100, "max")):
                assert lag[key] == pytest.approx(float(np.percentile(want["lags"], q)), abs=scrape), (g["level"], key)
        else:
            assert lag["p50"] is lag["p90"] is lag["max"] is None
        assert {t["name"]: t["count"] for t in g["topCriteria"]} == dict(want["criteria"].most_common(5))
        assert {t["name"]: t["count"] for t in g["topChecks"]} == dict(want["checks"].most_common(5))
    fleet = doc["groups"][0]
    assert fleet["level"] == "fleet" and fleet["promotedDespiteBreach"] >= 1 and fleet["silentFailures"] >= 1


def test_filters(archive: dict[str, Any]) -> None:
    truth = archive["truth"]
    some = next(iter(truth.values()))
    by_ns = _history(str(archive["root"]), "-n", some["namespace"])
    assert {r["bundleId"] for r in by_ns["rollouts"]} == {b for b, t in truth.items() if t["namespace"] == some["namespace"]}
    by_canary = _history(str(archive["root"]), "--canary", some["canary"], "--outcome", some["outcome"])
    assert {r["bundleId"] for r in by_canary["rollouts"]} == {
        b for b, t in truth.items() if t["canary"] == some["canary"] and t["outcome"] == some["outcome"]
    }
    starts = sorted(r["rolloutStart"] for r in _history(str(archive["root"]))["rollouts"])
    later = _history(str(archive["root"]), "--since", starts[-1])
    assert later["rollouts"] and all(r["rolloutStart"] >= starts[-1] for r in later["rollouts"])
    assert len(later["rollouts"]) < len(starts)


def test_table_and_csv(archive: dict[str, Any]) -> None:
    table = run("history", str(archive["root"]))
    assert table.returncode == 0 and table.stdout.splitlines()[0].startswith("ROLLOUT START")
    assert len(table.stdout.splitlines()) == 1 + len(archive["truth"])
    rows = list(csv.DictReader(io.StringIO(run("history", str(archive["root"]), "-o", "csv").stdout)))
    assert {r["bundleId"] for r in rows} == set(archive["truth"])
    summary = list(csv.DictReader(io.StringIO(run("history", str(archive["root"]), "--summary", "-o", "csv").stdout)))
    assert summary[0]["level"] == "fleet" and int(summary[0]["rollouts"]) == len(archive["truth"])


def test_bad_bundles_are_skipped_with_a_warning(archive: dict[str, Any], tmp_path: Path) -> None:
    root = tmp_path / "archive"
    shutil.copytree(archive["root"], root)
    entries = list(FolderStore(root).bundles())
    edited, newer, truncated = (Path(e.location) for e in entries[:3])
    m = (edited / "manifest.json").read_text()
    (edited / "manifest.json").write_text(m.replace('"legal_hold": false', '"legal_hold": true'))
    raw = json.loads((newer / "manifest.json").read_text())
    assert raw["schema_version"] == 1
    from evidence.bundle import BundleWriter

    w = BundleWriter(newer.parent, newer.name + ".tmp")
    shutil.rmtree(w.tmp)
    shutil.copytree(newer, w.tmp)
    w.files = {k: {"rows": v["rows"]} for k, v in raw["files"].items()}
    shutil.rmtree(newer)
    w.name = newer.name
    w.commit({k: v for k, v in raw.items() if k not in ("files", "self_sha256")} | {"schema_version": 99})
    (truncated / "summary.json").write_bytes((truncated / "summary.json").read_bytes()[:200])
    res = run("history", str(root), "-o", "json")
    doc = validated(res.stdout, "History")
    assert res.returncode == 0 and doc["skipped"] == 3 and len(doc["rollouts"]) == len(entries) - 3
    warnings = res.stderr
    assert "self_sha256 mismatch" in warnings and "newer than this evidence understands" in warnings
    assert "summary.json differs from the manifest" in warnings
    verify = run("verify", str(root))
    assert verify.returncode == 1 and verify.stderr.count("bad: ") == 3


def test_signed_and_verified_columns(archive: dict[str, Any], tmp_path: Path) -> None:
    keys = tmp_path / "k"
    assert run("keygen", str(keys)).returncode == 0
    assert run("keygen", str(tmp_path / "other")).returncode == 0
    root = tmp_path / "archive"
    store = FolderStore(root)
    signed = archive["local"][0]
    copy = tmp_path / "signed" / signed.name
    shutil.copytree(signed, copy)
    assert run("sign", str(copy), "--key", f"{keys}.key").returncode == 0
    store.put_bundle(copy)
    store.put_bundle(archive["local"][1])
    rows = {r["bundleId"]: r for r in _history(str(root), "--key", f"{keys}.pub")["rollouts"]}
    sid = json.loads((copy / "manifest.json").read_text())["bundle_id"]
    assert (rows[sid]["signed"], rows[sid]["verified"]) == (True, True)
    other = next(r for b, r in rows.items() if b != sid)
    assert (other["signed"], other["verified"]) == (False, False)
    wrong = {r["bundleId"]: r for r in _history(str(root), "--key", f"{tmp_path / 'other'}.pub")["rollouts"]}
    assert (wrong[sid]["signed"], wrong[sid]["verified"]) == (True, False)


def test_the_same_answers_from_s3(archive: dict[str, Any], seaweed: SeaweedServer, monkeypatch: pytest.MonkeyPatch) -> None:
    env = seaweed.env()
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    s3 = open_store("s3://bundles/ledger")
    for b in archive["local"]:
        assert s3.put_bundle(b).created
    folder = _history(str(archive["root"]), "--summary")
    remote = _history("s3://bundles/ledger", "--summary", env=env)
    assert remote["groups"] == folder["groups"]
    rows = _history("s3://bundles/ledger", env=env)["rollouts"]
    assert {r["bundleId"] for r in rows} == set(archive["truth"])
