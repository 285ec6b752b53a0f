"""evidence.memory.tune_memory: the data commands give freed memory back; a choice in the environment wins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

POOL = "import pyarrow as pa; print(pa.default_memory_pool().backend_name)"


TUNED = ("ARROW_DEFAULT_MEMORY_POOL", "MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "GLIBC_TUNABLES")


def _glibc() -> bool:
    try:
        return bool(os.confstr("CS_GNU_LIBC_VERSION"))
    except (ValueError, OSError, AttributeError):
        return False


def _run(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in TUNED}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=clean | env, check=True)
    return res.stdout.strip()


@pytest.fixture(scope="module")
def default_pool() -> str:
    pool = _run(POOL)
    if pool == "system":
        pytest.skip("this pyarrow has no pool but the system one: nothing to switch")
    return pool


def test_the_default_pool_is_not_the_system_one_without_it(default_pool: str) -> None:
    # What the tuning changes: pyarrow's own default (mimalloc or jemalloc in the wheels).
    assert default_pool in ("mimalloc", "jemalloc")


@pytest.mark.parametrize("imported_first", [False, True])
def test_tune_memory_switches_pyarrow_to_the_system_pool(imported_first: bool, default_pool: str) -> None:
    first = "import pyarrow; " if imported_first else ""
    assert _run(f"{first}from evidence.memory import tune_memory; tune_memory(); {POOL}") == "system"


def test_a_pool_chosen_in_the_environment_wins() -> None:
    code = f"from evidence.memory import tune_memory; tune_memory(); {POOL}"
    assert _run(code, ARROW_DEFAULT_MEMORY_POOL="jemalloc") == "jemalloc"


def test_the_library_alone_keeps_the_default_pool(default_pool: str) -> None:
    # Importing and using the library does not change a host program's allocators: only the CLI tunes.
    assert _run(f"import evidence, evidence.evaluate, evidence.collect; {POOL}") == default_pool


def test_the_evaluate_command_tunes_before_it_reads(tmp_path: Path, default_pool: str) -> None:
    # Through the command itself, in a fresh process: `evidence evaluate` of a missing bundle
    # fails, and the process's pool is the system one afterwards.
    code = (
        "import sys; from click.testing import CliRunner; from evidence.cli import cli; "
        f"r = CliRunner().invoke(cli, ['evaluate', {str(tmp_path / 'missing')!r}]); "
        f"{POOL}; sys.exit(0 if r.exit_code else 1)"
    )
    assert _run(code) == "system"


APPLIED = "from evidence.memory import tune_memory; print(sorted(tune_memory({arg})))"


@pytest.mark.skipif(not _glibc(), reason="mallopt is glibc's")
def test_glibc_takes_the_arena_bound_and_for_the_fetching_commands_the_mmap_threshold() -> None:
    assert _run(APPLIED.format(arg="")) == "['arena_max', 'arrow_pool']"
    assert _run(APPLIED.format(arg="mmap_arrays=True")) == "['arena_max', 'arrow_pool', 'mmap_threshold']"


@pytest.mark.skipif(not _glibc(), reason="mallopt is glibc's")
@pytest.mark.parametrize(
    "env",
    [
        {"MALLOC_ARENA_MAX": "4", "MALLOC_MMAP_THRESHOLD_": "131072", "ARROW_DEFAULT_MEMORY_POOL": "mimalloc"},
        {
            "GLIBC_TUNABLES": "glibc.malloc.arena_max=4:glibc.malloc.mmap_threshold=131072",
            "ARROW_DEFAULT_MEMORY_POOL": "jemalloc",
        },
    ],
)
def test_settings_made_in_the_environment_are_left_alone(env: dict[str, str]) -> None:
    assert _run(APPLIED.format(arg="mmap_arrays=True"), **env) == "[]"
