"""Unlucky and hostile command-line input: endless files, odd output folders, impossible windows, templates.

Each case asserts the documented exit code (2 usage, 1 error) and a message that names the input.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from fixtures.prom import PrometheusServer
from tests.faults.common import bundle_path, collect_args, run
from tests.faults.hostile import copy_dump

SCENARIO = "rollback-error-rate"


def test_dev_zero_as_policy_file_is_refused_at_once(bundle_for: Callable[[str], Path]) -> None:
    t0 = time.monotonic()
    res = run("evaluate", str(bundle_for(SCENARIO)), "--policy", "/dev/zero")
    assert res.returncode in (1, 2) and "/dev/zero" in res.stderr and "regular file" in res.stderr, res.stderr
    assert time.monotonic() - t0 < 20


def test_an_oversized_policy_file_is_refused_naming_the_limit(bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    big = tmp_path / "policy.yaml"
    big.write_text("# padding\n" * 200_000)  # 2 MB of comments
    res = run("evaluate", str(bundle_for(SCENARIO)), "--policy", str(big))
    assert res.returncode in (1, 2) and "policy.yaml" in res.stderr and "larger than" in res.stderr, res.stderr


def test_dev_zero_as_token_file_is_refused_at_once(simulated: Callable[[str], Path], tmp_path: Path) -> None:
    res = run(
        *collect_args(
            simulated(SCENARIO) / "dump", "http://127.0.0.1:9", tmp_path / "out", "--prometheus-token-file", "/dev/zero"
        )
    )
    assert res.returncode in (1, 2) and "/dev/zero" in res.stderr, res.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


@pytest.mark.parametrize("kind", ["a-file", "unwritable", "inside-a-bundle"])
def test_a_bad_out_for_collect_is_a_clear_error(
    kind: str,
    simulated: Callable[[str], Path],
    prometheus_for: Callable[[str], PrometheusServer],
    bundle_for: Callable[[str], Path],
    tmp_path: Path,
) -> None:
    before = sorted(p.name for p in bundle_for(SCENARIO).iterdir())
    if kind == "a-file":
        out = tmp_path / "out"
        out.write_text("not a folder")
    elif kind == "unwritable":
        out = Path("/proc/evidence-bundles")  # even root cannot create folders here
    else:
        out = bundle_for(SCENARIO)
    res = run(*collect_args(simulated(SCENARIO) / "dump", prometheus_for(SCENARIO).url, out))
    assert res.returncode in (1, 2), res.stderr
    assert "--out" in res.stderr or str(out) in res.stderr, res.stderr
    assert sorted(p.name for p in bundle_for(SCENARIO).iterdir()) == before


@pytest.mark.parametrize("kind", ["a-file", "inside-the-bundle"])
def test_a_bad_out_for_render_is_a_clear_error(kind: str, bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    bundle = bundle_for(SCENARIO)
    before = sorted(p.name for p in bundle.iterdir())
    if kind == "a-file":
        out = tmp_path / "reports"
        out.write_text("not a folder")
    else:
        out = bundle / "reports"
    res = run("render", str(bundle), "--out", str(out))
    assert res.returncode in (1, 2) and "--out" in res.stderr, res.stderr
    assert sorted(p.name for p in bundle.iterdir()) == before


def test_render_dot_inside_a_copied_bundle_writes_visible_named_reports(
    bundle_for: Callable[[str], Path], tmp_path: Path
) -> None:
    import shutil

    b = tmp_path / bundle_for(SCENARIO).name
    shutil.copytree(bundle_for(SCENARIO), b)
    reports = tmp_path / "reports"
    res = run("render", ".", "--format", "html", "--out", str(reports), env={"PWD": str(b)}, cwd=b)
    assert res.returncode == 0, res.stderr
    names = [p.name for p in reports.iterdir()]
    assert names and all(n.startswith(b.name) for n in names), names


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--start", "9999-01-01T00:00:00Z", "--end", "9999-01-01T01:00:00Z"], "--start"),
        (["--start", "0001-01-01T00:00:00Z", "--end", "0001-01-01T01:00:00Z"], "--start"),
        (["--start", "2999-06-01T00:00:00Z", "--end", "2999-06-01T01:00:00Z"], "future"),
        (["--start", "2026-11-20T11:00:00Z", "--end", "2026-11-20T10:00:00Z"], "--end"),
        (["--start", "yesterday"], "--start"),
        (["--timeout", "0"], "--timeout"),
        (["--timeout", "-3"], "--timeout"),
        (["--concurrency", "0"], "--concurrency"),
        (["--lead", "-5m"], "--lead"),
    ],
    ids=[
        "year-9999",
        "year-0001",
        "future-window",
        "end-before-start",
        "not-a-time",
        "timeout-0",
        "timeout-negative",
        "concurrency-0",
        "lead-negative",
    ],
)
def test_an_impossible_option_is_a_usage_error(
    args: list[str], said: str, simulated: Callable[[str], Path], tmp_path: Path
) -> None:
    res = run(*collect_args(simulated(SCENARIO) / "dump", "http://127.0.0.1:9", tmp_path / "out", *args))
    assert res.returncode == 2, (res.returncode, res.stderr)
    assert said in res.stderr, res.stderr


def test_a_broken_canary_json_names_the_file_and_the_parse_error(simulated: Callable[[str], Path], tmp_path: Path) -> None:
    dump = copy_dump(simulated(SCENARIO) / "dump", tmp_path / "dump")
    text = (dump / "canary.json").read_text()
    (dump / "canary.json").write_text(text[: len(text) // 2])
    res = run(*collect_args(dump, "http://127.0.0.1:9", tmp_path / "out"))
    assert res.returncode == 1, res.stderr
    assert "canary.json" in res.stderr and ("line" in res.stderr or "parse" in res.stderr), res.stderr


MALFORMED = {
    "threshold-word": ("analysis", "threshold", "three"),
    "interval-number": ("analysis", "interval", 60),
    "interval-garbage": ("analysis", "interval", "every minute"),
    "step-weight-string": ("analysis", "stepWeight", "ten"),
    "max-weight-negative": ("analysis", "maxWeight", -50),
    "step-weights-mixed": ("analysis", "stepWeights", [10, "x", None]),
    "metrics-not-a-list": ("analysis", "metrics", {"name": "request-success-rate"}),
    "metric-threshold-range-string": ("analysis", "metrics", [{"name": "request-success-rate", "thresholdRange": "99"}]),
    "webhooks-a-string": ("analysis", "webhooks", "http://gate"),
    "analysis-null": ("spec", "analysis", None),
    "service-port-name": ("service", "port", "http"),
    "target-ref-missing": ("spec", "targetRef", None),
    "progress-deadline-string": ("spec", "progressDeadlineSeconds", "ten minutes"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_a_malformed_canary_field_is_a_warning_or_a_clear_error_through_collect_and_render(
    case: str, simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], tmp_path: Path
) -> None:
    where, key, value = MALFORMED[case]
    dump = copy_dump(simulated(SCENARIO) / "dump", tmp_path / "dump")
    canary = json.loads((dump / "canary.json").read_text())
    node = {"spec": canary["spec"], "analysis": canary["spec"]["analysis"], "service": canary["spec"]["service"]}[where]
    if value is None:
        node.pop(key, None)
    else:
        node[key] = value
    (dump / "canary.json").write_text(json.dumps(canary))
    res = run(*collect_args(dump, prometheus_for(SCENARIO).url, tmp_path / "out", "--allow-partial"))
    if res.returncode != 0:
        assert res.returncode == 1 and "canary" in res.stderr.lower(), res.stderr
        return
    said = [line for line in res.stderr.splitlines() if line.startswith("Warning: ") and key.lower() in line.lower()]
    assert said, res.stderr  # what was odd is said, naming the field, not silently dropped
    bundle = bundle_path(res)
    for cmd in (["evaluate"], ["show"], ["render", "--format", "html", "--out", str(tmp_path / "r")]):
        r = run(*cmd, str(bundle))
        assert r.returncode in (0, 3), (cmd, r.stderr[-1500:])


def test_a_template_cannot_reach_python(bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    custom = tmp_path / "templates"
    custom.mkdir()
    (custom / "decision_record.html.j2").write_text(
        "{{ cycler.__init__.__globals__.os.popen('touch " + str(marker) + "').read() }}"
        "{{ ''.__class__.__mro__[1].__subclasses__() }}"
    )
    res = run(
        "render", str(bundle_for(SCENARIO)), "--format", "html", "--out", str(tmp_path / "r"), "--template-dir", str(custom)
    )
    assert not marker.exists()
    assert res.returncode == 1 and "decision_record.html.j2" in res.stderr and "unsafe" in res.stderr.lower(), res.stderr


def test_a_template_that_raises_is_named_with_its_line(bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    custom = tmp_path / "templates"
    custom.mkdir()
    (custom / "decision_record.html.j2").write_text("<p>ok</p>\n<p>{{ no_such_value.field }}</p>\n")
    res = run(
        "render", str(bundle_for(SCENARIO)), "--format", "html", "--out", str(tmp_path / "r"), "--template-dir", str(custom)
    )
    assert res.returncode == 1 and "decision_record.html.j2" in res.stderr and "line 2" in res.stderr, res.stderr
    assert not (tmp_path / "r").exists() or not list((tmp_path / "r").iterdir())


def test_a_syntax_error_in_a_template_is_named(bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    custom = tmp_path / "templates"
    custom.mkdir()
    (custom / "decision_record.html.j2").write_text("{% for x in %}\n")
    res = run(
        "render", str(bundle_for(SCENARIO)), "--format", "html", "--out", str(tmp_path / "r"), "--template-dir", str(custom)
    )
    assert res.returncode == 1 and "decision_record.html.j2" in res.stderr, res.stderr
    assert os.path.exists(bundle_for(SCENARIO))
