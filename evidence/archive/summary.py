"""The per-bundle summary: one JSON object the fleet ledger reads instead of every table.

``summary.json`` is written by ``collect`` beside the tables, before the manifest, so it is
listed in the manifest (sha256, bytes) and covered by ``self_sha256`` and by the attestation's
subjects: the ledger's figures are part of what is signed.  Its columns (``SUMMARY_COLUMNS``)
(JSON, timestamps RFC 3339) are the default policy's judgement of the rollout the bundle is about; ``policy_sha256`` names
the policy.  ``SHA256SUMS`` (``sha256sum -c`` format) lists every other file but the manifest,
and is itself listed in the manifest.  JSON rather than parquet: a thousand one-row parquet
files cost a millisecond each to open, a thousand small JSON objects almost nothing.

This module is also the one place the archive reads a manifest's fields (``manifest_facts``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evidence.bundle import manifest_from_json
from evidence.errors import BundleError, EvidenceError, UsageError
from evidence.model import Manifest, rfc3339

if TYPE_CHECKING:
    from evidence.bundle import BundleWriter
    from evidence.evaluate import Evaluation

SUMMARY = "summary.json"
CHECKSUMS = "SHA256SUMS"
SUMMARY_VERSION = 1

#: Fields of ``summary.json``: name -> (arrow type name, meaning).  The partition keys of
#: an archive path (cluster, namespace, canary, date) are not column names here, so engines
#: that add them from the path (Athena, Spark) see no clash.
SUMMARY_COLUMNS: dict[str, tuple[str, str]] = {
    "summary_version": ("int64", "version of this table's columns"),
    "bundle_id": ("string", "the bundle's id"),
    "rollout_id": ("string", "the rollout's id (evidence.identity)"),
    "cluster_name": ("string", "cluster the rollout ran in"),
    "canary_namespace": ("string", "the Canary's namespace"),
    "canary_name": ("string", "the Canary's name"),
    "target": ("string", "the Canary's targetRef"),
    "window_start": ("timestamp", "collection window start"),
    "window_end": ("timestamp", "collection window end"),
    "rollout_start": ("timestamp", "the evaluated rollout's start"),
    "rollout_end": ("timestamp", "the evaluated rollout's end"),
    "duration_seconds": ("float64", "rollout_end - rollout_start"),
    "outcome": ("string", "Flagger's outcome: promoted | rolled_back | failed | in_progress | unknown"),
    "verdict": ("string", "the policy's verdict: pass | abort"),
    "evidence_sufficient": ("bool", "at least one criterion could be evaluated"),
    "max_weight": ("int64", "highest canary weight reached"),
    "failed_checks": (
        "int64",
        "Flagger's failed analysis checks in the rollout (its failedChecks: halts and query errors, one a tick)",
    ),
    "halted_checks": ("list<string>", "the Flagger metrics that halted the rollout, once each"),
    "breached_criteria": ("list<string>", "policy criteria breached"),
    "first_breach_criterion": ("string", "the criterion breached first"),
    "detection_lag_seconds": ("float64", "Flagger's rollback decision minus the first breach"),
    "canary_requests": ("int64", "requests the canary served in the rollout"),
    "canary_errors": ("int64", "5xx the canary served in the rollout"),
    "exposure_seconds": ("float64", "time the canary took traffic"),
    "findings": ("list<string>", "finding codes, e.g. silent-failure, promoted-despite-breach"),
    "evaluation_error": ("string", "why the rollout could not be evaluated, null when it was"),
    "policy_sha256": ("string", "sha256 of the policy (canonical JSON) the verdict is under"),
    "tool_version": ("string", "evidence version that collected the bundle"),
    "collected_at": ("timestamp", "when the bundle was collected"),
}


_SQL_TYPES = {"string": "VARCHAR", "int64": "BIGINT", "float64": "DOUBLE", "bool": "BOOLEAN",
              "timestamp": "TIMESTAMPTZ", "list<string>": "VARCHAR[]"}  # fmt: skip


def summary_sql_columns() -> dict[str, str]:
    """Return the DuckDB type of every summary field."""
    return {n: _SQL_TYPES[t] for n, (t, _) in SUMMARY_COLUMNS.items()}


@dataclass(frozen=True)
class ManifestFacts:
    """What the archive needs from a manifest (its one reader of manifest fields)."""

    bundle_id: str
    rollout_id: str
    cluster: str
    namespace: str
    canary: str
    start: str  # rollout start, else window start (RFC 3339)
    collected_at: str
    tool_version: str
    schema_version: int
    legal_hold: bool

    @property
    def date(self) -> str:
        """Return the archive's ``date=`` partition value (UTC day of the start)."""
        return self.start[:10] if len(self.start) >= 10 else "unknown"


