"""Helpers of the fault cases: run the real CLI, read outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

EVIDENCE = [sys.executable, "-m", "evidence"]


def run(
    *args: str, env: dict[str, str] | None = None, timeout: float = 180, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real CLI; a Python traceback on stderr is always a failure of the case."""
    res = subprocess.run(
        [*EVIDENCE, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout, cwd=cwd
    )
    assert "Traceback (most recent call last)" not in res.stderr, res.stderr[-3000:]
    return res


def collect_args(dump: Path, url: str, out: Path, *extra: str) -> list[str]:
    return ["collect", "shop/podinfo", "--from-dump", str(dump), "--prometheus", url, "--out", str(out), *extra]


def bundle_path(res: subprocess.CompletedProcess[str]) -> Path:
    assert res.returncode == 0, res.stderr[-2000:]
    return Path(res.stdout.strip().splitlines()[-1])


def manifest(bundle: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((bundle / "manifest.json").read_text())
    return data


def nothing_partial(out: Path) -> bool:
    """Return whether no hidden temporary folder is left under ``out``."""
    return not out.exists() or not any(p.name.startswith(".") for p in out.iterdir())
