"""Charts as static SVG for the PDF: the same specs and downsampled lines as the HTML, drawn in Python.

A browser (kaleido → Chromium) took seconds to start and a fraction of a second per chart;
this draws a chart in milliseconds, with no browser, as plain paths and text that WeasyPrint
lays out quickly: a legend on top, a date x axis, the value axis on the left, the weight on a
0–105 % right axis, shaded spans behind the lines and Flagger's events as markers along the top
— what the interactive chart shows, without the interaction.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from collections.abc import Callable
from html import escape
from typing import TYPE_CHECKING

import numpy as np

from evidence.model import epoch_ms
from evidence.render.charts import COLORS, FONT, MARKERS, ChartSpec, Line, drawn_lines, markers_by_kind

if TYPE_CHECKING:
    from numpy.typing import NDArray

_SECOND, _MINUTE, _HOUR, _DAY = 1000, 60_000, 3_600_000, 86_400_000
_TIME_STEPS = [
    s * u for u, ss in ((_SECOND, (1, 2, 5, 10, 15, 30)), (_MINUTE, (1, 2, 5, 10, 15, 30)), (_HOUR, (1, 2, 3, 6, 12))) for s in ss
] + [d * _DAY for d in (1, 2, 7, 14, 28)]
_DASH = {"dash": "6,4", "dot": "2,3"}
_ROW = 18  # legend row height


def _color(css: str) -> tuple[str, str]:
    """Return an SVG fill colour and opacity for ``#hex`` or ``rgba(r,g,b,a)``."""
    if css.startswith("rgba("):
        r, g, b, a = (p.strip() for p in css[5:-1].split(","))
        return f"rgb({r},{g},{b})", a
    return css, "1"


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Return round tick values (1, 2, 5 × 10ⁿ steps) covering ``[lo, hi]``."""
    span = hi - lo
    if not math.isfinite(span) or span <= 0:
        return [lo]
    raw = span / max(1, target)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    return [round(first + i * step, 12) for i in range(int((hi - first) / step + 1e-9) + 1)]


def _tick_label(v: float, step: float) -> str:
    digits = max(0, -math.floor(math.log10(step))) if step > 0 and step < 1 else 0
    if step >= 1 and abs(v) >= 10_000:
        return f"{v / 1000:g}k"
    return f"{v:,.{digits}f}" if digits else f"{v:,.0f}"


def time_ticks(lo: int, hi: int, max_ticks: int) -> tuple[list[int], int]:
    """Return tick times (epoch ms, on round UTC boundaries) and the step, at most ``max_ticks`` of them."""
    span = max(1, hi - lo)
    step = next((s for s in _TIME_STEPS if span / s <= max_ticks), _TIME_STEPS[-1])
    first = -(-lo // step) * step
    return list(range(first, hi + 1, step)), step


def _time_label(ms: int, step: int) -> str:
    t = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    if step >= _DAY:
        return t.strftime("%b %d")
    return t.strftime("%H:%M:%S" if step < _MINUTE else "%H:%M")


class _Frame:
    """The plot area and the scales from data to pixels."""

    def __init__(self, spec: ChartSpec, width: int, height: int, top: int) -> None:
        self.left, self.right = 64, width - (64 if spec.y2_title else 20)
        self.top, self.bottom = top, height - 36
        if spec.x_range:
            self.x_lo, self.x_hi = epoch_ms(spec.x_range[0]), epoch_ms(spec.x_range[1])
        else:
            ts = [line.times for line in (*spec.lines, *spec.y2_lines) if line.times.size]
            self.x_lo = int(min(t.min() for t in ts)) if ts else 0
            self.x_hi = int(max(t.max() for t in ts)) if ts else 1
        self.x_hi = max(self.x_hi, self.x_lo + 1)
        self.y_lo, self.y_hi = _value_range(spec)

    def x(self, ms: NDArray[np.int64] | NDArray[np.float64]) -> NDArray[np.float64]:
        return self.left + (np.asarray(ms, dtype=float) - self.x_lo) / (self.x_hi - self.x_lo) * (self.right - self.left)

    def y(self, v: NDArray[np.float64], lo: float, hi: float) -> NDArray[np.float64]:
        return self.bottom - (np.asarray(v, dtype=float) - lo) / (hi - lo) * (self.bottom - self.top)


def _value_range(spec: ChartSpec) -> tuple[float, float]:
    """Return the left axis' range: the spec's, or the lines' finite values padded by 4 %."""
    if spec.y_range:
        return float(spec.y_range[0]), float(spec.y_range[1])
    # The drawn points keep every bucket's extremes, so their range is the lines' range.
    finite = [v[np.isfinite(v)] for _, _, v in drawn_lines(spec, spec.lines)]
    vals = np.concatenate(finite) if finite else np.array([])
    if vals.size == 0:
        return 0.0, 1.0
    lo, hi = float(vals.min()), float(vals.max())
    pad = (hi - lo) * 0.04 or max(abs(hi) * 0.05, 1.0)
    return lo - pad, hi + pad


