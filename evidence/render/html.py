"""Self-contained HTML: plotly.js and CSS inline, no request to any network host."""

from __future__ import annotations

from typing import Any

from evidence.render.charts import build_figure, figure_json
from evidence.render.templates import render_template


def plotly_js() -> str:
    """Return plotly.js, safe to inline in a <script> element."""
    from plotly.offline import get_plotlyjs

    return str(get_plotlyjs()).replace("</script", "<\\/script")


def render_html(env: Any, context: dict[str, Any], template: str = "decision_record.html.j2") -> str:
    """Return the interactive HTML of a report."""
    figures = {spec.id: figure_json(build_figure(spec)) for spec in context["charts"]}
    return render_template(env, template, dict(context, mode="html", figures=figures, plotly_js=plotly_js()))
