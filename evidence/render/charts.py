"""Charts of a decision record as plotly figures: data in, figures out, no I/O.

Every chart draws something: when there is nothing to plot it says "no data" and why, so a
reader never wonders whether a chart failed.  Long windows are downsampled for drawing
(min/max per bucket, so spikes survive); the bundle keeps every sample.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_POINTS = 1500
FONT = "DejaVu Sans, Liberation Sans, Arial, sans-serif"
COLORS = {
    "canary": "#d1495b",
    "primary": "#2e6f9e",
    "threshold": "#7a0019",
    "value": "#d1495b",
    "weight": "#8a8a8a",
    "breach": "rgba(209,73,91,0.16)",
    "nodata": "rgba(120,120,120,0.12)",
}
MARKERS = {
    "advance": ("triangle-up", "#4a8c3f", "weight step"),
    "halt": ("x", "#e07b00", "halt"),
    "rollback": ("diamond", "#b00020", "rollback / failed"),
    "promote": ("star", "#1b7f3b", "promotion"),
    "other": ("circle", "#555555", "event"),
}


@dataclass(frozen=True)
class Line:
    """One trace: times, values, label and role (canary, primary, threshold, value, weight)."""

    label: str
    role: str
    times: Sequence[dt.datetime]
    values: Sequence[float | None]
    shape: str = "linear"  # or "hv" for steps


@dataclass(frozen=True)
class Marker:
    """An event marker at a time: kind (advance, halt, rollback, promote, other) and its text."""

    time: dt.datetime
    kind: str
    text: str


@dataclass(frozen=True)
class ChartSpec:
    """Everything one chart shows."""

    id: str
    title: str
    y_title: str
    lines: tuple[Line, ...]
    y2_title: str | None = None
    y2_lines: tuple[Line, ...] = ()
    breach_spans: tuple[tuple[dt.datetime, dt.datetime], ...] = ()
    nodata_spans: tuple[tuple[dt.datetime, dt.datetime], ...] = ()
    markers: tuple[Marker, ...] = ()
    x_range: tuple[dt.datetime, dt.datetime] | None = None
    no_data: str | None = None  # shown instead of lines when set
    height: int = 340
    y_range: tuple[float, float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def downsample(
    times: Sequence[dt.datetime], values: Sequence[float | None], limit: int = MAX_POINTS
) -> tuple[list[dt.datetime], list[float | None]]:
    """Keep at most ``limit`` points: the first, last, and each bucket's min and max."""
    n = len(times)
    if n <= limit:
        return list(times), list(values)
    buckets = max(1, limit // 2)
    size = n / buckets
    out_t: list[dt.datetime] = []
    out_v: list[float | None] = []
    for b in range(buckets):
        lo, hi = int(b * size), min(n, int((b + 1) * size))
        idx = [i for i in range(lo, hi) if values[i] is not None and not math.isnan(float(values[i]))]  # type: ignore[arg-type]
        if not idx:
            out_t.append(times[lo])
            out_v.append(None)
            continue
        i_min = min(idx, key=lambda i: float(values[i]))  # type: ignore[arg-type]
        i_max = max(idx, key=lambda i: float(values[i]))  # type: ignore[arg-type]
        for i in sorted({i_min, i_max}):
            out_t.append(times[i])
            out_v.append(values[i])
    return out_t, out_v


def _clean(values: Sequence[float | None]) -> list[float | None]:
    return [None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v) for v in values]


