"""kubectl habits through the real CLI: names, -n and the context's namespace, `list`, machine output.

The live paths run the real kubernetes client against the loopback API server, with a
kubeconfig whose current context sets the namespace ``shop``; every JSON document is validated
against its published schema (schemas/).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fixtures.prom import PrometheusServer

from .archive_support import run, validated
from .kubeapi import KubeApiServer

ENV = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
SCENARIOS = ("rollback-error-rate", "rollback-latency")  # shop/podinfo and payments/api


@pytest.fixture(scope="module")
def two_namespaces(simulated: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One dump holding the canaries of two scenarios in two namespaces (one Flagger log)."""
    out = tmp_path_factory.mktemp("two-ns")
    log: list[str] = []
    for name in SCENARIOS:
        dump = simulated(name) / "dump"
        for f in sorted(dump.iterdir()):
            if f.name == "flagger.log":
                log.append(f.read_text(encoding="utf-8"))
            else:
                shutil.copy(f, out / f"{name}-{f.name}")
    (out / "flagger.log").write_text("".join(log), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def api(two_namespaces: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    with KubeApiServer(two_namespaces, tmp_path_factory.mktemp("kubeapi")) as s:
        yield s


def kube(api: KubeApiServer, *args: str) -> Any:
    return run(*args, "--kubeconfig", str(api.kubeconfig), env=ENV)


def items(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{i['namespace']}/{i['name']}": i for i in doc["items"]}


def test_list_uses_the_context_namespace_and_all_namespaces(api: KubeApiServer) -> None:
    assert yaml.safe_load(api.kubeconfig.read_text())["contexts"][0]["context"]["namespace"] == "shop"
    here = kube(api, "list", "-o", "json")
    assert here.returncode == 0, here.stderr
    assert set(items(validated(here.stdout, "CanaryList"))) == {"shop/podinfo"}
    other = kube(api, "get", "-n", "payments", "-o", "yaml")
    assert other.returncode == 0, other.stderr
    assert set(items(yaml.safe_load(other.stdout))) == {"payments/api"}
    every = kube(api, "list", "-A", "-o", "json")
    doc = items(validated(every.stdout, "CanaryList"))
    assert set(doc) == {"shop/podinfo", "payments/api"}
    assert doc["shop/podinfo"]["phase"] == "Failed" and doc["shop/podinfo"]["outcome"] == "rolled_back"
    assert doc["shop/podinfo"]["rolloutStart"] == "2026-11-20T10:00:07Z" and doc["shop/podinfo"]["collected"] is False
    assert api.requests_for("/apis/flagger.app/v1beta1/canaries")  # -A asked the cluster scope, like kubectl
    table = kube(api, "list", "-A")
    assert table.stdout.splitlines()[0].split()[:3] == ["NAMESPACE", "NAME", "PHASE"]
    assert any(line.split()[:2] == ["payments", "api"] for line in table.stdout.splitlines())
    both = kube(api, "list", "-A", "-n", "shop")
    assert both.returncode == 2 and "drop -n" in both.stderr


def test_collect_by_kubectl_names_and_list_sees_the_bundle(
    api: KubeApiServer, prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    url = prometheus_for("rollback-error-rate").url
    out = tmp_path / "bundles"
    first = kube(api, "collect", "canary/podinfo", "--prometheus", url, "--out", str(out), "-o", "json", "-q")
    assert first.returncode == 0, first.stderr
    summary = validated(first.stdout, "BundleSummary")
    assert summary["summary"]["canary_namespace"] == "shop" and summary["summary"]["canary_name"] == "podinfo"
    assert summary["verified"] is True and Path(summary["location"]).parent == out
    # The same rollout by the other spellings is the same bundle (nothing collected again).
    for spelling in (["podinfo"], ["podinfo.shop"], ["podinfo", "-n", "shop"], ["canaries/podinfo", "--namespace", "shop"]):
        again = kube(api, "collect", *spelling, "--prometheus", url, "--out", str(out), "--request-timeout", "5")
        assert again.returncode == 0, again.stderr
        assert again.stdout.strip().splitlines()[-1] == summary["location"]
    listed = items(validated(kube(api, "list", "-A", "--out", str(out), "-o", "json").stdout, "CanaryList"))
    assert listed["shop/podinfo"]["collected"] is True
    assert listed["shop/podinfo"]["bundleId"] == summary["summary"]["bundle_id"]
    assert listed["shop/podinfo"]["bundle"] == summary["location"]
    assert listed["payments/api"]["collected"] is False and listed["payments/api"]["bundleId"]
    wide = kube(api, "list", "--out", str(out), "-o", "wide")
    assert summary["summary"]["bundle_id"] in wide.stdout and "yes" in wide.stdout.split()


def test_namespaces_of_the_name_the_flag_and_the_context(api: KubeApiServer, tmp_path: Path) -> None:
    clash = kube(api, "collect", "payments/api", "-n", "shop", "--prometheus", "http://127.0.0.1:9")
    assert clash.returncode == 2 and "-n says 'shop'" in clash.stderr
    # The context's namespace (shop) applies to a bare name on the live path.
    missing = kube(api, "collect", "api", "--prometheus", "http://127.0.0.1:9", "--out", str(tmp_path))
    assert missing.returncode == 1 and "canary shop/api not found" in missing.stderr
    flagged = kube(api, "collect", "api.payments", "--prometheus", "http://127.0.0.1:9", "--out", str(tmp_path))
    # Found (the canary is read first), so the unreachable Prometheus is what fails.
    assert flagged.returncode == 1 and "Prometheus at http://127.0.0.1:9 is unreachable" in flagged.stderr
    # A context without a namespace means `default`, like kubectl.
    config = yaml.safe_load(api.kubeconfig.read_text())
    for ctx in config["contexts"]:
        ctx["context"].pop("namespace", None)
    bare = tmp_path / "kubeconfig"
    bare.write_text(yaml.safe_dump(config))
    res = run("collect", "podinfo", "--kubeconfig", str(bare), "--prometheus", "http://127.0.0.1:9", env=ENV)
    assert res.returncode == 1 and "canary default/podinfo not found" in res.stderr


def test_list_from_a_dump_finds_the_bundle_in_a_store(
    simulated: Callable[[str], Path], bundle_for: Callable[[str], Path], tmp_path: Path
) -> None:
    dump = simulated("rollback-error-rate") / "dump"
    before = run("list", "--from-dump", str(dump), "--out", str(tmp_path / "none"), "-o", "json")
    assert before.returncode == 0, before.stderr
    assert items(validated(before.stdout, "CanaryList"))["shop/podinfo"]["collected"] is False
    store = tmp_path / "archive"
    pushed = run("push", str(bundle_for("rollback-error-rate")), str(store))
    assert pushed.returncode == 0, pushed.stderr
    after = run("list", "--from-dump", str(dump), "--out", str(store), "-o", "json")
    row = items(validated(after.stdout, "CanaryList"))["shop/podinfo"]
    assert row["collected"] is True and row["bundle"] == pushed.stdout.strip()
    manifest = json.loads((bundle_for("rollback-error-rate") / "manifest.json").read_text())
    assert row["bundleId"] == manifest["bundle_id"]


def test_machine_output_of_show_evaluate_verify(bundle_for: Callable[[str], Path]) -> None:
    bundle = str(bundle_for("rollback-error-rate"))
    shown = run("show", bundle, "-o", "json")
    doc = validated(shown.stdout, "BundleSummary")
    assert doc["summary"]["outcome"] == "rolled_back" and doc["location"] == bundle
    assert yaml.safe_load(run("show", bundle, "-o", "yaml").stdout) == doc
    ev = run("evaluate", bundle, "-o", "json")
    evaluation = validated(ev.stdout, "Evaluation")
    assert ev.returncode == (3 if evaluation["verdict"] == "abort" else 0)
    assert json.loads(run("evaluate", bundle, "--json").stdout) == evaluation
    assert yaml.safe_load(run("evaluate", bundle, "-o", "yaml").stdout) == evaluation
    checked = run("verify", bundle, "-o", "yaml")
    assert checked.returncode == 0, checked.stderr
    verification = yaml.safe_load(checked.stdout)
    assert validated(json.dumps(verification), "Verification")["ok"] is True


def test_kubectl_plugin_takes_kubectl_flags_first(api: KubeApiServer) -> None:
    plugin = Path(sys.executable).parent / "kubectl-evidence"
    res = subprocess.run(
        [str(plugin), "--kubeconfig", str(api.kubeconfig), "--context=test", "-n", "payments", "list", "-o", "json"],
        capture_output=True, text=True, timeout=120, env={**os.environ, **ENV},
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert set(items(validated(res.stdout, "CanaryList"))) == {"payments/api"}
    ignored = subprocess.run([str(plugin), "--context", "test", "version"], capture_output=True, text=True, timeout=60)
    assert ignored.returncode == 0 and "note: --context does not apply to `evidence version`; ignored" in ignored.stderr


def test_every_option_reads_its_environment_variable(api: KubeApiServer) -> None:
    env = {
        **ENV,
        "EVIDENCE_LIST_ALL_NAMESPACES": "1",
        "EVIDENCE_LIST_OUTPUT": "json",
        "EVIDENCE_LIST_KUBECONFIG": str(api.kubeconfig),
    }
    res = run("list", env=env)
    assert res.returncode == 0, res.stderr
    assert set(items(validated(res.stdout, "CanaryList"))) == {"shop/podinfo", "payments/api"}
    bad = run("list", env={**env, "EVIDENCE_LIST_OUTPUT": "xml"})
    assert bad.returncode == 2 and "'xml' is not one of" in bad.stderr


def test_version_and_completion() -> None:
    doc = validated(run("version", "-o", "json").stdout, "Version")
    assert doc["libraries"]["pyarrow"] and set(doc["extras"]) == {"render", "archive"}
    assert run("version").stdout.startswith(f"evidence {doc['version']} ")
    assert "_EVIDENCE_COMPLETE=bash_complete" in run("completion", "bash").stdout
    assert run("completion", "zsh").stdout.startswith("#compdef evidence")
    assert "complete --no-files --command evidence" in run("completion", "fish").stdout
    assert run("completion", "tcsh").returncode == 2
