"""The fault suite's ledger: what the oracles found, written for `make faults` to sum up.

Each case asserts its own expected outcome (clear error and exit code, gap recorded, retry
succeeded, nothing partial visible, nothing earlier lost).  Beyond pass or fail, three oracles
count what must stay zero: data lost (an earlier bundle damaged, a partial bundle visible, a
partial answer taken as complete), secrets found (planted secrets seen in a bundle, a report,
stdout/stderr or a log, by our scanner or by detect-secrets) and script executions (a script
that ran in Chromium from hostile text).  The counts are what the oracles saw, never set by hand.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

REPORT_ENV = "EVIDENCE_FAULTS_REPORT"


@dataclass
class Ledger:
    data_lost: list[str] = field(default_factory=list)
    secrets_found: list[str] = field(default_factory=list)
    script_executions: list[str] = field(default_factory=list)
    cases: dict[str, str] = field(default_factory=dict)  # nodeid -> passed | failed | skipped
    figures: dict[str, str] = field(default_factory=dict)  # what a case measured, printed by the report

    def figure(self, name: str, value: str) -> None:
        self.figures[name] = value

    def lost(self, what: str) -> None:
        self.data_lost.append(what)

    def secret(self, where: str) -> None:
        self.secrets_found.append(where)

    def script(self, what: str) -> None:
        self.script_executions.append(what)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            json.dumps(
                {
                    "cases": self.cases,
                    "data_lost": self.data_lost,
                    "secrets_found": self.secrets_found,
                    "script_executions": self.script_executions,
                    "figures": self.figures,
                },
                indent=2,
            )
        )


LEDGER = Ledger()


def scan_for_secrets(secrets: Iterable[str], blobs: dict[str, bytes]) -> list[str]:
    """Return ``where: secret`` for every planted secret found in any blob; record each in the ledger."""
    found = []
    for where, data in blobs.items():
        for s in secrets:
            if s.encode() in data:
                found.append(f"{where}: {s}")
    for f in found:
        LEDGER.secret(f)
    return found


def files_of(*folders: Path) -> dict[str, bytes]:
    """Return every file under the folders, by path."""
    out = {}
    for folder in folders:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                out[str(p)] = p.read_bytes()
    return out


def report_path() -> Path | None:
    value = os.environ.get(REPORT_ENV)
    return Path(value) if value else None
