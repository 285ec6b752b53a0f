"""Rendering the demo bundle and the large scenario's 24 h bundle.

Figures: HTML time and size; PDF time and size; the PDF time against (a) the naive path —
the same charts exported one by one with a fresh kaleido call each, plus WeasyPrint — and
(b) WeasyPrint alone on the same print HTML (the floor).  The large HTML should stay under
8 MB (charts are downsampled for drawing; the bundle keeps every sample).
"""

from __future__ import annotations

import datetime as dt
import shutil
import time
from pathlib import Path
from typing import Any

import kaleido

from bench.bench_collect import collect_large_24h
from evidence.bundle import read_bundle
from evidence.collect import CollectOptions, collect_rollout
from evidence.evaluate import evaluate_bundle
from evidence.model import CanaryRef
from evidence.render.charts import build_figure
from evidence.render.context import build_context
from evidence.render.html import render_html
from evidence.render.pdf import PDF_WIDTH, _browser_path, export_svgs, html_to_pdf, render_pdf_html
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


def measure(label: str, bundle_path: Path) -> dict[str, Any]:
    bundle = read_bundle(bundle_path)
    ev = evaluate_bundle(bundle)
    ctx = build_context(bundle, ev)
    env = environment()
    t_html, html = _timed(lambda: render_html(env, ctx))
    t_svgs, svgs = _timed(lambda: export_svgs(ctx["charts"]))
    print_html = render_pdf_html(env, ctx, svgs)
    t_weasy, pdf = _timed(lambda: html_to_pdf(print_html))
    _browser_path()

    def naive() -> None:
        out = {}
        for spec in ctx["charts"]:
            fig = build_figure(spec)
            out[spec.id] = kaleido.calc_fig_sync(
                fig, opts={"format": "svg", "width": PDF_WIDTH, "height": fig.layout.height or spec.height}
            )
        html_to_pdf(render_pdf_html(env, ctx, out))

    t_naive, _ = _timed(naive)
    t_pdf = t_svgs + t_weasy
    return {
        f"{label}.charts": len(ctx["charts"]),
        f"{label}.html_s": round(t_html, 3),
        f"{label}.html_mb": round(len(html.encode()) / 1e6, 2),
        f"{label}.pdf_s": round(t_pdf, 3),
        f"{label}.pdf_kb": round(len(pdf) / 1e3, 1),
        f"{label}.pdf_charts_one_session_s": round(t_svgs, 3),
        f"{label}.pdf_weasyprint_only_s": round(t_weasy, 3),
        f"{label}.pdf_naive_fresh_kaleido_per_chart_s": round(t_naive, 3),
        f"{label}.pdf_vs_naive_ratio": round(t_pdf / t_naive, 2),
        f"{label}.pdf_vs_weasyprint_floor_ratio": round(t_pdf / t_weasy, 2),
    }


def run(work: Path) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    # The demo rollout.
    demo = work / "render-demo"
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
    figures.update(measure("demo", path))
    # The large scenario, whole 24 h window.
    lpath = collect_large_24h(work, "render-large")
    figures.update(measure("large_24h", lpath))
    return figures
