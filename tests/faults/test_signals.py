"""Signals: a scheduler's SIGTERM at any moment of a collect, and a person's Ctrl-C while queries are queued.

The guarantee is the bundle's: after any stop, the output folder holds complete bundles only
(nothing hidden, nothing half-written), and a bundle that is there verifies.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.prom import PrometheusServer
from tests.faultproxy import FaultProxy, Rule
from tests.faults.common import EVIDENCE, collect_args, run
from tests.faults.ledger import LEDGER

SCENARIO = "rollback-error-rate"


def start_collect(dump: Path, url: str, out: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*EVIDENCE, *collect_args(dump, url, out, *extra)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def after_stop(out: Path, rc: int, stderr: str, expected_rc: int) -> None:
    """Assert what a stopped collect leaves: its exit code, no hidden folder, and only bundles that verify."""
    assert "Traceback (most recent call last)" not in stderr, stderr[-2000:]
    left = list(out.iterdir()) if out.exists() else []
    hidden = [p.name for p in left if p.name.startswith(".")]
    if hidden:
        LEDGER.lost(f"a stopped collect left {hidden} in {out}")
    assert not hidden, hidden
    for b in left:
        v = run("verify", str(b))
        if v.returncode != 0:
            LEDGER.lost(f"a stopped collect left a bundle that does not verify: {b}")
        assert v.returncode == 0, v.stderr
    # Before its handler is installed (during start-up) the signal's default action ends the process.
    assert rc in (expected_rc, 0, 128 - expected_rc), (rc, stderr[-1500:])
    # A bundle may be there when the signal came after its rename (Python restores the default
    # SIGTERM action while it shuts down): complete and verified, as checked above.


def sigterm_at(delay: float, dump: Path, url: str, out: Path) -> int:
    p = start_collect(dump, url, out)
    time.sleep(delay)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    after_stop(out, p.returncode, err, 143)
    return p.returncode


def test_sigterm_during_the_queries_leaves_nothing(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    with FaultProxy(prometheus_for(SCENARIO).url, [Rule("query", "slow", delay=4)]) as proxy:
        rc = sigterm_at(2.5, simulated(SCENARIO) / "dump", proxy.url, tmp_path / "out")
    out = tmp_path / "out"
    assert rc == 143 and (not out.exists() or not list(out.iterdir())), rc


@pytest.mark.faults_slow
def test_sigterm_at_eight_moments_of_a_collect_never_leaves_a_partial_bundle(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    dump, url = simulated(SCENARIO) / "dump", prometheus_for(SCENARIO).url
    t0 = time.monotonic()
    res = run(*collect_args(dump, url, tmp_path / "timed"))
    took = time.monotonic() - t0
    assert res.returncode == 0, res.stderr
    # Eight moments from start-up to past the end: imports, dump parsing, queries, parquet, rename.
    codes = [sigterm_at(0.3 + i * took / 7, dump, url, tmp_path / f"out{i}") for i in range(8)]
    assert 143 in codes, codes  # at least one stop landed inside the work, not only before or after it


def test_ctrl_c_stops_queued_queries_at_once(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    # Every query answers 8 s late, two in flight: all of them would take minutes.
    with FaultProxy(prometheus_for(SCENARIO).url, [Rule("query", "slow", delay=8)]) as proxy:
        p = start_collect(simulated(SCENARIO) / "dump", proxy.url, tmp_path / "out", "--concurrency", "2", "--timeout", "30")
        time.sleep(3)
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        _, err = p.communicate(timeout=60)
        took = time.monotonic() - t0
    after_stop(tmp_path / "out", p.returncode, err, 130)
    assert p.returncode == 130
    # The queries in flight are abandoned, never waited for (each has 8 s to go).
    assert took < 5, took
