"""Chart data and drawing: time-bucketed downsampling, bounded points, the PDF's SVG charts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from evidence.analysis.counters import CounterTable
from evidence.bundle import read_bundle
from evidence.errors import BundleError
from evidence.evaluate import evaluate_bundle
from evidence.render.charts import MAX_POINTS, ChartSpec, Line, Marker, build_figure, downsample, figure_json
from evidence.render.context import build_context
from evidence.render.svgchart import chart_svg, nice_ticks, time_ticks

T0 = 1_763_632_800_000  # 2025-11-20T10:00:00Z in epoch ms
SVG = "{http://www.w3.org/2000/svg}"


def _gappy(seconds: int = 3 * 3600, gap: tuple[int, int] = (3600, 5400)) -> tuple[np.ndarray, np.ndarray]:
    """A 1 s series over ``seconds`` with no sample inside ``gap`` (seconds from the start) and one spike."""
    s = np.arange(seconds)
    s = s[(s < gap[0]) | (s >= gap[1])]
    values = np.sin(s / 300.0)
    values[s == 6000] = 50.0  # a one-sample spike after the gap
    return T0 + s * 1000, values


def test_downsampling_buckets_by_time_and_keeps_each_buckets_extremes() -> None:
    t, v = _gappy()
    span = (int(t[0]), int(t[-1]))
    dt_, dv = downsample(t, v, limit=300, span=span)
    assert len(dt_) <= 300
    assert np.all(np.diff(dt_) > 0) and np.isin(dt_, t).all()
    assert 50.0 in dv  # the spike survives
    # Every time bucket that holds samples keeps its own lowest and highest one: resolution
    # is spread evenly over time, and no bucket takes points from both sides of the gap.
    width = -(-(span[1] - span[0] + 1) // 100)
    bucket = (t - span[0]) // width
    kept = (dt_ - span[0]) // width
    for b in np.unique(bucket):
        inside = v[bucket == b]
        got = dv[kept == b]
        assert got.min() == inside.min() and got.max() == inside.max()
        assert len(got) <= 3
    before, after = dt_[dt_ < T0 + 3600_000], dt_[dt_ >= T0 + 5400_000]
    assert len(before) and len(after) and len(before) + len(after) == len(dt_)


def test_downsampling_keeps_a_break_where_values_are_missing() -> None:
    t = T0 + np.arange(10_000) * 1000
    v = np.ones(10_000)
    v[5_000:5_100] = np.nan
    _, dv = downsample(t, v, limit=150)
    assert np.isnan(dv).any() and np.isfinite(dv).sum() >= 2
    short_t, short_v = downsample(t[:100], v[:100], limit=150)
    assert len(short_t) == 100 and np.array_equal(short_v, v[:100])


def _spec(n: int, label: str = "canary 5xx share") -> ChartSpec:
    t = T0 + np.arange(n, dtype=np.int64) * 1000
    start = dt.datetime.fromtimestamp(T0 / 1000, dt.UTC)
    end = start + dt.timedelta(seconds=n)
    return ChartSpec(
        "c",
        "title",
        "5xx share (%)",
        (Line(label, "canary", t, np.random.default_rng(1).random(n)), Line("abort", "threshold", [start, end], [0.5, 0.5])),
        y2_title="weight (%)",
        y2_lines=(Line("weight", "weight", [start, end], [0, 30], shape="hv"),),
        breach_spans=((start + dt.timedelta(seconds=10), start + dt.timedelta(seconds=90)),),
        markers=(Marker(start + dt.timedelta(seconds=5), "halt", 'Halt <b>"x"</b>'), Marker(start, "weird", "other")),
        x_range=(start, end),
    )


def test_points_per_chart_are_bounded_whatever_the_window() -> None:
    small, large = build_figure(_spec(1_000)), build_figure(_spec(600_000))
    assert max(len(tr["x"]) for tr in large["data"]) <= MAX_POINTS
    assert len(small["data"][0]["x"]) == 1_000
    assert [tr.get("name") for tr in small["data"]] == [tr.get("name") for tr in large["data"]]
    assert {tr["type"] for tr in large["data"]} == {"scatter"}  # what the vendored basic plotly.js draws


def test_figure_json_is_safe_inside_a_script_element() -> None:
    text = figure_json(build_figure(_spec(10, label="</script><script>alert(1)</script>")))
    assert "</script" not in text and "<" not in text
    assert "NaN" not in text


def test_svg_chart_draws_every_line_marker_and_axis_and_escapes_text() -> None:
    svg = chart_svg(_spec(50_000, label="<canary & co>"), width=1000)
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("width") == "1000"
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert "<canary & co>" in texts and "5xx share (%)" in texts and "weight (%)" in texts
    assert {"halt", "event", "breached"} <= set(texts)
    assert any(t.count(":") == 1 for t in texts)  # HH:MM time ticks
    paths = [p.get("d") or "" for p in root.iter(f"{SVG}path")]
    longest = max(paths, key=len)
    assert longest.count("L") <= MAX_POINTS  # the 50,000 samples are downsampled for drawing
    assert len(root.findall(f"{SVG}polygon")) >= 1  # the marker and legend symbols


def test_svg_chart_without_data_says_so() -> None:
    start = dt.datetime.fromtimestamp(T0 / 1000, dt.UTC)
    spec = ChartSpec("n", "t", "", (), x_range=(start, start + dt.timedelta(hours=1)), no_data="the canary took no traffic")
    root = ET.fromstring(chart_svg(spec))
    assert "no data — the canary took no traffic" in [t.text for t in root.iter(f"{SVG}text")]
    assert int(root.get("height") or 0) <= 220


def test_axis_ticks_are_round() -> None:
    assert nice_ticks(0.13, 4.2) == [1.0, 2.0, 3.0, 4.0]
    assert nice_ticks(93.9, 100.2) == [94.0, 96.0, 98.0, 100.0]
    ticks, step = time_ticks(T0 + 7_000, T0 + 20 * 60_000, 8)
    assert step == 5 * 60_000 and ticks == [T0 + 5 * 60_000, T0 + 10 * 60_000, T0 + 15 * 60_000, T0 + 20 * 60_000]
    _, week = time_ticks(T0, T0 + 7 * 86_400_000, 8)
    assert week == 86_400_000


def test_the_context_draws_from_the_evaluations_prepared_counters(bundle_for: Callable[[str], Path]) -> None:
    bundle = read_bundle(bundle_for("rollback-error-rate"))
    ev = evaluate_bundle(bundle)
    assert isinstance(ev.counters, CounterTable)  # prepared once, by the evaluation
    charts = [figure_json(build_figure(s)) for s in build_context(bundle, ev)["charts"]]
    assert len(charts) >= 5
    # Render never prepares them again (issue 9): an evaluation without them is refused, naming the fix.
    with pytest.raises(BundleError, match="evaluate the bundle again"):
        build_context(bundle, dataclasses.replace(ev, counters=None))
