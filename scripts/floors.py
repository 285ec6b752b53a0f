"""Print the base dependencies of pyproject.toml pinned at their declared floors, as a pip constraints file.

``make test-min`` installs the package without extras under these pins, so the floors the
project declares are the versions its base tests run on.  A dependency without a ``>=`` floor
is an error: every direct dependency must declare one.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

_FLOOR = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*>=\s*([0-9][^,;\s]*)")


def floors(pyproject: Path) -> list[str]:
    """Return ``name==floor`` for each of ``[project].dependencies``."""
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    out = []
    for dep in deps:
        m = _FLOOR.match(dep)
        if m is None:
            raise SystemExit(f"floors: {pyproject}: dependency {dep!r} declares no >= floor")
        out.append(f"{m.group(1)}=={m.group(2)}")
    return out


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent
    print("# The base dependencies at the floors pyproject.toml declares (scripts/floors.py; make test-min).")
    print("\n".join(floors(root / "pyproject.toml")))
