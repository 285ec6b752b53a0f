"""`evidence render`: tested on what a person sees — parsed HTML, Chromium, PDF text and pages."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from evidence.collect import CollectOptions, collect_rollout
from evidence.model import CanaryRef
from evidence.sources.dump import DumpSource
from evidence.sources.prometheus import PrometheusSource
from fixtures.prom import PrometheusServer
from tests.faults.hostile import add_warning_events

from .conftest import ROOT, SMALL_SCENARIOS
from .test_collect import run

ARTIFACTS = Path(os.environ.get("EVIDENCE_TEST_ARTIFACTS", ROOT / "test-artifacts"))
HOSTILE = ['<script>alert("owned")</script>', '"><img src=x onerror=alert(1)>']
SECTIONS = [
    "header",
    "summary",
    "criteria",
    "flagger-checks",
    "traffic",
    "detection-lag",
    "blast-radius",
    "replay",
    "findings",
    "timeline",
    "settings",
    "policy",
    "provenance",
]


class Page(HTMLParser):
    """Collect ids, visible text, script bodies and every attribute of every element."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.text: list[str] = []
        self.scripts: list[str] = []
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._in_script = False
        self._by_id: dict[str, list[str]] = {}
        self._open: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append((tag, a))
        if a.get("id"):
            self.ids.add(str(a["id"]))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data
        else:
            self.text.append(data)

    @property
    def visible(self) -> str:
        return " ".join(" ".join(self.text).split())


def parse_html(path: Path) -> Page:
    p = Page()
    p.feed(path.read_text(encoding="utf-8"))
    return p


