"""PDF through WeasyPrint, with every chart drawn once as vector SVG in Python.

The charts used to be exported by kaleido through Chromium: starting the browser took seconds
and each chart a fraction of one, more than WeasyPrint's whole layout.  ``svgchart`` draws
the same downsampled lines as plain SVG paths in milliseconds, with no browser; the print
HTML carries no plotly.js or figure JSON.
"""

from __future__ import annotations

from typing import Any

from evidence.errors import RenderError
from evidence.render.charts import ChartSpec
from evidence.render.svgchart import chart_svg, svg_data_uri
from evidence.render.templates import render_template

PDF_WIDTH = 1000  # CSS px of the exported charts; A4 minus margins scales them down


def export_svgs(specs: list[ChartSpec]) -> dict[str, bytes]:
    """Return each chart as SVG."""
    return {spec.id: chart_svg(spec, PDF_WIDTH) for spec in specs}


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
