"""Rendering the demo bundle and the large scenario's 24 h bundle.

Figures: HTML time and size (goal ≤ 1.5 MB on the demo, ≤ 2 MB for the 24 h record), the
postmortem HTML's size, the vendored plotly.js' size, points drawn; PDF time and size; the PDF
time against (a) the naive path — the same charts exported one by one with a fresh kaleido
call each (Chromium), plus WeasyPrint (goal: ≥ 5× faster) — and (b) WeasyPrint alone on the
same print HTML (the floor; goal ≤ 2×).  ``pdf_charts_one_session_s`` keeps its name across
versions: it is the time to draw every chart for the PDF (now SVG drawn in Python).  The
context build is timed apart with and without the evaluation's prepared counters (render used
to prepare them a second time).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from pathlib import Path
from typing import Any

import kaleido

from bench.bench_collect import collect_large_24h
from evidence.analysis.counters import prepare_counters
from evidence.bundle import read_bundle
from evidence.collect import CollectOptions, collect_rollout
from evidence.evaluate import evaluate_bundle
from evidence.model import CanaryRef
from evidence.render.charts import build_figure
from evidence.render.context import build_context
from evidence.render.html import plotly_js, render_html, render_static_html
from evidence.render.pdf import PDF_WIDTH, export_svgs, html_to_pdf, render_pdf_html
from evidence.render.templates import environment
from evidence.sources.dump import DumpSource
from evidence.sources.prometheus import PrometheusSource
from fixtures.prom import serve_scenario_data
from fixtures.scenario import load_scenario
from fixtures.simulator import write_outputs

ROOT = Path(__file__).resolve().parent.parent


def _timed(fn: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _browser_path() -> None:
    """Point kaleido (the naive baseline only) at Debian's Chromium when no browser is configured."""
    if not os.environ.get("BROWSER_PATH"):
        for name in ("chromium", "chromium-browser", "google-chrome"):
            path = shutil.which(name)
            if path:
                os.environ["BROWSER_PATH"] = path
                return


def measure(label: str, bundle_path: Path) -> dict[str, Any]:
    bundle = read_bundle(bundle_path)
    ev = evaluate_bundle(bundle)
    t_ctx, ctx = _timed(lambda: build_context(bundle, ev))
    t_counters, _ = _timed(lambda: prepare_counters(bundle.table("series"), bundle.table("samples")))
    env = environment()
    render_html(env, ctx)  # warm the template cache and the vendored plotly.js read
    t_html, html = _timed(lambda: render_html(env, ctx))
    figures = [build_figure(spec) for spec in ctx["charts"]]
    points = [sum(len(t.get("x") or []) for t in f["data"]) for f in figures]
    per_line = max(len(t.get("x") or []) for f in figures for t in f["data"])
    t_svgs, svgs = _timed(lambda: export_svgs(ctx["charts"]))
    postmortem = render_static_html(env, ctx, svgs)
    print_html = render_pdf_html(env, ctx, svgs)
    html_to_pdf(print_html)  # warm fontconfig and WeasyPrint's caches for both contenders alike
    t_weasy, pdf = _timed(lambda: html_to_pdf(print_html))
    _browser_path()

    def naive() -> None:
        out = {}
        for spec, fig in zip(ctx["charts"], figures):
            out[spec.id] = kaleido.calc_fig_sync(
                fig, opts={"format": "svg", "width": PDF_WIDTH, "height": fig["layout"].get("height") or spec.height}
            )
        html_to_pdf(render_pdf_html(env, ctx, out))

    t_naive, _ = _timed(naive)
    t_pdf = t_svgs + t_weasy
    return {
        f"{label}.charts": len(ctx["charts"]),
        f"{label}.chart_points_max": max(points),
        f"{label}.chart_points_total": sum(points),
        f"{label}.chart_points_max_per_line": per_line,
        f"{label}.context_s": round(t_ctx, 3),
        f"{label}.context_saved_counter_preparation_s": round(t_counters, 3),
        f"{label}.html_s": round(t_html, 3),
        f"{label}.html_mb": round(len(html.encode()) / 1e6, 2),
        f"{label}.postmortem_html_mb": round(len(postmortem.encode()) / 1e6, 2),
        f"{label}.plotly_js_mb": round(len(plotly_js().encode()) / 1e6, 2),
        f"{label}.pdf_s": round(t_pdf, 3),
        f"{label}.pdf_kb": round(len(pdf) / 1e3, 1),
        f"{label}.pdf_charts_one_session_s": round(t_svgs, 3),
        f"{label}.pdf_weasyprint_only_s": round(t_weasy, 3),
        f"{label}.pdf_naive_fresh_kaleido_per_chart_s": round(t_naive, 3),
        f"{label}.pdf_vs_naive_ratio": round(t_pdf / t_naive, 2),
        f"{label}.pdf_naive_speedup": round(t_naive / t_pdf, 1),
        f"{label}.pdf_vs_weasyprint_floor_ratio": round(t_pdf / t_weasy, 2),
    }


