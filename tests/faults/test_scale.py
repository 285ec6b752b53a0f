"""Scale: a 1 MiB event message and floods of events collect and render in seconds, with bounded reports.

The times are recorded as figures (``make faults`` prints them); the bounds asserted are an order
of magnitude above them, there to catch a return of quadratic work (minutes), not to benchmark.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.prom import PrometheusServer
from tests.faults.common import bundle_path, collect_args, manifest, run
from tests.faults.hostile import copy_dump, flood_events
from tests.faults.ledger import LEDGER

SCENARIO = "rollback-error-rate"


def collect_and_render(dump: Path, url: str, work: Path, label: str) -> tuple[Path, Path, float, float]:
    t0 = time.monotonic()
    bundle = bundle_path(run(*collect_args(dump, url, work / "bundles"), timeout=900))
    t1 = time.monotonic()
    r = run("render", str(bundle), "--format", "all", "--out", str(work / "reports"), timeout=900)
    t2 = time.monotonic()
    assert r.returncode == 0, r.stderr[-2000:]
    LEDGER.figure(f"{label} collect", f"{t1 - t0:.1f} s")
    LEDGER.figure(f"{label} render (html, pdf, postmortem)", f"{t2 - t1:.1f} s")
    return bundle, work / "reports", t1 - t0, t2 - t1


def test_a_1mib_message_is_capped_and_everything_takes_seconds(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    dump = copy_dump(simulated(SCENARIO) / "dump", tmp_path / "dump")
    flood_events(dump, 0, message_bytes=2**20)
    bundle, reports, took_collect, took_render = collect_and_render(dump, prometheus_for(SCENARIO).url, tmp_path, "1 MiB message")
    capped = [i for i in manifest(bundle)["redaction"]["items"] if i.get("original_bytes", 0) > 2**20]
    assert capped and all(i["original_sha256"] for i in capped), manifest(bundle)["redaction"]
    import pyarrow.parquet as pq

    longest = max(len((m or "").encode()) for m in pq.read_table(bundle / "logs.parquet").column("message").to_pylist())
    assert longest <= 64 * 1024 + 200, longest
    assert all(p.stat().st_size < 8 * 2**20 for p in reports.iterdir())
    assert took_collect < 60 and took_render < 120, (took_collect, took_render)  # it was 25+ minutes


def flooded(n: int, simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path) -> None:
    import pypdf

    dump = copy_dump(simulated(SCENARIO) / "dump", tmp_path / "dump")
    flood_events(dump, n)
    bundle, reports, took_collect, took_render = collect_and_render(dump, prometheus_for(SCENARIO).url, tmp_path, f"{n:,} events")
    m = manifest(bundle)
    assert m["counts"]["events"] >= n and m["sources"]["events"]["log"] >= n  # nothing dropped from the bundle
    pages = len(pypdf.PdfReader(next(reports.glob("*.decision-record.pdf"))).pages)
    LEDGER.figure(f"{n:,} events decision-record pages", str(pages))
    assert pages < 40, pages  # the record shows the first rows and says how many more the bundle holds
    html = next(reports.glob("*.decision-record.html")).read_text()
    assert "more in the bundle" in html or "not shown" in html
    ev = json.loads(run("evaluate", "--json", str(bundle)).stdout)
    assert ev["verdict"] == "abort"
    assert took_collect < 120 and took_render < 180, (took_collect, took_render)


@pytest.mark.faults_slow
def test_16k_events_collect_and_render_in_seconds(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    flooded(16_000, simulated, prometheus_for, tmp_path)


@pytest.mark.faults_slow
def test_100k_events_collect_and_render_in_seconds(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    flooded(100_000, simulated, prometheus_for, tmp_path)
