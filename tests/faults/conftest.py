"""The named, counted fault and hostile-input suite (`make faults`; one case of each kind runs in `make test`).

Every test here is a case.  Slow cases carry ``@pytest.mark.faults_slow`` and run only when
``EVIDENCE_FAULTS_ALL=1`` (what `make faults` sets).  With ``EVIDENCE_FAULTS_REPORT=FILE`` the
outcome of every case and the oracles' counts are written to FILE; ``tests/faults/report.py``
prints the closing line from it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.faults.ledger import LEDGER, report_path


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run_all = os.environ.get("EVIDENCE_FAULTS_ALL") == "1"
    keep, drop = [], []
    for item in items:
        if "tests/faults/" in item.nodeid.replace("\\", "/") or item.nodeid.startswith("faults/"):
            item.add_marker(pytest.mark.fault)
            if item.get_closest_marker("faults_slow") and not run_all:
                drop.append(item)
                continue
        keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()  # type: ignore[attr-defined]
    if rep.when == "call" or (rep.when == "setup" and rep.outcome != "passed"):
        LEDGER.cases[item.nodeid] = rep.outcome


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = report_path()
    if path is not None:
        LEDGER.write(path)
