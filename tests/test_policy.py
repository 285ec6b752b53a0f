"""The abort policy: defaults, overrides, custom criteria and every error message."""

from __future__ import annotations

from pathlib import Path

import pytest

from evidence.errors import InputError, PolicyError
from evidence.policy import BUILTIN, Selector, default_policy, load_policy, policy_from_dict, policy_to_json


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "policy.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_default_policy_is_the_issue_s() -> None:
    p = default_policy()
    assert [c.name for c in p.criteria] == list(BUILTIN)
    err, lat, ok = p.criteria
    assert (err.threshold, err.comparator, err.window_seconds, err.primary_floor) == (2.0, ">=", 300.0, 0.001)
    assert (lat.threshold, lat.comparator, lat.window_seconds, lat.quantile) == (0.30, ">=", 300.0, 0.95)
    assert (ok.threshold, ok.comparator, ok.window_seconds) == (99.0, "<", 60.0)
    assert all(c.min_requests == 50 for c in p.criteria)
    assert (p.limits.max_weight, p.limits.progress_deadline_seconds) == (50, 600)
    assert p.limits.require_progress_deadline and p.limits.require_rollback_path
    assert p.source == "default"


def test_breached_by_uses_the_comparator() -> None:
    err, _, ok = default_policy().criteria
    assert err.breached_by(2.0) and not err.breached_by(1.99)
    assert ok.breached_by(98.9) and not ok.breached_by(99.0)


def test_an_empty_file_is_the_default_policy(tmp_path: Path) -> None:
    p = load_policy(write(tmp_path, ""))
    assert [c.threshold for c in p.criteria] == [c.threshold for c in default_policy().criteria]
    assert p.source == str(tmp_path / "policy.yaml")


def test_overrides_thresholds_windows_floor_and_min_requests(tmp_path: Path) -> None:
    p = load_policy(
        write(
            tmp_path,
            """
version: 1
min_requests: 20
criteria:
  error_rate_ratio: {threshold: 3, window: 2m, primary_floor: 0.005}
  p95_latency_increase: {threshold: 0.5, window: 1m30s, min_requests: 100}
  success_rate: {threshold: 98.5, window: 45}
limits: {max_weight: 30, progress_deadline_seconds: 300, require_rollback_path: false}
""",
        )
    )
    err, lat, ok = p.criteria
    assert (err.threshold, err.window_seconds, err.primary_floor, err.min_requests) == (3.0, 120.0, 0.005, 20)
    assert (lat.threshold, lat.window_seconds, lat.min_requests) == (0.5, 90.0, 100)
    assert (ok.threshold, ok.window_seconds, ok.min_requests) == (98.5, 45.0, 20)
    assert (p.limits.max_weight, p.limits.progress_deadline_seconds, p.limits.require_rollback_path) == (30, 300, False)
    assert p.limits.require_progress_deadline


def test_disable_a_criterion_two_ways() -> None:
    p = policy_from_dict({"criteria": {"success_rate": False, "p95_latency_increase": {"enabled": False}}})
    assert [c.name for c in p.criteria] == ["error_rate_ratio"]
    assert set(p.disabled) == {"success_rate", "p95_latency_increase"}
    assert p.criterion("success_rate") is None