@pytest.fixture(scope="module")
def hostile_bundle(
    simulated: Callable[[str], Path],
    prometheus_for: Callable[[str], PrometheusServer],
    truth_of: Callable[[str], dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """The demo rollout, with hostile text in its events and log lines."""
    name = "rollback-error-rate"
    dump = tmp_path_factory.mktemp("hostile") / "dump"
    shutil.copytree(simulated(name) / "dump", dump)
    add_warning_events(dump, [f"Halt podinfo.shop advancement external check gate failed {t}" for t in HOSTILE], "hostile")
    truth = truth_of(name)
    now = dt.datetime.fromtimestamp(truth["snapshot_at"], dt.UTC)
    return collect_rollout(
        CanaryRef("shop", "podinfo"),
        DumpSource(dump),
        PrometheusSource(prometheus_for(name).url),
        CollectOptions(out=tmp_path_factory.mktemp("hostile-bundle")),
        clock=lambda: now,
    )


@pytest.fixture(scope="module")
def rendered(hostile_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("reports")
    res = run("render", str(hostile_bundle), "--format", "all", "--out", str(out))
    assert res.returncode == 0, res.stderr
    paths = [Path(line) for line in res.stdout.splitlines()]
    assert all(p.is_file() for p in paths) and len(paths) == 4
    return {p.name.split(".", 1)[1]: p for p in paths}


@pytest.fixture(scope="module")
def evaluation(hostile_bundle: Path) -> dict[str, Any]:
    res = run("evaluate", str(hostile_bundle), "--json")
    data: dict[str, Any] = json.loads(res.stdout)
    return data


def test_html_has_every_section_and_the_evaluations_numbers(rendered: dict[str, Path], evaluation: dict[str, Any]) -> None:
    page = parse_html(rendered["decision-record.html"])
    missing = [s for s in SECTIONS if s not in page.ids]
    assert not missing
    text = page.visible
    blast = evaluation["blast_radius"]
    assert f"{blast['canary_requests']:,}" in text and f"{blast['canary_errors']:,}" in text
    assert f"{blast['max_weight']} %" in text
    rollback = evaluation["flagger"]["rollback_at"][11:19]
    assert f"Rolled back by Flagger at {rollback}" in text
    lag = evaluation["detection_lag_seconds"]
    assert lag is not None
    assert f"detection lag {int(lag // 60)} min {round(lag % 60)} s" in text
    for c in evaluation["criteria"]:
        if c["first_breach_at"]:
            assert c["first_breach_at"][11:19] in text
    assert "Policy verdict: ABORT" in text
    assert evaluation["canary"] in text


def test_hostile_text_is_shown_as_text(rendered: dict[str, Path]) -> None:
    for name in ("decision-record.html", "postmortem.html"):
        page = parse_html(rendered[name])
        for hostile in HOSTILE:
            assert hostile in page.visible, name
        # No script element carries the hostile text (figure JSON holds it escaped as \u003c…).
        assert not any("<script>alert" in s or "<img src=x" in s for s in page.scripts)
        assert not any(tag == "img" and "onerror" in attrs for tag, attrs in page.tags)
        raw = rendered[name].read_text()
        assert '<script>alert("owned")' not in raw
    md = rendered["postmortem.md"].read_text()
    assert "<script>" not in md and "<img" not in md


def test_postmortem_has_the_sre_shape_with_marked_blanks(rendered: dict[str, Path]) -> None:
    md = rendered["postmortem.md"].read_text()
    for heading in (
        "## Summary",
        "## Impact",
        "## Detection",
        "## Trigger",
        "## Resolution",
        "## Timeline (UTC)",
        "## Root cause",
        "## Lessons learned",
        "## Action items",
    ):
        assert heading in md
    assert md.count("**TO BE WRITTEN**") >= 3
    html = parse_html(rendered["postmortem.html"])
    assert "postmortem" in html.ids and "summary" in html.ids
    assert "To be written" in html.visible


def test_record_is_small_and_the_postmortem_carries_no_second_plotly(rendered: dict[str, Path]) -> None:
    record = rendered["decision-record.html"].read_bytes()
    assert len(record) <= 1_500_000, f"the demo record is {len(record) / 1e6:.2f} MB (goal 1.5 MB)"
    assert record.count(b"* plotly.js (basic - minified) v") == 1
    postmortem = parse_html(rendered["postmortem.html"])
    charts = [a for tag, a in parse_html(rendered["decision-record.html"]).tags if tag == "div" and "data-chart" in a]
    images = [a for tag, a in postmortem.tags if tag == "img" and str(a.get("src")).startswith("data:image/svg+xml;base64,")]
    # The appendix shows every chart of the record, as images: no script, no plotly.js.
    assert postmortem.scripts == [] and len(images) == len(charts)
    assert rendered["postmortem.html"].stat().st_size < len(record) / 4


def test_html_opens_offline_in_chromium_and_every_chart_draws(rendered: dict[str, Path]) -> None:
    from playwright.sync_api import sync_playwright

    path = rendered["decision-record.html"]
    page_html = parse_html(path)
    charts = [a.get("id") for tag, a in page_html.tags if tag == "div" and "data-chart" in a]
    assert len(charts) >= 5
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            outside: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))

            def guard(route: Any) -> None:
                if route.request.url.startswith("file://"):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", guard)
            page.goto(path.as_uri())
            page.wait_for_function(
                f"document.querySelectorAll('.js-plotly-plot .main-svg').length >= {len(charts)}", timeout=20000
            )
            drawn = page.evaluate(
                "Array.from(document.querySelectorAll('[data-chart]')).map(e => e.querySelectorAll('.main-svg').length)"
            )
            traces = page.evaluate("Array.from(document.querySelectorAll('[data-chart]')).map(e => (e.data || []).length)")
            page.screenshot(path=str(ARTIFACTS / "decision-record.png"), full_page=True)
            # The postmortem's copy of the record draws its charts as SVG images.
            page.goto(rendered["postmortem.html"].as_uri())
            images = page.evaluate("Array.from(document.images).map(i => i.complete ? i.naturalWidth : 0)")
        finally:
            browser.close()
    assert all(n > 0 for n in drawn), drawn
    assert all(n > 0 for n in traces), traces
    assert len(images) == len(charts) and all(w > 0 for w in images), images
    assert errors == []
    assert outside == []
    assert (ARTIFACTS / "decision-record.png").stat().st_size > 50_000


def test_pdf_text_pages_and_a_png_of_page_one(rendered: dict[str, Path], evaluation: dict[str, Any]) -> None:
    from pypdf import PdfReader

    pdf = rendered["decision-record.pdf"]
    reader = PdfReader(str(pdf))
    assert len(reader.pages) >= 4
    text = " ".join(" ".join((p.extract_text() or "").split()) for p in reader.pages)
    assert "Decision summary" in text and "Abort criteria" in text
    assert "Rolled back by Flagger at" in text and "Policy verdict: ABORT" in text
    for c in evaluation["criteria"]:
        assert c["name"] in text
    assert f"{evaluation['blast_radius']['canary_requests']:,}" in text
    first = " ".join((reader.pages[0].extract_text() or "").split())
    assert "page 1 of" in first and evaluation["canary"] in first
    assert any(re.search(r"bundle [0-9a-f]{32}", " ".join((p.extract_text() or "").split())) for p in reader.pages)
    fonts = {
        str(f["/BaseFont"])
        for p in reader.pages
        for f in (p["/Resources"].get("/Font") or {}).values()
        if "/BaseFont" in f.get_object()
    }  # type: ignore[union-attr]
    assert any("DejaVu" in f for f in fonts), fonts
    ARTIFACTS.mkdir(exist_ok=True)
    subprocess.run(
        ["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "1", str(pdf), str(ARTIFACTS / "decision-record-page")], check=True
    )
    pngs = list(ARTIFACTS.glob("decision-record-page*.png"))
    assert pngs and pngs[0].stat().st_size > 10_000


@pytest.mark.parametrize("name", SMALL_SCENARIOS)
def test_every_scenario_renders(name: str, bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    res = run("render", str(bundle_for(name)), "--format", "all", "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr
    paths = [Path(line) for line in res.stdout.splitlines()]
    assert len(paths) == 4
    page = parse_html(next(p for p in paths if p.name.endswith(".decision-record.html")))
    assert not [s for s in SECTIONS if s not in page.ids]
    figures = [json.loads(s) for s in page.scripts if s.lstrip().startswith("{")]
    charts = [t for t, a in page.tags if t == "div" and "data-chart" in a]
    assert len(figures) == len(charts) >= 5
    if name in ("never-ready", "no-traffic"):
        # Charts with nothing to draw say so rather than vanish.
        notes = [a["text"] for f in figures for a in f["layout"].get("annotations", [])]
        assert any(n.startswith("no data") for n in notes), notes


def test_template_dir_overrides_by_file_name(bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    custom = tmp_path / "templates"
    custom.mkdir()
    css = (ROOT / "report_templates" / "report.css").read_text()
    (custom / "report.css").write_text(css + "\n/* house style: ACME-OPS */\n")
    res = run("render", str(bundle_for("healthy-promotion")), "--out", str(tmp_path / "out"), "--template-dir", str(custom))
    assert res.returncode == 0, res.stderr
    assert "house style: ACME-OPS" in Path(res.stdout.strip()).read_text()
    res = run("render", str(bundle_for("healthy-promotion")), "--template-dir", str(tmp_path / "nope"))
    assert res.returncode == 1 and "--template-dir" in res.stderr


def test_render_never_writes_into_the_bundle(bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    bundle = bundle_for("healthy-promotion")
    before = sorted(p.name for p in bundle.iterdir())
    res = run("render", str(bundle), "--out", str(tmp_path))
    assert res.returncode == 0
    assert sorted(p.name for p in bundle.iterdir()) == before
    assert run("verify", str(bundle)).returncode == 0
