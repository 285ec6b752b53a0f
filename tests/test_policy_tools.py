"""`evidence policy check|default|schema` through the real CLI, and RE2 syntax in `match:`."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from evidence.errors import PolicyError
from evidence.policy import default_policy, load_policy, policy_to_json

from .archive_support import ROOT, run

BAD = """\
version: 2
bogus: 1
criteria:
  success_rate: {threshold: high}
  Upper: {kind: gauge}
  x: {kind: gauge, series: {metric: m, match: {code: "(?!5)"}}, window: 1m, threshold: 1, breach_when: ">"}
limits: {max_weight: 0}
"""


def published_schema() -> dict[str, object]:
    schema: dict[str, object] = json.loads((ROOT / "schemas" / "policy.schema.json").read_text())
    return schema


def test_default_is_the_built_in_policy_and_checks_clean(tmp_path: Path) -> None:
    res = run("policy", "default")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("# yaml-language-server: $schema=")
    path = tmp_path / "policy.yaml"
    path.write_text(res.stdout)
    expected = policy_to_json(default_policy())
    got = policy_to_json(load_policy(path))
    assert {k: v for k, v in got.items() if k != "source"} == {k: v for k, v in expected.items() if k != "source"}
    checked = run("policy", "check", str(path))
    assert checked.returncode == 0 and checked.stdout.strip() == f"{path}: SUCCESS" and checked.stderr == ""
    jsonschema.validate(yaml.safe_load(res.stdout), published_schema())


def test_schema_is_published_and_rejects_what_the_reader_rejects() -> None:
    res = run("policy", "schema")
    assert res.returncode == 0
    assert json.loads(res.stdout) == published_schema(), "schemas/policy.schema.json is stale: `evidence policy schema > it`"
    jsonschema.Draft202012Validator.check_schema(published_schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(yaml.safe_load(BAD), published_schema())
    custom = {"criteria": {"errors_4xx": {"kind": "ratio", "numerator": {"metric": "a"}, "denominator": {"metric": "b"},
              "window": "2m", "breach_when": ">=", "threshold": 5}}}  # fmt: skip
    jsonschema.validate(custom, published_schema())


def test_check_lists_every_error_and_exits_1(tmp_path: Path) -> None:
    bad, good = tmp_path / "bad.yaml", tmp_path / "good.yaml"
    bad.write_text(BAD)
    good.write_text("criteria: {success_rate: {threshold: 98}}\n")
    res = run("policy", "check", str(good), str(bad))
    assert res.returncode == 1
    assert f"{good}: SUCCESS" in res.stdout and f"{bad}: FAILED, 6 error(s)" in res.stdout
    lines = [line for line in res.stderr.splitlines() if line.startswith("error: ")]
    paths = [line.split(": ", 3)[2] for line in lines]
    assert paths == ["bogus", "version", "criteria.success_rate.threshold", "criteria.Upper", "criteria.x.series.match.code",
                     "limits.max_weight"]  # fmt: skip
    assert all(f"error: {bad}: " in line for line in lines)
    missing = run("policy", "check", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 1 and "no such policy file" in missing.stderr


@pytest.mark.parametrize(
    ("regex", "detail"),
    [("(?<=a)b", "invalid perl operator: (?<"), ("(a)\\1", "invalid escape sequence: \\1"), ("a(?=b)", "(?=")],
)
def test_match_regexes_are_re2_like_promql(tmp_path: Path, regex: str, detail: str) -> None:
    path = tmp_path / "policy.yaml"

    def write(pattern: str) -> None:
        gauge = {
            "kind": "gauge",
            "series": {"metric": "m", "match": {"code": pattern}},
            "window": "1m",
            "threshold": 1,
            "breach_when": ">",
        }
        path.write_text(yaml.safe_dump({"criteria": {"g": gauge}}))

    write(regex)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert "criteria.g.series.match.code: is not an RE2 regular expression" in str(info.value) and detail in str(info.value)
    write("5..|4[0-9]{2}")  # what RE2 and PromQL accept passes
    assert load_policy(path).criterion("g") is not None