def test_custom_ratio_and_gauge_criteria() -> None:
    p = policy_from_dict(
        {
            "criteria": {
                "errors-4xx": {
                    "kind": "ratio",
                    "numerator": {"metric": "traefik_service_requests_total", "role": "canary", "match": {"code": "4.."}},
                    "denominator": {"metric": "traefik_service_requests_total", "role": "canary"},
                    "scale": 100,
                    "window": "2m",
                    "breach_when": ">=",
                    "threshold": 5,
                },
                "analysis_success": {
                    "kind": "gauge",
                    "series": {"metric": "flagger_canary_metric_analysis", "match": {"metric": "request-success-rate"}},
                    "aggregate": "min",
                    "window": "2m",
                    "breach_when": "<",
                    "threshold": 99,
                    "min_requests": 0,
                },
            }
        }
    )
    ratio = p.criterion("errors-4xx")
    gauge = p.criterion("analysis_success")
    assert ratio is not None and gauge is not None
    assert ratio.numerator == Selector("traefik_service_requests_total", "canary", (("code", "4.."),))
    assert (ratio.scale, ratio.window_seconds, ratio.comparator, ratio.threshold, ratio.min_requests) == (
        100.0,
        120.0,
        ">=",
        5.0,
        50,
    )
    assert gauge.series is not None and gauge.series.role is None
    assert (gauge.aggregate, gauge.min_requests) == ("min", 0)
    assert "flagger_canary_metric_analysis" in gauge.description
    js = policy_to_json(p)
    assert [c["name"] for c in js["criteria"]] == [*BUILTIN, "errors-4xx", "analysis_success"]
    assert js["criteria"][3]["numerator"] == {
        "metric": "traefik_service_requests_total",
        "role": "canary",
        "match": {"code": "4.."},
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "criteria:\n  latency_p99: {threshold: 1}\n",
            "policy.yaml: criteria.latency_p99: unknown criterion; built-in criteria are error_rate_ratio, "
            "p95_latency_increase, success_rate — a custom criterion needs `kind: ratio` or `kind: gauge`",
        ),
        ("criteria:\n  sucess_rate: false\n", "criteria.sucess_rate: unknown criterion"),
        (
            "criteria:\n  success_rate: {threshold: high}\n",
            "policy.yaml: criteria.success_rate.threshold: must be a number from 0 to 100 (percent), got 'high'",
        ),
        ("criteria:\n  success_rate: {threshold: 120}\n", "criteria.success_rate.threshold: must be a number from 0 to 100"),
        ("criteria:\n  error_rate_ratio: {threshold: 0}\n", "criteria.error_rate_ratio.threshold: must be a number above 0"),
        ("criteria:\n  error_rate_ratio: {threshold: true}\n", "got True"),
        (
            "criteria:\n  p95_latency_increase: {threshold: -0.1}\n",
            "criteria.p95_latency_increase.threshold: must be a number above 0",
        ),
        (
            "criteria:\n  success_rate: {windw: 1m}\n",
            "criteria.success_rate.windw: unknown field; allowed: enabled, min_requests, threshold, window",
        ),
        ("criteria:\n  success_rate: {window: 5 minutes}\n", "criteria.success_rate.window: must be a duration from 1s to 24h"),
        ("criteria:\n  success_rate: {window: 2d}\n", "criteria.success_rate.window: must be a duration"),
        ("criteria:\n  success_rate: {min_requests: -1}\n", "criteria.success_rate.min_requests: must be an integer from 0"),
        ("criteria:\n  success_rate: {enabled: maybe}\n", "criteria.success_rate.enabled: must be true or false, got 'maybe'"),
        (
            "criteria:\n  error_rate_ratio: {primary_floor: 2}\n",
            "criteria.error_rate_ratio.primary_floor: must be a fraction above 0",
        ),
        (
            "criteria:\n  p95_latency_increase: {primary_floor: 0.1}\n",
            "criteria.p95_latency_increase.primary_floor: unknown field",
        ),
        ("criteria: [success_rate]\n", "policy.yaml: criteria: must be a mapping"),
        ("criteria:\n  Bad Name: {kind: ratio}\n", "criteria.Bad Name: criterion names are lower-case"),
        ("criteria:\n  x: {kind: histogram}\n", "criteria.x.kind: must be one of ratio, gauge, got 'histogram'"),
        (
            "criteria:\n  x: {kind: ratio, window: 1m, breach_when: '>', threshold: 1}\n",
            "criteria.x.numerator: is required for kind ratio",
        ),
        ("criteria:\n  x: {kind: gauge, series: {metric: m}, window: 1m, threshold: 1}\n", "criteria.x.breach_when: is required"),
        (
            "criteria:\n  x: {kind: gauge, series: {metric: m}, window: 1m, threshold: 1, breach_when: '=>'}\n",
            "criteria.x.breach_when: must be one of >=, >, <=, <, got '=>'",
        ),
        (
            "criteria:\n  x: {kind: gauge, series: {metric: m, role: sidecar}, window: 1m, threshold: 1, breach_when: '>'}\n",
            "criteria.x.series.role: must be one of primary, canary, flagger, got 'sidecar'",
        ),
        (
            "criteria:\n  x: {kind: gauge, series: {metric: m, match: {code: '5(('}}, window: 1m, threshold: 1, breach_when: '>'}\n",
            "criteria.x.series.match.code: is not an RE2 regular expression, the syntax PromQL uses (missing ): 5(()",
        ),
        (
            "criteria:\n  x: {kind: gauge, series: {metric: 'a b'}, window: 1m, threshold: 1, breach_when: '>'}\n",
            "criteria.x.series.metric: is required: a metric name",
        ),
        (
            "criteria:\n  x: {kind: gauge, series: {metric: m}, window: 1m, threshold: .nan, breach_when: '>'}\n",
            "criteria.x.threshold: must be a finite number",
        ),
        (
            "criteria:\n  x: {kind: gauge, series: {metric: m}, scale: 2, window: 1m, threshold: 1, breach_when: '>'}\n",
            "criteria.x.scale: unknown field",
        ),
        ("limits: {max_weight: 150}\n", "limits.max_weight: must be an integer from 1 to 100, got 150"),
        ("limits: {max_wieght: 50}\n", "limits.max_wieght: unknown field; allowed: max_weight, progress_deadline_seconds"),
        ("version: 2\n", "policy.yaml: version: must be 1"),
        ("thresholds: {}\n", "policy.yaml: thresholds: unknown field; allowed: criteria, limits, min_requests, version"),
        ("- a\n- b\n", "policy.yaml: (top level): must be a mapping, got 'list'"),
        ("criteria: {success_rate: {threshold: 9\n", "policy.yaml: not valid YAML at line"),
    ],
)
def test_errors_name_the_file_the_field_and_what_is_allowed(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy(write(tmp_path, text))
    assert message in str(info.value)
    assert str(info.value).startswith(str(tmp_path / "policy.yaml"))
    assert isinstance(info.value, InputError)


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no such policy file; check the --policy path"):
        load_policy(tmp_path / "nope.yaml")
