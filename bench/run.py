"""`make bench`: run every benchmark, print the figures and write ``bench/results.json``.

Each figure is measured in this run; where a baseline exists it is taken in the same run
and the figure is reported as a ratio against it, so results from different machines
compare.  Nothing here is a pass/fail test.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import (
    bench_archive,
    bench_capture,
    bench_collect,
    bench_evaluate,
    bench_imports,
    bench_preflight,
    bench_render,
    bench_simulator,
)

HERE = Path(__file__).resolve().parent
WORK = HERE / "work"

BENCHES: dict[str, Callable[[Path], dict[str, Any]]] = {
    "simulator": bench_simulator.run,
    "collect": bench_collect.run,
    "evaluate": bench_evaluate.run,
    "render": bench_render.run,
    "imports": bench_imports.run,
    "preflight": bench_preflight.run,
    "archive": bench_archive.run,
    "capture": bench_capture.run,
}


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(BENCHES)
    WORK.mkdir(exist_ok=True)
    results_path = HERE / "results.json"
    results: dict[str, Any] = json.loads(results_path.read_text()) if results_path.exists() else {}
    for name in names:
        print(f"== {name}", flush=True)
        t0 = time.monotonic()
        figures = BENCHES[name](WORK)
        figures["_measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        figures["_machine"] = f"{platform.machine()} {platform.python_version()}"
        figures["_bench_seconds"] = round(time.monotonic() - t0, 1)
        for k, v in figures.items():
            print(f"   {k:40s} {v}")
        results[name] = figures
    results_path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(f"figures written to {results_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
