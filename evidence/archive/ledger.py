"""The fleet ledger: one row per rollout across an archive, and fleet figures, with DuckDB.

``history`` lists the archive's complete bundles (``Store.bundles``), checks each one's
manifest (``self_sha256``, schema version) and that its ``summary.json`` is the file the
manifest lists, and hands the checked summaries to DuckDB as one arrow table (no import step,
nothing written).  A bad bundle is skipped with a warning; the rest still answer.  With a key,
``verified`` is true when the attestation is valid under it and signs the manifest and the
summary (so the row is signed content); ``evidence verify STORE`` re-hashes every file.
Bundles without a summary (collected before it existed) are evaluated on the fly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evidence.archive.summary import SUMMARY
from evidence.bundle import ATTESTATION_FILES, MANIFEST, manifest_from_json
from evidence.errors import BundleError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

    from evidence.archive.store import Store, StoredBundle

OUTCOME_CHOICES = ("promoted", "rolled_back", "failed", "in_progress", "unknown")

#: History columns: (JSON name, SQL expression over the summaries ``s`` joined with ``m``).
ROW_COLUMNS: tuple[tuple[str, str], ...] = (
    ("cluster", "s.cluster_name"),
    ("namespace", "s.canary_namespace"),
    ("canary", "s.canary_name"),
    ("rolloutStart", "strftime(s.rollout_start AT TIME ZONE 'UTC', '%Y-%m-%dT%H:%M:%SZ')"),
    ("durationSeconds", "s.duration_seconds"),
    ("outcome", "s.outcome"),
    ("verdict", "s.verdict"),
    ("maxWeight", "s.max_weight"),
    ("failedChecks", "s.failed_checks"),
    ("detectionLagSeconds", "s.detection_lag_seconds"),
    ("canaryRequests", "s.canary_requests"),
    ("canaryErrors", "s.canary_errors"),
    ("signed", "s.signed"),
    ("verified", "s.verified"),
    ("bundleId", "s.bundle_id"),
    ("location", "s.location"),
)


@dataclass
class Ledger:
    """The checked summaries of an archive, ready for DuckDB."""

    store: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    bundles_seen: int = 0


def _signed_digests(store: Store, entry: StoredBundle, public: EllipticCurvePublicKey) -> dict[str, str] | None:
    """Return the subject digests of a valid attestation under the key, or None."""
    from evidence.archive.sign import INTOTO_FILE, parse_envelope, signature_valid
    from evidence.errors import StoreError

    try:
        lines = store.read_file(entry, INTOTO_FILE).decode("utf-8").splitlines()
        env = parse_envelope(json.loads(lines[0]), INTOTO_FILE)
        if not signature_valid(env, public):
            return None
        st = json.loads(env.payload)
        return {str(s["name"]): str(s["digest"]["sha256"]) for s in st["subject"]}
    except (StoreError, ValueError, KeyError, TypeError, IndexError):
        return None


def _check_entry(store: Store, entry: StoredBundle, public: EllipticCurvePublicKey | None) -> tuple[bytes, dict[str, Any]]:
    """Return an entry's summary bytes and its ledger metadata; raise ValueError naming the problem."""
    from evidence.bundle import manifest_problem, self_hash_problem
    from evidence.errors import StoreError

    try:
        raw = store.read_file(entry, MANIFEST)
    except StoreError as exc:
        raise ValueError(str(exc)) from None
    problem = self_hash_problem(raw)
    if problem:
        raise ValueError(problem)
    manifest = json.loads(raw)
    problem = manifest_problem(manifest)
    if problem:
        raise ValueError(problem)
    listed = manifest_from_json(manifest).files.get(SUMMARY)
    if not isinstance(listed, dict):
        raise LookupError("no summary")
    try:
        data = store.read_file(entry, SUMMARY)
    except StoreError as exc:
        raise ValueError(str(exc)) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != listed.get("sha256"):
        raise ValueError(f"{SUMMARY} differs from the manifest (sha256 mismatch)")
    signed = any(n in entry.files for n in ATTESTATION_FILES)
    verified: bool | None = None
    if public is not None:
        subjects = _signed_digests(store, entry, public) if signed else None
        manifest_digest = hashlib.sha256(raw).hexdigest()
        verified = bool(subjects) and subjects.get(MANIFEST) == manifest_digest and subjects.get(SUMMARY) == digest  # type: ignore[union-attr]
    return data, {"location": entry.location, "signed": signed, "verified": verified}


