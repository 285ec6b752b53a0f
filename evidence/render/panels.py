"""The report's charts as specs: one per criterion, Flagger's checks, and traffic."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import numpy as np

from evidence.analysis.components import request_rates
from evidence.analysis.counters import to_ms
from evidence.analysis.traffic import scrape_times
from evidence.canary import CanarySpec
from evidence.model import epoch_ms
from evidence.render.charts import ChartSpec, Line, Marker
from evidence.render.formatting import FRIENDLY, fmt_time
from evidence.textsafe import visible

if TYPE_CHECKING:
    import pandas as pd

    from evidence.bundle import Bundle
    from evidence.evaluate import Evaluation

MARKER_KIND = {
    "advance": "advance",
    "promote-step": "promote",
    "halt": "halt",
    "query-failed": "halt",
    "check-error": "halt",
    "rollback": "rollback",
    "rollback-manual": "rollback",
    "rollback-deadline": "rollback",
    "failed": "rollback",
    "promotion-failed": "rollback",
    "promote-start": "promote",
    "route-primary": "promote",
    "promoted": "promote",
    "not-ready": "halt",
}


#: Markers of one kind drawn per chart at most: a flood of halts (a hostile or broken cluster
#: can record 100,000) is drawn as one marker per time bucket that says how many it stands for.
MAX_MARKERS = 120
MARKER_TEXT = 300  # characters of an event message in a marker's hover text


def _marker_list(ev: Evaluation, start: dt.datetime, end: dt.datetime) -> tuple[Marker, ...]:
    by_kind: dict[str, list[tuple[dt.datetime, str]]] = {}
    for e in ev.timeline.entries:
        kind = MARKER_KIND.get(e.action)
        if kind and start <= e.time <= end:
            by_kind.setdefault(kind, []).append((e.time, e.message))
    out: list[Marker] = []
    span = max((end - start).total_seconds(), 1.0)
    for kind, items in by_kind.items():
        if len(items) <= MAX_MARKERS:
            out.extend(Marker(t, kind, f"{fmt_time(t)} {_short(msg)}") for t, msg in items)
            continue
        buckets: dict[int, list[tuple[dt.datetime, str]]] = {}
        for t, msg in items:
            buckets.setdefault(int((t - start).total_seconds() / span * MAX_MARKERS), []).append((t, msg))
        for group in buckets.values():
            t, msg = group[0]
            more = f" (+{len(group) - 1} more {kind} events until {fmt_time(group[-1][0])})" if len(group) > 1 else ""
            out.append(Marker(t, kind, f"{fmt_time(t)} {_short(msg)}{more}"))
    return tuple(sorted(out, key=lambda m: m.time))


def _short(text: str) -> str:
    """Return a marker's hover text: controls and bidi overrides made visible, then cut to length."""
    text = visible(text)
    return text if len(text) <= MARKER_TEXT else text[: MARKER_TEXT - 1] + "…"


def _weight_line(ev: Evaluation, start: dt.datetime, end: dt.datetime) -> Line:
    w = ev.timeline.weights()
    lo, hi = epoch_ms(start), epoch_ms(end)
    t = np.asarray(w.times, dtype=np.int64)
    inside = (t > lo) & (t <= hi)
    first = float(w.at(np.array([lo]))[0])
    values = np.concatenate([[first], np.asarray(w.weights, dtype=float)[inside]])
    times = np.concatenate([[lo], t[inside], [hi]])
    return Line("canary weight set by Flagger (%)", "weight", times, np.append(values, values[-1]), shape="hv")


