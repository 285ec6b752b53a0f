"""What each command loads and reaches: heavy libraries only where used, no network at run time.

Each command runs in a fresh interpreter under an audit hook (PEP 578) that records every
socket and every process started; at exit the interpreter reports the modules it imported.
No timing is asserted here: the import times are figures of ``make bench`` (bench/bench_imports.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import ROOT

PROBE = """
import atexit, json, sys
reached = []
def hook(event, args):
    if event.startswith("socket.") and event != "socket.__new__":
        reached.append(event + " " + repr(args)[:200])
    elif event in ("subprocess.Popen", "os.exec", "os.posix_spawn"):
        reached.append(event + " " + str(args[0]).rsplit("/", 1)[-1])
sys.addaudithook(hook)
atexit.register(lambda: sys.stderr.write("\\nPROBE " + json.dumps({"modules": sorted(sys.modules), "reached": reached}) + "\\n"))
from evidence.cli import main
sys.argv = ["evidence", *sys.argv[1:]]
main()
"""
# ctypes.util.find_library (WeasyPrint's cffi bindings to Pango) runs these to locate libraries.
LIBRARY_LOOKUP = {"subprocess.Popen ldconfig", "subprocess.Popen gcc", "subprocess.Popen cc", "subprocess.Popen ld"}
HEAVY = {"pandas", "pyarrow", "plotly", "kaleido", "kubernetes", "weasyprint", "numpy", "jinja2", "requests"}


def probe(*args: str) -> tuple[int, set[str], list[str]]:
    """Run ``evidence ARGS`` under the probe; return its exit code, the top-level modules it imported and what it reached."""
    res = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, cwd=ROOT, timeout=300)
    line = next((ln for ln in res.stderr.splitlines() if ln.startswith("PROBE ")), None)
    assert line is not None, res.stderr
    data = json.loads(line[len("PROBE ") :])
    return res.returncode, {m.split(".")[0] for m in data["modules"]}, data["reached"]


def test_help_and_verify_load_no_data_library(bundle_for: Callable[[str], Path]) -> None:
    code, mods, _ = probe("--help")
    assert code == 0 and not mods & HEAVY, mods & HEAVY
    code, mods, _ = probe("verify", str(bundle_for("healthy-promotion")))
    assert code == 0
    assert not mods & HEAVY, mods & HEAVY  # its parquet check reads the footers itself (evidence.bundle.footer)


@pytest.mark.parametrize("command", ["evaluate", "show"])
def test_evaluate_and_show_load_only_the_analysis(command: str, bundle_for: Callable[[str], Path]) -> None:
    code, mods, reached = probe(command, str(bundle_for("healthy-promotion")))
    assert code == 0
    assert "pandas" in mods  # the analysis itself: the probe sees real imports
    assert not mods & {"plotly", "kaleido", "kubernetes", "weasyprint", "jinja2", "requests"}, mods & HEAVY
    assert reached == []


def test_render_reaches_no_network_and_starts_no_browser(bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    code, mods, reached = probe("render", str(bundle_for("rollback-error-rate")), "--format", "all", "--out", str(tmp_path))
    assert code == 0
    assert {"jinja2", "weasyprint"} <= mods
    assert not mods & {"plotly", "kaleido", "kubernetes", "requests"}, mods & HEAVY
    # No socket was opened and no process (a browser) was started: plotly.js is read from the package.
    assert set(reached) <= LIBRARY_LOOKUP, set(reached) - LIBRARY_LOOKUP
    assert len(list(tmp_path.iterdir())) == 4
