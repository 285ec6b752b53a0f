"""Render draws from the evaluation it is given: computed once, never re-evaluated or re-prepared."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from evidence.bundle import read_bundle
from evidence.errors import UsageError
from evidence.evaluate import evaluate_bundle
from evidence.policy import default_policy
from evidence.render import render_bundle


def test_render_uses_the_evaluation_it_is_given(bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    path = bundle_for("rollback-error-rate")
    ev = evaluate_bundle(read_bundle(path), replace(default_policy(), source="the policy of this test"))
    (html,) = render_bundle(path, ["html"], tmp_path, evaluation=ev)
    assert "the policy of this test" in html.read_text()
    first = ev.criteria[0].name
    assert ev.components(first) is ev.components(first) and ev.components(first) is not None


def test_an_evaluation_of_another_bundle_or_with_a_policy_is_refused(bundle_for: Callable[[str], Path], tmp_path: Path) -> None:
    ev = evaluate_bundle(read_bundle(bundle_for("healthy-promotion")))
    with pytest.raises(UsageError, match="the evaluation is of bundle"):
        render_bundle(bundle_for("rollback-error-rate"), ["html"], tmp_path, evaluation=ev)
    with pytest.raises(UsageError, match="not both"):
        render_bundle(bundle_for("healthy-promotion"), ["html"], tmp_path, policy_path="p.yaml", evaluation=ev)
