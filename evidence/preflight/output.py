"""The Preflight document (``-o json``, schemas/preflight.schema.json) and the terminal table."""

from __future__ import annotations

import re
from typing import Any

from evidence.model import rfc3339
from evidence.preflight.model import Preflight

MARK = {"ok": "ok", "warn": "WARN", "block": "BLOCK", "skip": "skip"}
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _printable(text: str) -> str:
    """Return ``text`` with control characters shown as ``?``: names and URLs come from the cluster."""
    return _CONTROL.sub("?", text)


def preflight_to_json(p: Preflight) -> dict[str, Any]:
    """Return the machine-readable Preflight document."""
    return {
        "apiVersion": "evidence/v1",
        "kind": "Preflight",
        "canary": p.canary,
        "at": rfc3339(p.at),
        "source": p.source,
        "blocked": p.blocked,
        "checks": [{"code": c.code, "status": c.status, "message": c.message, "fix": c.fix} for c in p.checks],
    }


def format_preflight(p: Preflight) -> str:
    """Return the results as a table: code, status, message, and the fix under anything not ok."""
    width = max(len(c.code) for c in p.checks) if p.checks else 5
    lines = [f"preflight {p.canary} as of {rfc3339(p.at)} ({_printable(p.source)})", f"{'CHECK':<{width}}  STATUS  MESSAGE"]
    for c in p.checks:
        lines.append(f"{c.code:<{width}}  {MARK[c.status]:<6}  {_printable(c.message)}")
        if c.fix and c.status != "ok":
            lines.append(f"{'':<{width}}  {'':<6}  fix: {_printable(c.fix)}")
    verdict = "at least one check blocks the rollout" if p.blocked else "nothing blocks the rollout"
    counts = ", ".join(f"{p.count(s)} {s}" for s in ("ok", "warn", "block", "skip"))
    lines.append(f"{counts}: {verdict}" + (" (skip means not checked, not passed)" if p.count("skip") else ""))
    return "\n".join(lines) + "\n"
