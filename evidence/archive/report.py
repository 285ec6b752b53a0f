"""Plain-text and CSV presentation of the ledger and of archive verification."""

from __future__ import annotations

import csv
import io
from typing import Any

_HISTORY_TABLE = (
    ("rolloutStart", "ROLLOUT START"),
    ("cluster", "CLUSTER"),
    ("namespace", "NAMESPACE"),
    ("canary", "CANARY"),
    ("outcome", "OUTCOME"),
    ("verdict", "VERDICT"),
    ("maxWeight", "MAX W"),
    ("failedChecks", "FAILED"),
    ("detectionLagSeconds", "LAG S"),
    ("canaryRequests", "REQUESTS"),
    ("canaryErrors", "ERRORS"),
    ("signed", "SIGNED"),
    ("verified", "VERIFIED"),
)


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines) + "\n"


def _summary_rows(doc: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    header = ["level", "cluster", "namespace", "canary", "rollouts", "rolled_back", "abort_rate", "promoted",
              "promoted_despite_breach", "silent_failures", "lag_p50_s", "lag_p90_s", "lag_max_s", "top_checks", "top_criteria"]  # fmt: skip
    rows = []
    for g in doc["groups"]:
        lag = g["detectionLagSeconds"]
        rows.append(
            [g["level"], g["cluster"], g["namespace"], g["canary"], g["rollouts"], g["rolledBack"], g["abortRate"], g["promoted"],
             g["promotedDespiteBreach"], g["silentFailures"], lag["p50"], lag["p90"], lag["max"],
             " ".join(f"{t['name']}:{t['count']}" for t in g["topChecks"]),
             " ".join(f"{t['name']}:{t['count']}" for t in g["topCriteria"])]
        )  # fmt: skip
    return header, rows


def ledger_table(doc: dict[str, Any]) -> str:
    """Return a history or fleet-summary document as an aligned text table."""
    if doc["kind"] == "FleetSummary":
        header, rows = _summary_rows(doc)
        return _table([h.upper().replace("_", " ") for h in header], [[_cell(v) for v in r] for r in rows])
    return _table([h for _, h in _HISTORY_TABLE], [[_cell(r[k]) for k, _ in _HISTORY_TABLE] for r in doc["rollouts"]])


def ledger_csv(doc: dict[str, Any]) -> str:
    """Return a history or fleet-summary document as CSV (header row first)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if doc["kind"] == "FleetSummary":
        header, rows = _summary_rows(doc)
        w.writerow(header)
        w.writerows(["" if v is None else v for v in r] for r in rows)
    else:
        names = list(doc["rollouts"][0]) if doc["rollouts"] else []
        w.writerow(names)
        w.writerows(["" if r[n] is None else r[n] for n in names] for r in doc["rollouts"])
    return buf.getvalue()