def collect_demo(work: Path, name: str = "render-demo") -> Path:
    """Simulate the demo rollout, collect it into ``work/name`` (replaced) and return the bundle."""
    demo = work / name
    shutil.rmtree(demo, ignore_errors=True)
    sc = load_scenario(ROOT / "fixtures" / "scenarios" / "rollback-error-rate.yaml")
    truth = write_outputs(sc, demo / "sim")
    now = dt.datetime.fromtimestamp(truth["snapshot_at"], dt.UTC)
    server = serve_scenario_data(demo / "sim", demo / "prom")
    try:
        path = collect_rollout(
            CanaryRef.parse(truth["canary"]),
            DumpSource(demo / "sim" / "dump"),
            PrometheusSource(server.url),
            CollectOptions(out=demo / "b"),
            clock=lambda: now,
        )
    finally:
        server.stop()
    return path


def long_windows() -> dict[str, Any]:
    """Drawing one chart of a 1 h, 24 h and 168 h window at one sample a second: time and points drawn.

    The points drawn stay bounded (``MAX_POINTS`` a line) whatever the window; the time grows
    with the samples only through one sort.  The baseline is the 1 h chart.
    """
    import numpy as np

    from evidence.render.charts import ChartSpec, Line
    from evidence.render.svgchart import chart_svg

    out: dict[str, Any] = {}
    base = 0.0
    for hours in (1, 24, 168):
        n = hours * 3600
        t = 1_763_632_800_000 + np.arange(n, dtype=np.int64) * 1000
        v = np.random.default_rng(hours).random(n)
        start = dt.datetime.fromtimestamp(int(t[0]) / 1000, dt.UTC)
        spec = ChartSpec(
            "c",
            "t",
            "y",
            (Line("a", "canary", t, v), Line("b", "primary", t, v / 2)),
            x_range=(start, start + dt.timedelta(hours=hours)),
        )
        t_draw, fig = _timed(lambda spec=spec: (build_figure(spec), chart_svg(spec)))
        base = base or t_draw
        out[f"long_window.{hours}h.samples_per_line"] = n
        out[f"long_window.{hours}h.points_drawn_per_line"] = max(len(tr["x"]) for tr in fig[0]["data"])
        out[f"long_window.{hours}h.draw_s"] = round(t_draw, 3)
        out[f"long_window.{hours}h.draw_vs_1h_ratio"] = round(t_draw / base, 2)
    return out


def run(work: Path) -> dict[str, Any]:
    figures: dict[str, Any] = long_windows()
    figures.update(measure("demo", collect_demo(work)))
    # The large scenario, whole 24 h window.
    lpath = collect_large_24h(work, "render-large")
    figures.update(measure("large_24h", lpath))
    return figures
