"""The only reader and writer of bundles: parquet tables, the manifest, verification.

Four modules: ``layout`` (schemas, names, hashing), ``manifest`` (typed records and their JSON),
``writer`` (atomic writes) and ``reader`` (reading and ``check_bundle``).

A bundle is a folder::

    <namespace>_<canary>_<YYYYmmddTHHMMSSZ>_<id8>/
        manifest.json      schema, ids, window, sources, queries, gaps, warnings, file hashes
        objects.parquet    the Canary, MetricTemplates, AlertProviders, TraefikService, workloads (redacted)
        events.parquet     the merged, deduplicated event record, one row per occurrence
        logs.parquet       Flagger's log lines about the canary, parsed
        series.parquet     one row per Prometheus series: id, metric, role, labels
        samples.parquet    raw samples: series id, timestamp, value — exactly as Prometheus stored them
        checks.parquet     Flagger's own metric queries evaluated at each analysis tick

Writing is atomic: the folder is built under a hidden temporary name beside its final one
and renamed into place only when every file and the manifest are written.  Column names and
types are part of the format (``SCHEMAS``); a reader refuses a newer ``schema_version``.
"""

from __future__ import annotations

from evidence.bundle.layout import (
    ATTESTATION_FILES,
    MANIFEST,
    SCHEMA,
    SCHEMA_VERSION,
    SCHEMAS,
    TABLES,
    arrow_schema,
    bundle_dirname,
    safe_component,
    schema_problem,
    sha256_file,
)
from evidence.bundle.manifest import (
    grouped_gaps,
    manifest_from_json,
    manifest_problem,
    manifest_to_json,
    scrape_labels_to_json,
    self_hash_problem,
)
from evidence.bundle.reader import Bundle, check_bundle, inside_bundle, open_bundle, read_bundle, verify_bundle
from evidence.bundle.writer import BundleWriter, bundle_writer, output_error

__all__ = [
    "ATTESTATION_FILES",
    "MANIFEST",
    "SCHEMA",
    "SCHEMAS",
    "SCHEMA_VERSION",
    "TABLES",
    "Bundle",
    "BundleWriter",
    "arrow_schema",
    "bundle_dirname",
    "bundle_writer",
    "check_bundle",
    "grouped_gaps",
    "inside_bundle",
    "manifest_from_json",
    "manifest_problem",
    "manifest_to_json",
    "open_bundle",
    "output_error",
    "read_bundle",
    "safe_component",
    "schema_problem",
    "scrape_labels_to_json",
    "self_hash_problem",
    "sha256_file",
    "verify_bundle",
]
