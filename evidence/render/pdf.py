"""PDF through WeasyPrint, with every chart exported once as vector SVG by kaleido.

All charts of a report go through one kaleido (Chromium) session: starting Chromium costs
about two seconds, so a session per chart would dominate the time.
"""

from __future__ import annotations

import asyncio
import base64
import os
import shutil
from typing import Any

from evidence.errors import RenderError
from evidence.render.charts import ChartSpec, build_figure
from evidence.render.templates import render_template

PDF_WIDTH = 1000  # CSS px of the exported charts; A4 minus margins scales them down


def _browser_path() -> None:
    """Point kaleido at Debian's Chromium when no browser is configured."""
    if not os.environ.get("BROWSER_PATH"):
        for name in ("chromium", "chromium-browser", "google-chrome"):
            path = shutil.which(name)
            if path:
                os.environ["BROWSER_PATH"] = path
                return


def export_svgs(specs: list[ChartSpec]) -> dict[str, bytes]:
    """Return each chart as SVG, all in one kaleido session."""
    import kaleido

    _browser_path()
    figs = [(spec.id, build_figure(spec), spec) for spec in specs]

    async def run() -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        async with kaleido.Kaleido(n=1) as k:
            for cid, fig, spec in figs:
                height = fig.layout.height or spec.height
                out[cid] = await k.calc_fig(fig, opts={"format": "svg", "width": PDF_WIDTH, "height": height})
        return out

    try:
        return asyncio.run(run())
    except (OSError, RuntimeError, ValueError) as exc:
        raise RenderError(
            f"exporting charts for the PDF failed ({type(exc).__name__}: {exc}); kaleido needs Chromium: "
            "install Debian's chromium package or set BROWSER_PATH"
        ) from None


def svg_data_uri(svg: bytes) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode()


def render_pdf_html(env: Any, context: dict[str, Any], svgs: dict[str, bytes], template: str = "decision_record.html.j2") -> str:
    """Return the print layout's HTML with the charts as embedded SVG images."""
    figures = {cid: svg_data_uri(svg) for cid, svg in svgs.items()}
    return render_template(env, template, dict(context, mode="pdf", figures=figures, plotly_js=""))


def html_to_pdf(html: str, pdf_variant: str | None = None, attachments: dict[str, bytes] | None = None) -> bytes:
    """Return the PDF of a print-layout HTML; only data: URLs may be fetched (no network).

    ``pdf_variant`` is WeasyPrint's (e.g. ``pdf/a-3b``); ``attachments`` (name -> bytes) become
    embedded files, as PDF/A-3 allows.
    """
    from weasyprint import HTML, Attachment
    from weasyprint.urls import FatalURLFetchingError, URLFetcher

    fetcher = URLFetcher(allowed_protocols=["data"], fail_on_errors=True)
    embedded = [Attachment(string=data, name=name, relationship="Source") for name, data in (attachments or {}).items()]
    try:
        pdf = HTML(string=html, url_fetcher=fetcher).write_pdf(pdf_variant=pdf_variant, attachments=embedded or None)
    except FatalURLFetchingError as exc:
        raise RenderError(
            f"the print layout refers to something outside the report ({exc}); reports must not reach the network"
        ) from None
    assert isinstance(pdf, bytes)
    return pdf
