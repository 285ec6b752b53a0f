"""Secrets planted in every disguise never reach a bundle, a report, or what a command prints."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from fixtures.prom import PrometheusServer
from tests.faultproxy import FaultProxy, Rule
from tests.faults.common import bundle_path, collect_args, manifest, run
from tests.faults.hostile import SECRETS, copy_dump, plant_secrets
from tests.faults.ledger import files_of, scan_for_secrets

SCENARIO = "rollback-error-rate"


@pytest.fixture(scope="module")
def planted(simulated: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    dump = copy_dump(simulated(SCENARIO) / "dump", tmp_path_factory.mktemp("secrets") / "dump")
    plant_secrets(dump)
    return dump


@pytest.fixture(scope="module")
def outputs(
    planted: Path, prometheus_for: Callable[[str], PrometheusServer], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """Collect, verify, show, evaluate and render the planted dump; keep every output."""
    work = tmp_path_factory.mktemp("secrets-out")
    printed: dict[str, str] = {}
    res = run(*collect_args(planted, prometheus_for(SCENARIO).url, work / "bundles"))
    printed["collect"] = res.stdout + res.stderr
    bundle = bundle_path(res)
    for cmd in (["verify"], ["show"], ["evaluate", "--json"], ["evaluate"]):
        r = run(*cmd, str(bundle))
        printed[" ".join(cmd)] = r.stdout + r.stderr
    r = run("render", str(bundle), "--format", "all", "--out", str(work / "reports"))
    assert r.returncode == 0, r.stderr
    printed["render"] = r.stdout + r.stderr
    return {"bundle": bundle, "reports": work / "reports", "printed": printed}


def test_planted_secrets_stay_out_of_bundle_reports_and_output(outputs: dict[str, Any]) -> None:
    blobs = files_of(outputs["bundle"], outputs["reports"])
    blobs.update({f"stdout/stderr of {k}": v.encode() for k, v in outputs["printed"].items()})
    assert len(blobs) >= 12
    assert scan_for_secrets(SECRETS, blobs) == []


def test_the_redaction_report_lists_each_replacement_by_path(outputs: dict[str, Any]) -> None:
    red = manifest(outputs["bundle"])["redaction"]
    where = {i["where"] for i in red["items"]}
    assert {"objects", "events", "logs"} <= where, where
    paths = [i["path"] for i in red["items"]]
    assert any("webhooks[0].metadata['x-auth']" in p or "webhooks[0].metadata.session" in p for p in paths), paths
    assert any(p.endswith(".raw") for p in paths) and red["total"] == len(red["items"])
    # What was kept is still there to read: the command of a load-test hook, its shape intact.
    body = (outputs["bundle"] / "objects.parquet").read_bytes()
    assert b"curl -u admin:" in body or red["total"] > 0


def test_detect_secrets_as_a_second_oracle_finds_nothing(outputs: dict[str, Any], tmp_path: Path) -> None:
    """A maintained detector over the bundle's text and the reports (parquet decoded to text)."""
    import json

    import pyarrow.parquet as pq
    from detect_secrets import SecretsCollection
    from detect_secrets.settings import default_settings

    texts = tmp_path / "texts"
    texts.mkdir()
    for p in outputs["bundle"].iterdir():
        if p.suffix == ".parquet":
            rows = pq.read_table(p).to_pylist()
            (texts / f"{p.stem}.jsonl").write_text("\n".join(json.dumps(r, default=str) for r in rows))
    for p in outputs["reports"].iterdir():
        if p.suffix in (".html", ".md"):
            (texts / p.name).write_bytes(p.read_bytes())
    (texts / "printed.txt").write_text("\n".join(outputs["printed"].values()))
    found: list[str] = []
    with default_settings():
        secrets = SecretsCollection()
        for f in sorted(texts.iterdir()):
            secrets.scan_file(str(f))
        for filename, secret in secrets:
            # Entropy detectors flag the sha256 digests a bundle is made of; the planted secrets have
            # shapes the keyword, key-format and URL detectors know.
            if "High Entropy" not in secret.type:
                found.append(f"{Path(filename).name}:{secret.line_number}: {secret.type}")
    for f in found:
        from tests.faults.ledger import LEDGER

        LEDGER.secret(f"detect-secrets {f}")
    assert found == []


def test_a_credential_echoed_by_a_server_is_scrubbed(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    token = "echoedT0ken4242"
    echo = b'{"status":"error","errorType":"unauthorized","error":"token echoedT0ken4242 is not valid for tenant"}'
    rules = [Rule("flagger_canary_status", "body", 401, body=echo)]
    with FaultProxy(prometheus_for(SCENARIO).url, rules) as proxy:
        args = collect_args(simulated(SCENARIO) / "dump", proxy.url, tmp_path / "out", "--prometheus-token", token)
        refused = run(*args)
        partial = run(*args, "--allow-partial")
    assert refused.returncode == 1 and "refused" in refused.stderr
    bundle = bundle_path(partial)
    rendered = run("render", str(bundle), "--out", str(tmp_path / "reports"))
    assert rendered.returncode == 0, rendered.stderr
    blobs = files_of(bundle, tmp_path / "reports")
    blobs.update({"stderr": refused.stderr.encode() + partial.stderr.encode()})
    assert scan_for_secrets([token], blobs) == []
    assert any(g["kind"] == "query_failed" and "<redacted>" in g["detail"] for g in manifest(bundle)["gaps"])
