"""evidence.memory.tune_memory: the data commands give freed memory back; a choice in the environment wins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

POOL = "import pyarrow as pa; print(pa.default_memory_pool().backend_name)"


def _run(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "ARROW_DEFAULT_MEMORY_POOL"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean | env, check=True)
    return res.stdout.strip()


def test_the_default_pool_is_not_the_system_one_without_it() -> None:
    # What the tuning changes: pyarrow's own default (mimalloc or jemalloc in the wheels).
    assert _run(POOL) != "system"


@pytest.mark.parametrize("imported_first", [False, True])
def test_tune_memory_switches_pyarrow_to_the_system_pool(imported_first: bool) -> None:
    first = "import pyarrow; " if imported_first else ""
    assert _run(f"{first}from evidence.memory import tune_memory; tune_memory(); {POOL}") == "system"


def test_a_pool_chosen_in_the_environment_wins() -> None:
    code = f"from evidence.memory import tune_memory; tune_memory(); {POOL}"
    assert _run(code, ARROW_DEFAULT_MEMORY_POOL="jemalloc") == "jemalloc"


def test_the_library_alone_keeps_the_default_pool() -> None:
    # Importing and using the library does not change a host program's allocators: only the CLI tunes.
    assert _run(f"import evidence, evidence.evaluate, evidence.collect; {POOL}") != "system"


def test_the_evaluate_command_tunes_before_it_reads(tmp_path: Path) -> None:
    # Through the command itself, in a fresh process: `evidence evaluate` of a missing bundle
    # fails, and the process's pool is the system one afterwards.
    code = (
        "import sys; from click.testing import CliRunner; from evidence.cli import cli; "
        f"r = CliRunner().invoke(cli, ['evaluate', {str(tmp_path / 'missing')!r}]); "
        f"{POOL}; sys.exit(0 if r.exit_code else 1)"
    )
    assert _run(code) == "system"
