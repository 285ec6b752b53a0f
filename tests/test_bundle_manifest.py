"""The manifest's typed records: every bundle's manifest.json reads into them and writes back unchanged."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from evidence.bundle import manifest_from_json, manifest_to_json, read_bundle
from evidence.model import GapKind, Window
from tests.conftest import SMALL_SCENARIOS


@pytest.mark.parametrize("name", SMALL_SCENARIOS)
def test_every_manifest_round_trips_through_the_records(name: str, bundle_for: Callable[[str], Path]) -> None:
    path = bundle_for(name)
    raw = json.loads((path / "manifest.json").read_text())
    record = read_bundle(path).record
    assert isinstance(record.window, Window) and record.window.start < record.window.end
    assert record.canary.ref.namespace == raw["canary"]["namespace"] and record.bundle_id == raw["bundle_id"]
    assert manifest_to_json(record) == raw


def test_a_malformed_field_reads_as_absent_and_an_unknown_gap_kind_is_kept() -> None:
    raw = {
        "schema": "evidence.bundle",
        "schema_version": 1,
        "bundle_id": "0" * 32,
        "canary": {"namespace": "shop", "name": "podinfo"},
        "window": {"start": "2026-11-20T10:00:00Z", "end": "not a time"},
        "gaps": [{"kind": "scrape_gap", "from": "2026-11-20T10:01:00Z", "to": "2026-11-20T10:02:00Z"}, {"kind": "new_kind"}],
        "future_field": [1, 2],
    }
    record = manifest_from_json(raw)
    assert record.window is None and record.redaction is None
    assert [g.kind for g in record.gaps] == [GapKind.SCRAPE_GAP, "new_kind"]
    assert manifest_to_json(record)["future_field"] == [1, 2]
