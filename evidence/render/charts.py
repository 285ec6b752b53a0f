"""Charts of a decision record: chart specs in, plotly figure data out (plain dicts), no I/O.

Every chart draws something: when there is nothing to plot it says "no data" and why, so a
reader never wonders whether a chart failed.  Long windows are downsampled for drawing by
time: the window is cut into at most ``MAX_POINTS // 3`` equal time buckets and each keeps its
lowest and highest sample (spikes survive) and a break where a value is missing, so a line
never bridges a scrape gap with points from both sides and a chart holds at most
``MAX_POINTS`` points per line whatever the window; the bundle keeps every sample.

The figures are plain JSON-ready dicts for plotly.js (the HTML record) — plotly.py is not
needed to draw them; ``evidence.render.svgchart`` draws the same downsampled lines as SVG for
the PDF.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from evidence.arrays import distinct
from evidence.model import epoch_ms

if TYPE_CHECKING:
    from numpy.typing import NDArray

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


def _ms_array(times: Any) -> NDArray[np.int64]:
    """Return times (epoch-ms integers or datetimes) as an int64 epoch-ms array."""
    arr = np.asarray(times)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    return np.array([epoch_ms(t) for t in times], dtype=np.int64)


def _float_array(values: Any) -> NDArray[np.float64]:
    """Return values as float64 with NaN for None, NaN and infinities (no value)."""
    arr = np.array([np.nan if v is None else v for v in values] if not isinstance(values, np.ndarray) else values, dtype=float)
    arr[~np.isfinite(arr)] = np.nan
    return arr


@dataclass(frozen=True, eq=False)
class Line:
    """One trace: times (epoch ms, or datetimes), values, label and role (canary, primary, threshold, value, weight)."""

    label: str
    role: str
    times: Any
    values: Any
    shape: str = "linear"  # or "hv" for steps

    def __post_init__(self) -> None:
        # Arrays once, so downsampling and drawing are vectorised whatever the caller passed.
        object.__setattr__(self, "times", _ms_array(self.times))
        object.__setattr__(self, "values", _float_array(self.values))
        if len(self.times) != len(self.values):
            raise ValueError(f"line {self.label!r}: {len(self.times)} times but {len(self.values)} values")


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
    times: Any, values: Any, limit: int = MAX_POINTS, span: tuple[int, int] | None = None
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """Keep at most ``limit`` points: per time bucket of ``span`` (ms), its min, its max and a break where a value is missing.

    Cost: a few vectorised passes over the line, O(n) (plus a sort when the times are not in order);
    the output is sorted by time.
    """
    t, v = _ms_array(times), _float_array(values)
    n = t.size
    if n <= limit:
        return t, v
    if (t[1:] < t[:-1]).any():
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
    lo, hi = span if span is not None else (int(t[0]), int(t[-1]))
    buckets = max(1, limit // 3)
    width = max(1, -(-(hi - lo + 1) // buckets))
    b = np.clip((t - lo) // width, 0, buckets - 1)
    # Sorted times make each bucket one run of samples: reduce each run.
    starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
    run = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, n]))
    missing = np.isnan(v)
    low, high = np.where(missing, np.inf, v), np.where(missing, -np.inf, v)
    is_min = ~missing & (low == np.minimum.reduceat(low, starts)[run])
    is_max = ~missing & (high == np.maximum.reduceat(high, starts)[run])
    keep = [np.array([0, n - 1]), *(_first_per_run(mask, run) for mask in (is_min, is_max, missing))]
    idx = distinct(np.concatenate(keep))
    return t[idx], v[idx]


def _first_per_run(mask: NDArray[np.bool_], run: NDArray[np.int64]) -> NDArray[np.int64]:
    """Return the first index where ``mask`` holds in each run that has one."""
    idx = np.flatnonzero(mask)
    return idx[np.r_[True, run[idx][1:] != run[idx][:-1]]] if idx.size else idx


def drawn_lines(spec: ChartSpec, lines: Sequence[Line]) -> list[tuple[Line, NDArray[np.int64], NDArray[np.float64]]]:
    """Return each line with the points drawn for it (downsampled by time over the chart's range, once per line)."""
    span = (epoch_ms(spec.x_range[0]), epoch_ms(spec.x_range[1])) if spec.x_range else None
    out = []
    for line in lines:
        # The HTML and the PDF draw the same points: downsample each line once.
        cache: dict[Any, tuple[NDArray[np.int64], NDArray[np.float64]]] = line.__dict__.setdefault("_drawn", {})
        if span not in cache:
            cache[span] = downsample(line.times, line.values, span=span)
        out.append((line, *cache[span]))
    return out


def _iso(t: NDArray[np.int64]) -> list[str]:
    """Return epoch ms as plotly date strings (UTC), seconds unless a time has milliseconds."""
    stamps: NDArray[np.datetime64] = t.astype("datetime64[ms]")
    return [str(s) for s in np.datetime_as_string(stamps, unit="ms" if (t % 1000).any() else "s")]


def _num(v: NDArray[np.float64]) -> list[float | None]:
    """Return values for JSON: six significant digits (far below a pixel), null for no value."""
    return [None if x != x else float(f"{x:.6g}") for x in v.tolist()]


def _scatter(ln: Line, t: NDArray[np.int64], v: NDArray[np.float64], **extra: Any) -> dict[str, Any]:
    return {
        "type": "scatter",
        "x": _iso(t),
        "y": _num(v),
        "name": html.escape(ln.label),
        "mode": "lines",
        "connectgaps": False,
        **extra,
    }


def _layout(spec: ChartSpec) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "font": {"family": FONT, "size": 11, "color": "#222"},
        "height": spec.height,
        "margin": {"l": 64, "r": 64 if spec.y2_title else 20, "t": 56, "b": 36},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0, "font": {"size": 10}},
        "hovermode": "x unified",
        "xaxis": {"type": "date", "gridcolor": "#eee", "linecolor": "#999"},
        "yaxis": {"title": {"text": html.escape(spec.y_title)}, "gridcolor": "#eee", "zeroline": False, "linecolor": "#999"},
    }
    if spec.x_range:
        layout["xaxis"]["range"] = _iso(np.array([epoch_ms(t) for t in spec.x_range], dtype=np.int64))
    if spec.y_range:
        layout["yaxis"]["range"] = list(spec.y_range)
    return layout