def _path(xs: NDArray[np.float64], ys: NDArray[np.float64], shape: str) -> str:
    """Return an SVG path through the points, broken where a value is missing; ``hv`` draws steps."""
    parts: list[str] = []
    pen = False
    prev_y = 0.0
    for x, y in zip(xs.tolist(), ys.tolist()):
        if y != y:  # NaN: lift the pen
            pen = False
            continue
        if not pen:
            parts.append(f"M{x:.1f} {y:.1f}")
        elif shape == "hv":
            parts.append(f"H{x:.1f}V{y:.1f}" if y != prev_y else f"H{x:.1f}")
        else:
            parts.append(f"L{x:.1f} {y:.1f}")
        pen, prev_y = True, y
    return "".join(parts)


def _symbol(kind: str, x: float, y: float, r: float, color: str) -> str:
    """Return one marker symbol (plotly's names) centred at ``(x, y)``."""
    if kind == "triangle-up":
        pts = [(x, y - r), (x + r, y + r * 0.8), (x - r, y + r * 0.8)]
    elif kind == "diamond":
        pts = [(x, y - r), (x + r, y), (x, y + r), (x - r, y)]
    elif kind == "star":
        pts = [
            (
                x + (r if i % 2 == 0 else r * 0.45) * math.sin(i * math.pi / 5),
                y - (r if i % 2 == 0 else r * 0.45) * math.cos(i * math.pi / 5),
            )
            for i in range(10)
        ]
    elif kind == "square":
        pts = [(x - r, y - r), (x + r, y - r), (x + r, y + r), (x - r, y + r)]
    elif kind == "x":
        return (
            f'<path d="M{x - r:.1f} {y - r:.1f}L{x + r:.1f} {y + r:.1f}M{x - r:.1f} {y + r:.1f}L{x + r:.1f} {y - r:.1f}" '
            f'stroke="{color}" stroke-width="2.4"/>'
        )
    else:
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}" fill="{color}"/>'
    fill, opacity = _color(color)
    points = " ".join(f"{px:.1f},{py:.1f}" for px, py in pts)
    return f'<polygon points="{points}" fill="{fill}" fill-opacity="{opacity}" stroke="white" stroke-width="0.8"/>'


def _line_swatch(line: Line, y2: bool) -> Callable[[float, float], str]:
    return lambda x, y: f'<path d="M{x:.1f} {y:.1f}H{x + 30:.1f}" {_line_style(line, y2)}/>'


def _symbol_swatch(symbol: str, color: str) -> Callable[[float, float], str]:
    return lambda x, y: _symbol(symbol, x + 15, y, 5, color)


def _legend(spec: ChartSpec, width: int) -> tuple[list[str], int]:
    """Return the legend's elements, laid out in rows from the top left, and the height it takes."""
    # Each entry: its label and a function drawing its swatch at (x, y).
    entries = [(ln.label, _line_swatch(ln, False)) for ln in spec.lines]
    entries += [(ln.label, _line_swatch(ln, True)) for ln in spec.y2_lines]
    if spec.breach_spans:
        entries.append(("breached", _symbol_swatch("square", COLORS["breach"])))
    for symbol, color, label in (MARKERS[k] for k in markers_by_kind(spec.markers)):
        entries.append((label, _symbol_swatch(symbol, color)))
    out: list[str] = []
    x, row = 64.0, 0
    for label, swatch in entries:
        w = 46 + len(label) * 5.9  # DejaVu Sans at 10 px: about 5.9 px a character, and a gap
        if x + w > width - 20 and x > 64:
            x, row = 64.0, row + 1
        y = 14 + row * _ROW
        out.append(swatch(x, y))
        out.append(f'<text x="{x + 34:.1f}" y="{y + 3.5:.1f}" font-size="10">{escape(label)}</text>')
        x += w
    return out, (row + 1) * _ROW if entries else 0


def _line_style(line: Line, y2: bool) -> str:
    """Return a line's stroke attributes, as the interactive chart draws it (right-axis lines thinner)."""
    width = 1.2 if y2 else 1.5 if line.role == "threshold" else 2
    dash = "dash" if line.role == "threshold" else "dot" if line.role == "weight" else "solid"
    dash_attr = f' stroke-dasharray="{_DASH[dash]}"' if dash in _DASH else ""
    return f'fill="none" stroke="{COLORS.get(line.role, "#444")}" stroke-width="{width}"{dash_attr}'


def chart_svg(spec: ChartSpec, width: int = 1000) -> bytes:
    """Return one chart as a standalone SVG document (pure: a spec in, bytes out)."""
    legend, legend_h = ([], 0) if spec.no_data else _legend(spec, width)
    height = min(spec.height, 220) if spec.no_data else spec.height
    top = max(56, legend_h + 22)
    height += top - 56
    f = _Frame(spec, width, height, top)
    el: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'font-family="{FONT}" fill="#222">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
    ]
    el += _shades(spec, f)
    el += _axes(spec, f)
    if spec.no_data:
        el.append(
            f'<text x="{(f.left + f.right) / 2:.1f}" y="{(f.top + f.bottom) / 2:.1f}" font-size="13" fill="#666" '
            f'text-anchor="middle">{escape("no data — " + spec.no_data)}</text>'
        )
    else:
        el += _traces(spec, f)
    el += legend
    el.append("</svg>")
    return "\n".join(el).encode("utf-8")