def manifest_facts(manifest: Manifest | Mapping[str, Any]) -> ManifestFacts:
    """Return the archive's facts of a manifest (its typed records); raise BundleError when identity is missing."""
    m = manifest if isinstance(manifest, Manifest) else manifest_from_json(manifest)
    if not m.bundle_id or not m.canary.namespace or not m.canary.name:
        raise BundleError("the manifest has no bundle_id or canary namespace/name; it was not written by evidence")
    return ManifestFacts(
        bundle_id=m.bundle_id,
        rollout_id=m.rollout_id or "",
        cluster=m.cluster.get("name") or "unknown",
        namespace=m.canary.namespace,
        canary=m.canary.name,
        start=rfc3339(m.rollout.start or (m.window.start if m.window else None)) or "",
        collected_at=rfc3339(m.collected_at) or "",
        tool_version=m.tool.get("version") or "",
        schema_version=m.schema_version,
        legal_hold=m.legal_hold,
    )


def policy_digest(evaluation: Evaluation) -> str:
    """Return the sha256 of the evaluation's policy as canonical JSON."""
    from evidence.policy import policy_to_json

    body = policy_to_json(evaluation.policy)
    body.pop("source", None)  # the same policy read from another path is the same policy
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def summary_row(
    manifest: Manifest | Mapping[str, Any], evaluation: Evaluation | None, error: str | None = None
) -> dict[str, Any]:
    """Return the summary row of a bundle (``evaluation`` None: identity only, with ``error``)."""
    m = manifest if isinstance(manifest, Manifest) else manifest_from_json(manifest)
    facts = manifest_facts(m)

    row: dict[str, Any] = dict.fromkeys(SUMMARY_COLUMNS)
    row.update(
        summary_version=SUMMARY_VERSION,
        bundle_id=facts.bundle_id,
        rollout_id=facts.rollout_id,
        cluster_name=facts.cluster,
        canary_namespace=facts.namespace,
        canary_name=facts.canary,
        window_start=m.window.start if m.window else None,
        window_end=m.window.end if m.window else None,
        rollout_start=m.rollout.start or (m.window.start if m.window else None),
        tool_version=facts.tool_version,
        collected_at=m.collected_at,
        halted_checks=[],
        breached_criteria=[],
        findings=[],
        evaluation_error=error,
    )
    if evaluation is None:
        return row
    ev, tl = evaluation, evaluation.timeline
    halted: list[str] = []
    for h in tl.halts:
        if h.metric and h.metric not in halted:
            halted.append(h.metric)
    row.update(
        target=ev.target,
        rollout_start=ev.rollout_start,
        rollout_end=ev.rollout_end,
        duration_seconds=round((ev.rollout_end - ev.rollout_start).total_seconds(), 3),
        outcome=ev.outcome,
        verdict=ev.verdict,
        evidence_sufficient=ev.evidence_sufficient,
        max_weight=int(tl.max_weight),
        failed_checks=tl.failed_checks if tl.failed_checks is not None else 0,
        halted_checks=halted,
        breached_criteria=[c.name for c in ev.criteria if c.first_breach_at is not None],
        first_breach_criterion=ev.lag.first_breach_criterion,
        detection_lag_seconds=ev.lag.detection_lag_seconds,
        canary_requests=int(ev.blast.canary_requests),
        canary_errors=int(ev.blast.canary_errors),
        exposure_seconds=float(ev.blast.exposure_seconds),
        findings=sorted({f.code for f in ev.findings}),
        policy_sha256=policy_digest(ev),
    )
    return row


def write_archive_files(writer: BundleWriter, manifest: Manifest) -> None:
    """Write ``summary.parquet`` and ``SHA256SUMS`` into a bundle being built (before its manifest)."""
    from evidence.bundle import Bundle, manifest_to_json
    from evidence.evaluate import evaluate_bundle

    evaluation: Evaluation | None = None
    error = None
    try:
        # The tables the evaluation reads, as frames already (any other would be read from the files).
        frames = writer.frames(("objects", "events", "series", "checks"))
        evaluation = evaluate_bundle(Bundle(writer.tmp, manifest_to_json(manifest), frames), bounded=True)
    except EvidenceError as exc:  # a bundle that cannot be judged is still evidence: say why in its summary
        error = str(exc).replace(str(writer.tmp), "<bundle>")
    writer.write_bytes(SUMMARY, summary_json(summary_row(manifest, evaluation, error)), rows=1)
    lines = [f"{writer.sealed(name)[0]}  {name}\n" for name in sorted(writer.files)]
    writer.write_bytes(CHECKSUMS, "".join(lines).encode("ascii"), rows=len(lines))


