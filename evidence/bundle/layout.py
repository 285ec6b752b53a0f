"""The bundle's layout: table schemas, file names, the folder name, file hashing."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

SCHEMA = "evidence.bundle"
_ZERO_HASH = "0" * 64
_SELF_HASH = re.compile(r'"self_sha256": "([0-9a-f]{64})"')
SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
#: The only entries a bundle may hold besides the manifest's files: its signatures (evidence.archive.sign).
ATTESTATION_FILES = ("attestation.intoto.jsonl", "attestation.sigstore.json")

#: Columns of every table: name -> (arrow type name, nullable, meaning).
SCHEMAS: dict[str, list[tuple[str, str, str]]] = {
    "objects": [
        ("kind", "string", "Kubernetes kind: Canary, MetricTemplate, AlertProvider, TraefikService, Deployment"),
        ("api_version", "string", "apiVersion"),
        ("namespace", "string", "metadata.namespace"),
        ("name", "string", "metadata.name"),
        ("role", "string", "canary | metric-template | alert-provider | traefik-service | workload-canary | workload-primary"),
        ("source", "string", "cluster | dump"),
        ("redacted", "list<string>", "JSON paths whose values were replaced by <redacted>"),
        ("body", "string", "the object as JSON (sorted keys), secrets redacted, managedFields and last-applied dropped"),
    ],
    "events": [
        ("event_id", "string", "stable id: sha256 of time, message and first source"),
        ("time", "timestamp", "when it happened (ms from logs/webhook; seconds from Events)"),
        ("type", "string", "Normal | Warning"),
        ("reason", "string", "Synced for every Flagger event"),
        ("message", "string", "the message, without the '(combined from similar events): ' prefix"),
        ("sources", "string", "comma-separated: webhook, log, k8s, k8s-events-v1"),
        ("k8s_count", "int64", "count of the Kubernetes Event this row matched, null if none"),
        ("k8s_first", "timestamp", "firstTimestamp of that Event"),
        ("k8s_last", "timestamp", "lastTimestamp of that Event"),
        ("aggregated", "bool", "the Event was '(combined from similar events): …' (only the latest message is known)"),
        ("cross_rollout", "bool", "the Event's firstTimestamp predates the window: deduplicated with an older rollout"),
        ("phase", "string", "Canary phase carried by the webhook payload, null otherwise"),
        ("checksum", "string", "webhook payload checksum, null otherwise"),
        (
            "action",
            "string",
            "parsed: new-revision, start, advance, halt, rollback, failed, promote-start, route-primary, promoted, not-ready, …",
        ),
        ("weight", "int64", "canary weight the message sets, when it sets one"),
        ("metric", "string", "metric (or webhook:<name>) a halt names"),
        ("value", "float64", "value a halt reports (percent for success rate, ms for durations)"),
        ("threshold", "float64", "threshold a halt reports (same unit)"),
        ("comparator", "string", "'<' or '>' as in the message"),
        ("failed_checks", "int64", "failed checks a rollback reports"),
        ("detail", "string", "the rest: webhook name, error text, reason"),
    ],
    "logs": [
        ("time", "timestamp", "zap 'ts'"),
        ("level", "string", "info | error | …"),
        ("caller", "string", "zap 'caller'"),
        ("message", "string", "zap 'msg'"),
        ("raw", "string", "the line as read"),
    ],
    "series": [
        ("series_id", "int32", "key into samples"),
        ("metric", "string", "__name__"),
        ("role", "string", "primary | canary | flagger"),
        ("service", "string", "Traefik 'service' label"),
        ("code", "string", "HTTP status code label"),
        ("le", "string", "histogram bucket bound, '+Inf' for the top"),
        ("labels", "string", "every label as a JSON object (sorted keys)"),
        ("query_id", "string", "the manifest query that fetched it"),
    ],
    "samples": [
        ("series_id", "int32", "series.parquet id"),
        ("timestamp", "timestamp", "sample time, UTC, ms"),
        ("value", "float64", "sample value"),
    ],
    "checks": [
        ("metric", "string", "the Canary's metric name"),
        ("query_id", "string", "the manifest query"),
        ("timestamp", "timestamp", "evaluation time: Flagger's analysis ticks"),
        ("value", "float64", "the query's value in Flagger's unit (percent; ms for request-duration)"),
        ("threshold_min", "float64", "thresholdRange.min"),
        ("threshold_max", "float64", "thresholdRange.max"),
    ],
}
TABLES = tuple(SCHEMAS)


def arrow_schema(table: str) -> pa.Schema:
    """Return the arrow schema of a table."""
    import pyarrow as pa

    types = {
        "string": pa.string(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "timestamp": pa.timestamp("ms", tz="UTC"),
        "list<string>": pa.list_(pa.string()),
    }
    return pa.schema([pa.field(name, types[t]) for name, t, _ in SCHEMAS[table]])


def sha256_file(path: Path) -> str:
    """Return the hex sha256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_UNSAFE = re.compile(r"[^A-Za-z0-9.-]+")


def safe_component(text: str, limit: int = 60) -> str:
    """Return ``text`` as a file-name part safe on every filesystem."""
    norm = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    out = _UNSAFE.sub("-", norm).strip(".-")[:limit].strip(".-")
    if not out or out.upper() in {"CON", "PRN", "AUX", "NUL", "COM1", "LPT1"}:
        out = "x" + hashlib.sha256(text.encode()).hexdigest()[:8]
    return out


def bundle_dirname(namespace: str, canary: str, start: dt.datetime, bundle_id: str) -> str:
    """Return the bundle folder's name."""
    stamp = start.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{safe_component(namespace)}_{safe_component(canary)}_{stamp}_{bundle_id[:8]}"


#: Each column type's name as a parquet footer reads (evidence.bundle.footer) and pyarrow prints it.
FOOTER_TYPES = {
    "string": "string",
    "int32": "int32",
    "int64": "int64",
    "float64": "double",
    "bool": "bool",
    "timestamp": "timestamp[ms, tz=UTC]",
    "list<string>": "list<string>",
}


def footer_problem(table: str, columns: dict[str, str]) -> str | None:
    """Return what is wrong with a table's columns as its parquet footer names them, or None."""
    for name, kind, _ in SCHEMAS[table]:
        want = FOOTER_TYPES[kind]
        if name not in columns:
            return f"column {name!r} of table {table} is missing"
        if columns[name] != want:
            return f"column {name!r} of table {table} has type {columns[name]}, expected {want}"
    return None


def schema_problem(table: str, schema: pa.Schema) -> str | None:
    """Return what is wrong with a table's arrow schema against SCHEMAS, or None."""
    want = arrow_schema(table)
    have = {f.name: f.type for f in schema}
    for f in want:
        if f.name not in have:
            return f"column {f.name!r} of table {table} is missing"
        if have[f.name] != f.type:
            return f"column {f.name!r} of table {table} has type {have[f.name]}, expected {f.type}"
    return None