def collect_ledger(store: Store, key: str | Path | None = None) -> Ledger:
    """Return the archive's checked summary rows and the warnings for bad bundles."""
    from evidence.archive.sign import load_public_key
    from evidence.archive.summary import summary_fields

    public = load_public_key(key) if key is not None else None
    ledger = Ledger(store.url)
    for entry in store.bundles():
        ledger.bundles_seen += 1
        try:
            data, meta = _check_entry(store, entry, public)
            row = summary_fields(data, entry.location)
        except LookupError:
            row, meta = _evaluated_summary(store, entry), {"location": entry.location, "signed": False, "verified": None}
        except (ValueError, BundleError) as exc:
            ledger.warnings.append(f"skipped {entry.location}: {str(exc).removeprefix(entry.location + ': ')}")
            continue
        ledger.rows.append(row | meta)
    return ledger


def _evaluated_summary(store: Store, entry: StoredBundle) -> dict[str, Any]:
    """Return a summary computed now for a bundle collected before summaries existed."""
    from evidence.archive.summary import bundle_summary, summary_json
    from evidence.bundle import read_bundle

    with store.local_copy(entry) as local:
        return dict(json.loads(summary_json(bundle_summary(local, read_bundle(local).manifest))))


def connect(ledger: Ledger) -> Any:
    """Return a DuckDB connection with the table ``s``: the summaries with ``location``, ``signed``, ``verified``."""
    import duckdb

    from evidence.archive.summary import summary_sql_columns

    columns = summary_sql_columns() | {"location": "VARCHAR", "signed": "BOOLEAN", "verified": "BOOLEAN"}
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    # One JSON-lines file of the checked rows: DuckDB reads it in one scan, with the types given.
    with tempfile.TemporaryDirectory(prefix="evidence-ledger-") as tmp:
        path = Path(tmp) / "summaries.jsonl"
        with path.open("w", encoding="utf-8") as f:
            for row in ledger.rows:
                f.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
        spec = "{" + ", ".join(f"'{k}': '{v}'" for k, v in columns.items()) + "}"
        con.execute(
            f"CREATE TEMP TABLE s AS SELECT * FROM read_json(?, format = 'newline_delimited', columns = {spec})", [str(path)]
        )
    return con


@dataclass(frozen=True)
class Filters:
    """Which rollouts ``history`` shows."""

    namespace: str | None = None
    canary: str | None = None
    since: dt.datetime | None = None
    outcome: str | None = None

    def sql(self) -> tuple[str, list[Any]]:
        """Return a WHERE clause and its parameters."""
        where: list[str] = ["TRUE"]
        params: list[Any] = []
        for col, value in (("s.canary_namespace", self.namespace), ("s.canary_name", self.canary), ("s.outcome", self.outcome)):
            if value is not None:
                where.append(f"{col} = ?")
                params.append(value)
        if self.since is not None:
            where.append("s.rollout_start >= ?")
            params.append(self.since)
        return " AND ".join(where), params


def history_rows(con: Any, filters: Filters) -> list[dict[str, Any]]:
    """Return one row per rollout, oldest first."""
    where, params = filters.sql()
    cols = ", ".join(f'{expr} AS "{name}"' for name, expr in ROW_COLUMNS)
    sql = f"SELECT {cols} FROM s WHERE {where} ORDER BY s.rollout_start, s.bundle_id"
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def history(store: Store, filters: Filters, key: str | Path | None = None, summary: bool = False) -> dict[str, Any]:
    """Return the archive's history (kind ``History``) or its fleet figures (kind ``FleetSummary``)."""
    from evidence.archive.fleet import fleet_summary
    from evidence.extras import require_extra

    require_extra("archive", "evidence history", ("duckdb",))

    ledger = collect_ledger(store, key)
    con = connect(ledger)
    try:
        body: dict[str, Any] = (
            {"kind": "FleetSummary", "groups": fleet_summary(con, filters)}
            if summary
            else {"kind": "History", "rollouts": history_rows(con, filters)}
        )
    finally:
        con.close()
    return {
        "apiVersion": "evidence/v1",
        **body,
        "store": ledger.store,
        "bundles": ledger.bundles_seen,
        "skipped": len(ledger.warnings),
        "warnings": ledger.warnings,
    }
