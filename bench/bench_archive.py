"""Archive benchmarks: the fleet ledger over 1,000 bundles, and archive-wide verification.

The 1,000 bundles are made cheaply: a few simulator scenarios are collected once from a real
Prometheus, then copied and re-identified as rollouts of other clusters
(``fixtures.archive.reidentify``), signed, and pushed into a folder store.  Baselines run in
the same process on the same files: a plain Python read of every manifest for ``history
--summary``, and ``sha256sum`` over every file for ``verify``.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from evidence.archive.check import check_store
from evidence.archive.ledger import Filters, history
from evidence.archive.sign import generate_keypair, sign_bundle
from evidence.archive.store import FolderStore
from evidence.collect import CollectOptions, collect_rollout
from evidence.model import CanaryRef
from evidence.sources.dump import DumpSource
from evidence.sources.prometheus import PrometheusSource
from fixtures.archive import reidentify
from fixtures.prom import PrometheusServer, backfill
from fixtures.scenario import load_scenario
from fixtures.simulator import write_outputs

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ("healthy-promotion", "rollback-error-rate", "promoted-despite-breach", "never-ready")
BUNDLES = 1000


def source_bundles(work: Path) -> list[Path]:
    """Collect each scenario once (simulator → backfilled TSDB → real Prometheus → bundle)."""
    out = []
    for name in SCENARIOS:
        sim = work / "sim" / name
        shutil.rmtree(sim, ignore_errors=True)
        write_outputs(load_scenario(ROOT / "fixtures" / "scenarios" / f"{name}.yaml"), sim)
        backfill(sim / "openmetrics.txt", sim / "tsdb")
        truth = json.loads((sim / "truth.json").read_text())
        now = dt.datetime.fromtimestamp(truth["snapshot_at"], dt.UTC)
        with PrometheusServer(sim / "tsdb", sim / "prom") as server:
            out.append(
                collect_rollout(
                    CanaryRef.parse(truth["canary"]),
                    DumpSource(sim / "dump"),
                    PrometheusSource(server.url),
                    CollectOptions(out=work / "sources"),
                    clock=lambda now=now: now,  # type: ignore[misc]
                )
            )
    return out


def best_of(n: int, fn: Any) -> tuple[float, Any]:
    best, result = float("inf"), None
    for _ in range(n):
        t0 = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t0)
    return best, result


def plain_manifest_read(root: Path) -> int:
    """The baseline: open and parse every manifest of the archive in plain Python."""
    n = 0
    for m in root.glob("*/*/*/*/*/manifest.json"):
        json.loads(m.read_text())
        n += 1
    return n


def run(work: Path) -> dict[str, Any]:
    work = work / "archive"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    sources = source_bundles(work)
    key, pub = generate_keypair(work / "bench")
    store = FolderStore(work / "store")
    t0 = time.perf_counter()
    for i in range(BUNDLES):
        local = reidentify(sources[i % len(sources)], work / "local", f"c{i // 40:03d}", salt=str(i))
        sign_bundle(local, key)
        store.put_bundle(local)
        shutil.rmtree(local)
    build_s = time.perf_counter() - t0

    summary_s, doc = best_of(3, lambda: history(store, Filters(), summary=True))
    assert doc["groups"][0]["rollouts"] == BUNDLES, doc["groups"][0]
    rows_s, _ = best_of(3, lambda: history(store, Filters()))
    plain_s, n = best_of(3, lambda: plain_manifest_read(store.root))
    assert n == BUNDLES
    t0 = time.perf_counter()
    cli = subprocess.run([sys.executable, "-m", "evidence", "history", str(store.root), "--summary", "-o", "json"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    cli_s = time.perf_counter() - t0
    assert json.loads(cli.stdout)["groups"][0]["rollouts"] == BUNDLES

    verify_s, checked = best_of(1, lambda: check_store(store, pub))
    assert checked.ok, [b.problems for b in checked.bundles if not b.ok][:1]
    mb = sum(b.bytes for b in checked.bundles) / 1e6
    files = [str(p) for p in store.root.rglob("*") if p.is_file()]
    t0 = time.perf_counter()
    for i in range(0, len(files), 2000):
        subprocess.run(["sha256sum", *files[i : i + 2000]], capture_output=True, check=True)
    sha_s = time.perf_counter() - t0
    all_mb = sum(Path(f).stat().st_size for f in files) / 1e6
    return {
        "bundles": BUNDLES,
        "archive_mb": round(all_mb, 1),
        "build_archive_s": round(build_s, 1),
        "history_summary_s": round(summary_s, 3),
        "history_rows_s": round(rows_s, 3),
        "history_summary_cli_s": round(cli_s, 3),
        "plain_manifest_read_s": round(plain_s, 3),
        "history_summary_vs_plain_manifest_read_ratio": round(summary_s / plain_s, 2),
        "verify_with_key_s": round(verify_s, 2),
        "verify_mb_per_s": round(mb / verify_s, 1),
        "sha256sum_mb_per_s": round(all_mb / sha_s, 1),
        "verify_vs_sha256sum_throughput_ratio": round((mb / verify_s) / (all_mb / sha_s), 2),
    }
