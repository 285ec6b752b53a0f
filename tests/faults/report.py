"""Print the fault suite's closing line from the ledger `make faults` wrote.

    faults: N cases, S survived, L data lost, K secrets found, X script executions

Exit status 1 when any case did not survive or any oracle count is not zero.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(path: str) -> int:
    p = Path(path)
    if not p.is_file():
        print(f"faults: no ledger at {p}: the suite did not run", file=sys.stderr)
        print("faults: 0 cases, 0 survived, 0 data lost, 0 secrets found, 0 script executions")
        return 1
    doc = json.loads(p.read_text())
    cases = doc["cases"]
    survived = sum(1 for v in cases.values() if v == "passed")
    lost, secrets, scripts = len(doc["data_lost"]), len(doc["secrets_found"]), len(doc["script_executions"])
    for name, value in sorted(doc.get("figures", {}).items()):
        print(f"  measured: {name}: {value}")
    for name, outcome in sorted(cases.items()):
        if outcome != "passed":
            print(f"  did not survive: {name} ({outcome})")
    for kind in ("data_lost", "secrets_found", "script_executions"):
        for what in doc[kind]:
            print(f"  {kind.replace('_', ' ')}: {what}")
    print(
        f"faults: {len(cases)} cases, {survived} survived, {lost} data lost, {secrets} secrets found, {scripts} script executions"
    )
    return 0 if survived == len(cases) and not (lost or secrets or scripts) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "test-artifacts/faults.json"))