def build_figure(spec: ChartSpec) -> Any:
    """Return the plotly figure of a chart spec."""
    import plotly.graph_objects as go

    fig = go.Figure()
    layout: dict[str, Any] = {
        "font": {"family": FONT, "size": 11, "color": "#222"},
        "height": spec.height,
        "margin": {"l": 64, "r": 64 if spec.y2_title else 20, "t": 56, "b": 36},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0, "font": {"size": 10}},
        "hovermode": "x unified",
        "xaxis": {
            "type": "date",
            "gridcolor": "#eee",
            "linecolor": "#999",
        },
        "yaxis": {"title": {"text": html.escape(spec.y_title)}, "gridcolor": "#eee", "zeroline": False, "linecolor": "#999"},
    }
    if spec.x_range:
        layout["xaxis"]["range"] = [spec.x_range[0].isoformat(), spec.x_range[1].isoformat()]
    if spec.y_range:
        layout["yaxis"]["range"] = list(spec.y_range)
    if spec.no_data:
        layout["annotations"] = [
            {
                "text": "no data — " + html.escape(spec.no_data),
                "xref": "paper",
                "yref": "paper",
                "x": 0.5,
                "y": 0.5,
                "showarrow": False,
                "font": {"size": 13, "color": "#666"},
            }
        ]
        layout["yaxis"]["showticklabels"] = False
        layout["height"] = min(spec.height, 220)
        fig.update_layout(**layout)
        # An invisible trace keeps the axes (and the time range) drawn.
        if spec.x_range:
            fig.add_trace(
                go.Scatter(x=[spec.x_range[0], spec.x_range[1]], y=[None, None], mode="lines", showlegend=False, hoverinfo="skip")
            )
        return fig
    for line in spec.lines:
        t, v = downsample(line.times, _clean(line.values))
        dash = "dash" if line.role == "threshold" else "solid"
        fig.add_trace(
            go.Scatter(
                x=t,
                y=v,
                name=html.escape(line.label),
                mode="lines",
                line={
                    "color": COLORS.get(line.role, "#444"),
                    "width": 1.5 if line.role == "threshold" else 2,
                    "dash": dash,
                    "shape": line.shape,
                },
                connectgaps=False,
            )
        )
    if spec.y2_title:
        layout["yaxis2"] = {
            "title": {"text": html.escape(spec.y2_title)},
            "overlaying": "y",
            "side": "right",
            "range": [0, 105],
            "tickmode": "linear",
            "tick0": 0,
            "dtick": 25,
            "showgrid": False,
            "linecolor": "#999",
        }
        for line in spec.y2_lines:
            t, v = downsample(line.times, _clean(line.values))
            fig.add_trace(
                go.Scatter(
                    x=t,
                    y=v,
                    name=html.escape(line.label),
                    mode="lines",
                    yaxis="y2",
                    line={
                        "color": COLORS.get(line.role, "#888"),
                        "width": 1.2,
                        "shape": line.shape,
                        "dash": "dot" if line.role == "weight" else "solid",
                    },
                    fill="tozeroy" if line.role == "weight" else None,
                    fillcolor="rgba(138,138,138,0.07)" if line.role == "weight" else None,
                )
            )
    shapes = [_shade(a, b, COLORS["breach"]) for a, b in spec.breach_spans]
    shapes += [_shade(a, b, COLORS["nodata"]) for a, b in spec.nodata_spans]
    if shapes:
        layout["shapes"] = shapes
    if spec.breach_spans:
        # A legend entry for the shading.
        fig.add_trace(
            go.Scatter(
                x=[None],
                y=[None],
                mode="markers",
                name="breached",
                marker={"size": 12, "symbol": "square", "color": COLORS["breach"]},
            )
        )
    by_kind: dict[str, list[Marker]] = {}
    for m in spec.markers:
        by_kind.setdefault(m.kind if m.kind in MARKERS else "other", []).append(m)
    for kind, ms in by_kind.items():
        symbol, color, label = MARKERS[kind]
        fig.add_trace(
            go.Scatter(
                x=[m.time for m in ms],
                y=[1.0] * len(ms),
                yaxis="y3",
                mode="markers",
                name=label,
                marker={"symbol": symbol, "size": 9, "color": color, "line": {"width": 1, "color": "white"}},
                hovertext=[html.escape(m.text) for m in ms],
                hoverinfo="text+x",
            )
        )
    if spec.markers:
        layout["yaxis3"] = {"overlaying": "y", "range": [0, 1.06], "visible": False, "fixedrange": True}
    fig.update_layout(**layout)
    return fig


def _shade(a: dt.datetime, b: dt.datetime, color: str) -> dict[str, Any]:
    """Return a full-height shaded rectangle over ``[a, b]`` behind the lines."""
    return {
        "type": "rect",
        "xref": "x",
        "yref": "paper",
        "x0": a.isoformat(),
        "x1": b.isoformat(),
        "y0": 0,
        "y1": 1,
        "fillcolor": color,
        "line": {"width": 0},
        "layer": "below",
    }


def figure_json(fig: Any) -> str:
    """Return a figure as JSON safe to place inside an HTML <script> element."""
    text = str(fig.to_json(validate=False))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