def _shades(spec: ChartSpec, f: _Frame) -> list[str]:
    out = []
    for spans, css in ((spec.breach_spans, COLORS["breach"]), (spec.nodata_spans, COLORS["nodata"])):
        fill, opacity = _color(css)
        for a, b in spans:
            x0, x1 = (float(v) for v in f.x(np.array([epoch_ms(a), epoch_ms(b)])))
            x0, x1 = max(x0, f.left), min(x1, f.right)
            if x1 > x0:
                out.append(
                    f'<rect x="{x0:.1f}" y="{f.top}" width="{x1 - x0:.1f}" height="{f.bottom - f.top}" '
                    f'fill="{fill}" fill-opacity="{opacity}"/>'
                )
    return out


def _axes(spec: ChartSpec, f: _Frame) -> list[str]:
    """Return grid lines, axis lines, tick labels and axis titles."""
    out = []
    ticks, step = time_ticks(f.x_lo, f.x_hi, max(2, int((f.right - f.left) / 110)))
    for t, x in zip(ticks, f.x(np.array(ticks)).tolist()):
        out.append(f'<path d="M{x:.1f} {f.top}V{f.bottom}" stroke="#eee"/>')
        out.append(f'<text x="{x:.1f}" y="{f.bottom + 14}" font-size="11" text-anchor="middle">{_time_label(t, step)}</text>')
    if ticks and step < _DAY:
        day = dt.datetime.fromtimestamp(ticks[0] / 1000, dt.UTC).strftime("%b %d, %Y")
        out.append(
            f'<text x="{float(f.x(np.array([ticks[0]]))[0]):.1f}" y="{f.bottom + 28}" font-size="11" text-anchor="middle">{day}</text>'
        )
    if not spec.no_data:
        yt = nice_ticks(f.y_lo, f.y_hi)
        ystep = yt[1] - yt[0] if len(yt) > 1 else 1.0
        for v, y in zip(yt, f.y(np.array(yt), f.y_lo, f.y_hi).tolist()):
            out.append(f'<path d="M{f.left} {y:.1f}H{f.right}" stroke="#eee"/>')
            out.append(f'<text x="{f.left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">{_tick_label(v, ystep)}</text>')
    mid = (f.top + f.bottom) / 2
    if spec.y_title:
        out.append(
            f'<text transform="translate(16 {mid:.1f}) rotate(-90)" font-size="11" text-anchor="middle">{escape(spec.y_title)}</text>'
        )
    box = f"M{f.left} {f.top}V{f.bottom}H{f.right}"
    if spec.y2_title:
        box += f"V{f.top}"
        for v, y in zip((0, 25, 50, 75, 100), f.y(np.array([0.0, 25, 50, 75, 100]), 0, 105).tolist()):
            out.append(f'<text x="{f.right + 6}" y="{y + 4:.1f}" font-size="11">{v}</text>')
        x2 = f.right + 48
        out.append(
            f'<text transform="translate({x2} {mid:.1f}) rotate(90)" font-size="11" text-anchor="middle">{escape(spec.y2_title)}</text>'
        )
    out.append(f'<path d="{box}" fill="none" stroke="#999"/>')
    return out


def _traces(spec: ChartSpec, f: _Frame) -> list[str]:
    out = []
    for line, t, v in drawn_lines(spec, spec.y2_lines):
        d = _path(f.x(t), f.y(v, 0, 105), line.shape)
        if line.role == "weight" and d:
            # The weight's light fill down to 0 %, as the interactive chart's ``tozeroy``.
            out.append(f'<path d="{d}V{f.bottom}H{float(f.x(t[:1])[0]):.1f}Z" fill="rgb(138,138,138)" fill-opacity="0.07"/>')
        out.append(f'<path d="{d}" {_line_style(line, True)}/>')
    for line, t, v in drawn_lines(spec, spec.lines):
        out.append(f'<path d="{_path(f.x(t), f.y(v, f.y_lo, f.y_hi), line.shape)}" {_line_style(line, False)}/>')
    y = float(f.y(np.array([1.0]), 0, 1.06)[0])
    for kind, ms in markers_by_kind(spec.markers).items():
        symbol, color, _ = MARKERS[kind]
        xs = f.x(np.array([epoch_ms(m.time) for m in ms], dtype=np.int64)).tolist()
        out += [_symbol(symbol, x, y, 4.5, color) for x in xs if f.left <= x <= f.right]
    return out


def svg_data_uri(svg: bytes) -> str:
    """Return an SVG document as a ``data:`` URL for an <img> element."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode()