def build_figure(spec: ChartSpec) -> dict[str, Any]:
    """Return the plotly figure (``{"data", "layout"}``) of a chart spec."""
    layout = _layout(spec)
    data: list[dict[str, Any]] = []
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
        # An invisible trace keeps the axes (and the time range) drawn.
        if spec.x_range:
            data.append(
                {
                    "type": "scatter",
                    "x": layout["xaxis"]["range"],
                    "y": [None, None],
                    "mode": "lines",
                    "showlegend": False,
                    "hoverinfo": "skip",
                }
            )
        return {"data": data, "layout": layout}
    for line, t, v in drawn_lines(spec, spec.lines):
        threshold = line.role == "threshold"
        style = {
            "color": COLORS.get(line.role, "#444"),
            "width": 1.5 if threshold else 2,
            "dash": "dash" if threshold else "solid",
        }
        data.append(_scatter(line, t, v, line=dict(style, shape=line.shape)))
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
        for line, t, v in drawn_lines(spec, spec.y2_lines):
            weight = line.role == "weight"
            style = {
                "color": COLORS.get(line.role, "#888"),
                "width": 1.2,
                "shape": line.shape,
                "dash": "dot" if weight else "solid",
            }
            fill = {"fill": "tozeroy", "fillcolor": "rgba(138,138,138,0.07)"} if weight else {}
            data.append(_scatter(line, t, v, yaxis="y2", line=style, **fill))
    shapes = [_shade(a, b, COLORS["breach"]) for a, b in spec.breach_spans]
    shapes += [_shade(a, b, COLORS["nodata"]) for a, b in spec.nodata_spans]
    if shapes:
        layout["shapes"] = shapes
    if spec.breach_spans:
        # A legend entry for the shading.
        data.append(
            {
                "type": "scatter",
                "x": [None],
                "y": [None],
                "mode": "markers",
                "name": "breached",
                "marker": {"size": 12, "symbol": "square", "color": COLORS["breach"]},
            }
        )
    for kind, ms in markers_by_kind(spec.markers).items():
        symbol, color, label = MARKERS[kind]
        data.append(
            {
                "type": "scatter",
                "x": _iso(np.array([epoch_ms(m.time) for m in ms], dtype=np.int64)),
                "y": [1.0] * len(ms),
                "yaxis": "y3",
                "mode": "markers",
                "name": label,
                "marker": {"symbol": symbol, "size": 9, "color": color, "line": {"width": 1, "color": "white"}},
                "hovertext": [html.escape(m.text) for m in ms],
                "hoverinfo": "text+x",
            }
        )
    if spec.markers:
        layout["yaxis3"] = {"overlaying": "y", "range": [0, 1.06], "visible": False, "fixedrange": True}
    return {"data": data, "layout": layout}


def markers_by_kind(markers: Sequence[Marker]) -> dict[str, list[Marker]]:
    """Return markers grouped by kind (unknown kinds as ``other``), in first-seen order."""
    by_kind: dict[str, list[Marker]] = {}
    for m in markers:
        by_kind.setdefault(m.kind if m.kind in MARKERS else "other", []).append(m)
    return by_kind


def _shade(a: dt.datetime, b: dt.datetime, color: str) -> dict[str, Any]:
    """Return a full-height shaded rectangle over ``[a, b]`` behind the lines."""
    x0, x1 = _iso(np.array([epoch_ms(a), epoch_ms(b)], dtype=np.int64))
    return {
        "type": "rect",
        "xref": "x",
        "yref": "paper",
        "x0": x0,
        "x1": x1,
        "y0": 0,
        "y1": 1,
        "fillcolor": color,
        "line": {"width": 0},
        "layer": "below",
    }


def figure_json(fig: dict[str, Any]) -> str:
    """Return a figure as JSON safe to place inside an HTML <script> element."""
    text = json.dumps(fig, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
