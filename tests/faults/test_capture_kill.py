"""The webhook receiver under faults: killed right after it answered 202, the event is still in the journal.

Flagger takes a 202 as "delivered" and never sends the event again, so the answer must come only
after the payload is durably journalled (written and fsynced).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from evidence.capture.journal import Journal
from tests.faults.ledger import LEDGER
from tests.test_capture_receiver import Client, payload


def test_sigkill_right_after_202_keeps_the_event(tmp_path: Path, simulated: Callable[[str], Path]) -> None:
    store = tmp_path / "store"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "evidence",
            "watch",
            "--store",
            str(store),
            "--prometheus",
            "http://127.0.0.1:9",
            "--from-dump",
            str(simulated("rollback-error-rate") / "dump"),
            "--listen",
            "127.0.0.1:0",
            "--tail",
            "10m",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        port = int(json.loads(line)["address"].rpartition(":")[2])
        body = payload(
            "Halt advancement podinfo-primary.shop waiting for rollout to finish: 1 old replicas are pending termination"
        )
        assert Client(port).post("/flagger/event", body, token=None)[0] == 202
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
    recs = Journal(store / "journal").records("shop", "podinfo")
    if [r.payload for r in recs] != [body]:
        LEDGER.lost("an event answered 202 was not in the journal after SIGKILL")
    assert [r.payload for r in recs] == [body]