def summary_json(row: Mapping[str, Any]) -> bytes:
    """Return a summary row as the bytes of ``summary.json`` (timestamps RFC 3339)."""
    from evidence.model import rfc3339

    body = {k: rfc3339(v) if isinstance(v, dt.datetime) else v for k, v in row.items()}
    # One line: the ledger hands DuckDB all summaries as one JSON-lines file.
    return (json.dumps(body, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")


_TIMES = tuple(n for n, (t, _) in SUMMARY_COLUMNS.items() if t == "timestamp")


def summary_fields(data: bytes, where: str) -> dict[str, Any]:
    """Return the fields of ``summary.json`` bytes as JSON values; raise BundleError when malformed."""
    try:
        body = json.loads(data)
        if not isinstance(body, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        raise BundleError(f"{where}: {SUMMARY} is malformed ({exc}); run `evidence verify`") from None
    return {n: body.get(n) for n in SUMMARY_COLUMNS}


def parse_summary(data: bytes, where: str) -> dict[str, Any]:
    """Return the summary row of ``summary.json`` bytes (timestamps as datetimes)."""
    body = summary_fields(data, where)
    from evidence.model import parse_time

    try:
        for name in _TIMES:
            if body.get(name):
                body[name] = parse_time(str(body[name]), name)
    except UsageError as exc:
        raise BundleError(f"{where}: {SUMMARY} is malformed ({exc}); run `evidence verify`") from None
    return {n: body.get(n) for n in SUMMARY_COLUMNS}


def read_summary(bundle_dir: Path) -> dict[str, Any]:
    """Return a bundle's summary row."""
    try:
        data = (bundle_dir / SUMMARY).read_bytes()
    except OSError as exc:
        raise BundleError(f"{bundle_dir}: {SUMMARY} is unreadable ({exc.strerror or exc})") from None
    return parse_summary(data, str(bundle_dir))


def bundle_summary(bundle_dir: Path, manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Return the bundle's summary row: its ``summary.parquet``, else evaluated now (older bundles)."""
    from evidence.bundle import read_bundle
    from evidence.evaluate import evaluate_bundle

    if (bundle_dir / SUMMARY).is_file():
        return read_summary(bundle_dir)
    try:
        return summary_row(manifest, evaluate_bundle(read_bundle(bundle_dir), bounded=True))
    except EvidenceError as exc:
        return summary_row(manifest, None, str(exc))


def decision_predicate(bundle: Any) -> dict[str, Any]:
    """Return the ``canary-decision/v1`` predicate of a bundle (lowerCamelCase, RFC 3339 times)."""
    from evidence import __version__
    from evidence.model import rfc3339

    row = bundle_summary(bundle.path, bundle.manifest)
    return {
        "bundleId": row["bundle_id"],
        "rolloutId": row["rollout_id"],
        "canary": {"namespace": row["canary_namespace"], "name": row["canary_name"], "target": row["target"]},
        "cluster": row["cluster_name"],
        "window": {"start": rfc3339(row["window_start"]), "end": rfc3339(row["window_end"])},
        "rollout": {
            "start": rfc3339(row["rollout_start"]),
            "end": rfc3339(row["rollout_end"]),
            "durationSeconds": row["duration_seconds"],
        },
        "outcome": row["outcome"],
        "verdict": row["verdict"],
        "evidenceSufficient": row["evidence_sufficient"],
        "failedChecks": row["failed_checks"],
        "haltedChecks": list(row["halted_checks"] or []),
        "breachedCriteria": list(row["breached_criteria"] or []),
        "detectionLagSeconds": row["detection_lag_seconds"],
        "blastRadius": {
            "maxWeight": row["max_weight"],
            "canaryRequests": row["canary_requests"],
            "canaryErrors": row["canary_errors"],
            "exposureSeconds": row["exposure_seconds"],
        },
        "findings": list(row["findings"] or []),
        "policyDigest": {"sha256": row["policy_sha256"]},
        "collectedBy": {"name": "evidence", "version": row["tool_version"]},
        "signedBy": {"name": "evidence", "version": __version__},
        "collectedAt": rfc3339(row["collected_at"]),
    }
