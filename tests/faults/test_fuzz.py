"""Property-based fuzzing of every parser of outside input: it parses, or raises an EvidenceError, in bounded time.

Parsers: the dump folder reader (JSON, YAML, logs), Flagger's event messages and log lines,
Kubernetes Events, the Canary reader, the bundle and manifest readers, the policy loader and the
scrubber.  ``make faults`` runs ten times the examples of ``make test``.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evidence.errors import EvidenceError
from evidence.model import CanaryRef

EXAMPLES = 400 if os.environ.get("EVIDENCE_FAULTS_ALL") == "1" else 40
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=3000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=True,
)

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True), st.text(max_size=40))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=6)),
    max_leaves=30,
)
#: Words of Flagger's vocabulary, so the fuzzer reaches deep into the parsers.
WORDS = st.sampled_from(
    [
        "Halt",
        "podinfo.shop",
        "advancement",
        "success rate",
        "request-duration",
        "<",
        ">",
        "99%",
        "+Inf",
        "-Inf",
        "NaN",
        "1e309",
        "Rolling back",
        "failed checks threshold reached",
        "Advance",
        "canary weight",
        "Promotion completed!",
        "New revision detected!",
        "Starting canary analysis for",
        "Canary failed!",
        "Progress deadline exceeded",
        "Metric query failed for",
        "Prometheus query failed:",
        "%",
        "ms",
        "5m",
        "1.5m",
        "500ms",
        "\x00",
        "\u202e",
        ":",
        "=",
    ]
)
messages = st.one_of(st.text(max_size=200), st.lists(WORDS, max_size=12).map(" ".join))


def canary_like() -> st.SearchStrategy[dict[str, Any]]:
    analysis = st.fixed_dictionaries(
        {},
        optional={
            "interval": st.one_of(st.text(max_size=8), json_values),
            "threshold": json_values,
            "stepWeight": json_values,
            "maxWeight": json_values,
            "stepWeights": json_values,
            "metrics": st.one_of(
                json_values,
                st.lists(
                    st.dictionaries(st.sampled_from(["name", "thresholdRange", "templateRef", "interval", "query"]), json_values),
                    max_size=3,
                ),
            ),
            "webhooks": json_values,
            "alerts": json_values,
        },
    )
    spec = st.fixed_dictionaries(
        {},
        optional={
            "analysis": st.one_of(analysis, json_values),
            "targetRef": json_values,
            "service": json_values,
            "progressDeadlineSeconds": json_values,
        },
    )
    return st.fixed_dictionaries(
        {"kind": st.just("Canary"), "metadata": st.just({"name": "podinfo", "namespace": "shop"})},
        optional={"spec": st.one_of(spec, json_values), "status": json_values},
    )


@FUZZ
@given(messages)
def test_event_messages_always_parse(message: str) -> None:
    from evidence.flagger import parse_message, strip_combined

    parsed = parse_message(message)
    assert parsed.action is None or isinstance(parsed.action, str)
    text, _ = strip_combined(message)
    assert isinstance(text, str)


@FUZZ
@given(
    st.lists(
        st.one_of(
            st.text(max_size=120),
            st.builds(
                lambda m, v: json.dumps({"msg": m, "ts": v, "canary": "podinfo.shop", "level": "info"}), messages, json_values
            ),
        ),
        max_size=8,
    )
)
def test_log_lines_always_parse(lines: list[str]) -> None:
    from evidence.events import from_log_lines

    rows, other = from_log_lines(lines, "podinfo", "shop")
    assert len(rows) <= len(lines) and len(other) <= len(lines)


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "message",
                "reason",
                "type",
                "count",
                "firstTimestamp",
                "lastTimestamp",
                "eventTime",
                "involvedObject",
                "metadata",
                "series",
            ]
        ),
        json_values,
    )
)
def test_kubernetes_events_always_normalise(event: dict[str, Any]) -> None:
    from evidence.events import normalise_k8s_event

    out = normalise_k8s_event(event)
    assert out is None or isinstance(out, dict)


@FUZZ
@given(canary_like())
def test_any_canary_object_reads_with_warnings(obj: dict[str, Any]) -> None:
    from evidence.canary import canary_spec, normalise_canary

    view, warnings = normalise_canary(obj)
    spec = canary_spec(CanaryRef("shop", "podinfo"), obj)
    assert isinstance(view, dict) and all(isinstance(w, str) for w in warnings)
    assert spec.interval_s >= 10 and spec.threshold >= 1


@FUZZ
@given(
    st.one_of(st.text(max_size=300), st.binary(max_size=300).map(lambda b: b.decode("latin-1"))),
    st.sampled_from([".json", ".yaml", ".log", ".jsonl"]),
)
def test_any_dump_file_is_read_or_named(text: str, suffix: str) -> None:
    from evidence.sources.dump import DumpSource

    with tempfile.TemporaryDirectory() as d:
        Path(d, f"fuzzed{suffix}").write_text(text, encoding="utf-8", errors="surrogateescape")
        try:
            DumpSource(d).read(CanaryRef("shop", "podinfo"))
        except EvidenceError as exc:
            assert str(exc)


@FUZZ
@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {
                "schema": st.just("evidence.bundle"),
                "schema_version": json_values,
                "bundle_id": json_values,
                "canary": json_values,
                "window": json_values,
                "files": json_values,
            }
        ),
    )
)
def test_any_manifest_is_read_or_refused(manifest: Any) -> None:
    from evidence.bundle import check_bundle, read_bundle

    with tempfile.TemporaryDirectory() as d:
        Path(d, "manifest.json").write_text(json.dumps(manifest, allow_nan=True))
        try:
            read_bundle(d)
        except EvidenceError as exc:
            assert str(exc)
        problems = check_bundle(d)
        assert problems and all(isinstance(p, str) for p in problems)  # a fuzzed manifest never verifies


@FUZZ
@given(
    st.one_of(
        json_values,
        st.dictionaries(
            st.sampled_from(["criteria", "limits", "min_requests", "version"]),
            st.one_of(
                json_values,
                st.dictionaries(
                    st.sampled_from(["error_rate_ratio", "latency_p95_ratio", "success_rate", "custom"]), json_values
                ),
            ),
        ),
    )
)
def test_any_policy_loads_or_names_the_field(data: Any) -> None:
    from evidence.policy import policy_from_dict

    try:
        policy_from_dict(data, "fuzz.yaml")
    except EvidenceError as exc:
        assert "fuzz.yaml" in str(exc)


@FUZZ
@given(st.text(max_size=400))
def test_any_policy_text_loads_or_names_the_file(text: str) -> None:
    from evidence.policy import load_policy

    with tempfile.TemporaryDirectory() as d:
        p = Path(d, "policy.yaml")
        p.write_text(text, encoding="utf-8", errors="surrogateescape")
        try:
            load_policy(p)
        except EvidenceError as exc:
            assert "policy.yaml" in str(exc)


@FUZZ
@given(
    st.lists(
        st.one_of(
            WORDS,
            st.sampled_from(["password=", "token:", "Bearer ", "AKIA", "-----BEGIN", "ghp_", "xoxb-", '{"secret": "', "-p "]),
            st.text(max_size=30),
        ),
        max_size=30,
    ).map("".join)
)
def test_the_scrubber_takes_any_text(text: str) -> None:
    from evidence.redact import scrub_text

    out = scrub_text(text)
    assert isinstance(out, str)
    assert scrub_text(out) == out  # scrubbing is idempotent: a scrubbed text has nothing left to find
