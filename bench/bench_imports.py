"""What each command costs before it does anything: its imports, against ``python -c "import click"``.

Each command runs as a fresh process on the demo bundle: its wall time (best of 5), its import
time as ``python -X importtime`` reports it (the sum over top-level imports), and which heavy
libraries it loaded.  Goals: ``--help`` and ``verify`` ≤ 2.5× ``import click`` and free of
pandas and plotly; ``evaluate`` and ``show`` load neither plotly nor kubernetes.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.bench_render import collect_demo

ROOT = Path(__file__).resolve().parent.parent

HEAVY = ("numpy", "pandas", "pyarrow", "plotly", "kaleido", "kubernetes", "jinja2", "weasyprint", "requests")
PROBE = "import sys, runpy; sys.argv = ['evidence', *sys.argv[1:]]; runpy.run_module('evidence', run_name='__main__')"
LOADED = "import sys; from evidence.cli import main; sys.argv = ['evidence', *sys.argv[1:]]\ntry:\n main()\nfinally:\n print(' '.join(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)"


def _wall(argv: list[str], n: int = 5) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=False)
        times.append(time.perf_counter() - t0)
    return min(times)


def _import_seconds(args: list[str]) -> float:
    """Return the import time of ``evidence ARGS`` as ``-X importtime`` reports it (top-level imports)."""
    res = subprocess.run([sys.executable, "-X", "importtime", "-c", PROBE, *args], capture_output=True, text=True, check=False)
    total = 0
    for line in res.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = line[len("import time:") :].split("|", 2)
            if cumulative.strip().isdigit() and not name.startswith("  "):
                total += int(cumulative)
    return total / 1e6


def _heavy(args: list[str]) -> str:
    res = subprocess.run([sys.executable, "-c", LOADED, *args], capture_output=True, text=True, check=False)
    loaded = set(res.stderr.strip().splitlines()[-1].split()) if res.stderr.strip() else set()
    return ",".join(m for m in HEAVY if m in loaded) or "none"


def run(work: Path) -> dict[str, Any]:
    # Byte-compile our own modules first, as pip does when it installs the wheel: where
    # PYTHONDONTWRITEBYTECODE is set (this machine sets it) a checkout would otherwise recompile
    # every module at every start, about 45 ms of `evidence verify`.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "evidence")], check=True)
    bundle = str(collect_demo(work, "imports-demo"))
    out = str(work / "imports-reports")
    commands = {
        "help": ["--help"],
        "verify": ["verify", bundle],
        "show": ["show", bundle],
        "evaluate": ["evaluate", bundle, "--json"],
        "render_html": ["render", bundle, "--format", "html", "--out", out],
    }
    exe = str(Path(sys.executable).with_name("evidence"))
    click = _wall([sys.executable, "-c", "import click"])
    figures: dict[str, Any] = {"import_click_s": round(click, 3)}
    for name, args in commands.items():
        wall = _wall([exe, *args], n=5 if name in ("help", "verify") else 3)
        figures[f"{name}.wall_s"] = round(wall, 3)
        figures[f"{name}.import_s"] = round(_import_seconds(args), 3)
        figures[f"{name}.heavy_modules"] = _heavy(args)
        if name in ("help", "verify"):
            figures[f"{name}_vs_import_click_ratio"] = round(wall / click, 2)
    return figures