def build_charts(bundle: Bundle, ev: Evaluation) -> list[ChartSpec]:
    """Return the report's chart specs: one per criterion, Flagger's checks, traffic (drawn from the evaluation's table)."""
    start, end = ev.window_start, ev.window_end
    weight = _weight_line(ev, start, end)
    markers = _marker_list(ev, start, end)
    charts: list[ChartSpec] = []
    for c in ev.criteria:
        comps = ev.components(c.name)
        title = f"{FRIENDLY.get(c.name, c.name)}: {c.description}"
        if comps is None or c.points is None:
            charts.append(
                ChartSpec(
                    f"criterion-{c.name}",
                    title,
                    "",
                    (),
                    x_range=(start, end),
                    no_data=c.no_data_reason or "never evaluated: the canary took no traffic",
                )
            )
            continue
        times = to_ms(c.points["time"])
        lines = tuple(Line(comp.label, comp.role, times, comp.values) for comp in comps.lines)
        charts.append(
            ChartSpec(
                f"criterion-{c.name}",
                title,
                comps.unit,
                lines,
                y2_title="weight (%)",
                y2_lines=(weight,),
                breach_spans=tuple((s.start, s.end) for s in c.breached_spans),
                nodata_spans=tuple((s.start, s.end) for s in c.no_data_spans),
                markers=markers,
                x_range=(start, end),
            )
        )
    charts.extend(_checks_charts(bundle, ev, markers, weight))
    charts.append(_traffic_chart(ev, ev.table, weight))
    return charts


def _checks_charts(bundle: Bundle, ev: Evaluation, markers: tuple[Marker, ...], weight: Line) -> list[ChartSpec]:
    """Return one chart per Flagger metric: its value at each analysis tick against its thresholds."""
    checks: pd.DataFrame = bundle.table("checks")
    start, end = ev.window_start, ev.window_end
    metrics = [m.name for m in CanarySpec.from_object(bundle.canary).metrics]
    halts = tuple(m for m in markers if m.kind in ("halt", "rollback"))
    if not metrics:
        return [
            ChartSpec(
                "flagger-check", "Flagger's checks", "", (), x_range=(start, end), no_data="the Canary has no metrics to re-run"
            )
        ]
    charts = []
    for i, metric in enumerate(metrics):
        df = checks[checks["metric"] == metric]
        unit = "%" if metric == "request-success-rate" else "ms" if metric == "request-duration" else "value"
        title = f"Flagger's check {metric} at each analysis tick"
        cid = f"flagger-check-{i}"
        query = next((q for q in bundle.record.queries if q.id == f"check:{metric}"), None)
        if len(df) == 0 or df["value"].notna().sum() == 0:
            if query is None:
                why = "its query could not be re-run (see Evidence and provenance)"
            elif query.status == "failed":
                why = f"the query failed: {query.extra.get('error')}"
            else:
                why = "the query returned no values at any tick — Flagger's 'no values found'"
            charts.append(ChartSpec(cid, title, "", (), x_range=(start, end), no_data=why))
            continue
        lines = [Line(f"{metric} ({unit})", "canary", to_ms(df["timestamp"]), df["value"].to_numpy(dtype=float))]
        lo = df["threshold_min"].dropna()
        hi = df["threshold_max"].dropna()
        if len(lo):
            lines.append(Line(f"halt below {float(lo.iloc[0]):g} {unit}", "threshold", [start, end], [float(lo.iloc[0])] * 2))
        if len(hi):
            lines.append(Line(f"halt above {float(hi.iloc[0]):g} {unit}", "threshold", [start, end], [float(hi.iloc[0])] * 2))
        charts.append(
            ChartSpec(
                cid,
                title,
                f"{metric} ({unit})",
                tuple(lines),
                y2_title="weight (%)",
                y2_lines=(weight,),
                markers=halts,
                x_range=(start, end),
                height=300,
            )
        )
    return charts


def _traffic_chart(ev: Evaluation, table: Any, weight: Line) -> ChartSpec:
    start, end = ev.window_start, ev.window_end
    scrapes = scrape_times(table, epoch_ms(start), epoch_ms(end))
    title = "Traffic: requests per second, and the canary's observed share next to the weight Flagger set"
    if scrapes.size < 2:
        return ChartSpec("traffic", title, "", (), x_range=(start, end), no_data="fewer than two Traefik scrapes in the window")
    rates = request_rates(table, scrapes)
    times = scrapes
    total = rates["primary"] + rates["canary"]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(total > 0, rates["canary"] / total * 100, np.nan)
    return ChartSpec(
        "traffic",
        title,
        "requests per second",
        (
            Line("primary req/s", "primary", times, rates["primary"]),
            Line("canary req/s", "canary", times, rates["canary"]),
        ),
        y2_title="share (%)",
        y2_lines=(weight, Line("canary's observed share (%)", "value", times, share)),
        x_range=(start, end),
    )
