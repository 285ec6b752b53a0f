"""How reports write numbers, times and thresholds: one place, so every format agrees."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

UTC = dt.UTC
FRIENDLY = {"error_rate_ratio": "error-rate", "p95_latency_increase": "p95-latency", "success_rate": "success-rate"}
OUTCOME_LABEL = {
    "promoted": "Promoted",
    "rolled_back": "Rolled back",
    "failed": "Failed",
    "in_progress": "In progress",
    "unknown": "Unknown",
}


# ----- formatting ------------------------------------------------------------------------------
def fmt_time(t: dt.datetime | None) -> str:
    """Return HH:MM:SS (UTC), or an em dash."""
    return t.astimezone(UTC).strftime("%H:%M:%S") if t else "—"


def fmt_datetime(t: dt.datetime | None) -> str:
    """Return ``YYYY-MM-DD HH:MM:SS UTC``, milliseconds when present, or an em dash."""
    if t is None:
        return "—"
    t = t.astimezone(UTC)
    ms = f".{t.microsecond // 1000:03d}" if t.microsecond // 1000 else ""
    return t.strftime("%Y-%m-%d %H:%M:%S") + ms + " UTC"


def fmt_duration(seconds: float | None) -> str:
    """Return a duration as ``4 min 8 s``, ``45 s``, ``1 h 2 min``; ``—`` when unknown."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "—"
    sign = "−" if seconds < 0 else ""
    s = round(abs(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    parts = [f"{h} h"] if h else []
    if m:
        parts.append(f"{m} min")
    if sec or not parts:
        parts.append(f"{sec} s")
    return sign + " ".join(parts[:2])


def fmt_int(n: float | int | None) -> str:
    return "—" if n is None else f"{round(n):,}"


def fmt_num(v: float | None, digits: int = 2) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    return f"{v:,.{digits}f}"


def fmt_value(kind: str, v: float | None, *, terminal: bool = False) -> str:
    """Return a criterion value in its natural unit (plain ASCII for a terminal)."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-" if terminal else "—"
    times, pct = ("x", "%") if terminal else ("×", " %")
    if kind == "error_rate_ratio":
        return f"{v:.2f}{times}"
    if kind == "p95_latency_increase":
        return f"{v * 100:+.1f}{pct}"
    if kind == "success_rate":
        return f"{v:.2f}{pct}"
    return f"{v:.4g}"


_CMP = {">=": "≥", "<=": "≤"}


def fmt_threshold(kind: str, comparator: str, threshold: float, *, terminal: bool = False) -> str:
    """Return when a criterion aborts, in its natural unit (short and ASCII for a terminal column)."""
    cmp = comparator if terminal else _CMP.get(comparator, comparator)
    if kind == "error_rate_ratio":
        return f"{cmp} {threshold:g}x" if terminal else f"{cmp} {threshold:g}× primary's 5xx share"
    if kind == "p95_latency_increase":
        return f"{cmp} {threshold * 100:+.0f}%" if terminal else f"{cmp} +{threshold * 100:g} % vs primary p95"
    if kind == "success_rate":
        return f"{cmp} {threshold:g}%" if terminal else f"{cmp} {threshold:g} %"
    return f"{cmp} {threshold:g}"


def none_if_na(v: Any) -> Any:
    """Return None for pandas' missing values (NA, NaN, NaT), else the value."""
    if v is None:
        return None
    try:
        import pandas as pd

        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return v
