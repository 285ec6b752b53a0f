"""Self-contained HTML: plotly.js and CSS inline, no request to any network host.

plotly.js is the basic bundle vendored under ``vendor/`` (``scripts/vendor-plotly.sh``
re-fetches it at its pinned version): it holds the scatter traces every chart of a record is
made of, at a quarter of the full library's size, and it is read from the package — never
fetched at run time.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from evidence.errors import RenderError
from evidence.render.charts import build_figure, figure_json
from evidence.render.svgchart import svg_data_uri
from evidence.render.templates import render_template

VENDOR = Path(__file__).resolve().parent / "vendor"
PLOTLY_META = VENDOR / "plotly-basic.json"


def plotly_bundle() -> dict[str, Any]:
    """Return the vendored plotly.js bundle's record: package, version, file, sha256, licence."""
    try:
        meta: dict[str, Any] = json.loads(PLOTLY_META.read_text())
    except (OSError, ValueError) as exc:
        raise RenderError(f"{PLOTLY_META}: unreadable ({exc}); reinstall evidence") from None
    return meta


@cache
def plotly_js() -> str:
    """Return the vendored plotly.js, safe to inline in a <script> element."""
    path = VENDOR / str(plotly_bundle()["file"])
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RenderError(f"{path}: unreadable ({exc}); reinstall evidence or run scripts/vendor-plotly.sh") from None
    return text.replace("</script", "<\\/script")


def render_html(env: Any, context: dict[str, Any], template: str = "decision_record.html.j2") -> str:
    """Return the interactive HTML of a report."""
    figures = {spec.id: figure_json(build_figure(spec)) for spec in context["charts"]}
    return render_template(env, template, dict(context, mode="html", figures=figures, plotly_js=plotly_js()))


def render_static_html(env: Any, context: dict[str, Any], svgs: dict[str, bytes], template: str = "postmortem.html.j2") -> str:
    """Return a report's HTML with its charts as embedded SVG images: no script, no plotly.js."""
    figures = {cid: svg_data_uri(svg) for cid, svg in svgs.items()}
    return render_template(env, template, dict(context, mode="static", figures=figures, plotly_js=""))
