"""The README's bundle-format table agrees with ``bundle.SCHEMAS`` (sqlite-utils' tested-docs habit).

(The CLI reference against ``--help`` is tested with the commands' conventions, not here.)
"""

from __future__ import annotations

import re

from evidence.bundle import SCHEMAS
from tests.conftest import ROOT


def readme_tables() -> dict[str, list[str]]:
    """Return, for each ``X.parquet`` row of the README's bundle-format table, the column names it lists, in order."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Bundle format", 1)[1].split("\n## ", 1)[0]
    out: dict[str, list[str]] = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        m = re.fullmatch(r"`(\w+)\.parquet`", cells[0]) if len(cells) == 3 else None
        if m:
            listed = re.sub(r"\([^)]*\)", "", cells[2])  # "(`webhook`, `log`)": values, not columns
            out[m.group(1)] = re.findall(r"`(\w+)`", listed)
    return out


def test_readme_lists_every_table_and_column_of_the_schema() -> None:
    documented = readme_tables()
    assert set(documented) == set(SCHEMAS), f"README tables {sorted(documented)} ≠ SCHEMAS {sorted(SCHEMAS)}"
    for table, columns in SCHEMAS.items():
        names = [name for name, _, _ in columns]
        assert documented[table] == names, f"{table}.parquet: README lists {documented[table]}, SCHEMAS has {names}"
