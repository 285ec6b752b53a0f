"""The only reader and writer of bundles: parquet tables, the manifest, verification.

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

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evidence.errors import BundleError, VerifyError

if TYPE_CHECKING:
    import pandas as pd
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


@dataclass
class BundleWriter:
    """Builds a bundle in a hidden temporary folder; ``commit()`` renames it into place."""

    parent: Path
    name: str
    tmp: Path = field(init=False)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.name}.", suffix=".partial", dir=self.parent))

    def write_table(self, table: str, frame: pd.DataFrame) -> None:
        """Write one table as zstd parquet with its fixed schema."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = arrow_schema(table)
        missing = [c for c in schema.names if c not in frame.columns]
        if missing:
            raise ValueError(f"table {table}: missing columns {missing}")
        arrow = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
        path = self.tmp / f"{table}.parquet"
        pq.write_table(arrow, path, compression="zstd", compression_level=3, use_dictionary=True)
        self.files[path.name] = {"rows": arrow.num_rows}

    def commit(self, manifest: dict[str, Any]) -> Path:
        """Hash every file, write the manifest, rename into place; return the final path."""
        for name, info in self.files.items():
            p = self.tmp / name
            info["sha256"] = sha256_file(p)
            info["bytes"] = p.stat().st_size
        manifest = dict(manifest, files={k: self.files[k] for k in sorted(self.files)}, self_sha256=_ZERO_HASH)
        text = json.dumps(manifest, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
        # The manifest protects itself: its sha256, computed with this field zeroed, sits in it.
        text = text.replace(f'"self_sha256": "{_ZERO_HASH}"', f'"self_sha256": "{hashlib.sha256(text.encode()).hexdigest()}"')
        (self.tmp / MANIFEST).write_bytes(text.encode("utf-8"))
        final = self.parent / self.name
        if final.exists():
            raise BundleError(f"{final} already exists; remove it or choose another --out")
        os.chmod(self.tmp, 0o755)
        os.rename(self.tmp, final)
        return final

    def abort(self) -> None:
        """Remove the temporary folder."""
        shutil.rmtree(self.tmp, ignore_errors=True)


@contextmanager
def bundle_writer(parent: Path, name: str) -> Iterator[BundleWriter]:
    """Yield a writer; on any exception (Ctrl-C included) leave no trace."""
    w = BundleWriter(parent, name)
    try:
        yield w
    except BaseException:
        w.abort()
        raise
    finally:
        if w.tmp.exists() and not (parent / name).exists():
            w.abort()


@dataclass
class Bundle:
    """A bundle on disk, read lazily."""

    path: Path
    manifest: dict[str, Any]
    _frames: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def manifest_sha256(self) -> str:
        return sha256_file(self.path / MANIFEST)

    @property
    def bundle_id(self) -> str:
        return str(self.manifest["bundle_id"])

    def table(self, name: str) -> pd.DataFrame:
        """Return a table as a DataFrame (timestamps tz-aware UTC)."""
        if name not in SCHEMAS:
            raise BundleError(f"{self.path}: no table named {name!r}; tables are {', '.join(TABLES)}")
        if name not in self._frames:
            import pyarrow.parquet as pq

            p = self.path / f"{name}.parquet"
            if not p.is_file():
                raise BundleError(f"{self.path}: table {name}.parquet is missing; the bundle is incomplete — collect it again")
            try:
                self._frames[name] = pq.read_table(p).to_pandas()
            except OSError as exc:
                raise BundleError(f"{p}: unreadable parquet ({exc}); run `evidence verify {self.path}`") from None
        return self._frames[name]

    def objects(self, kind: str | None = None, role: str | None = None) -> list[dict[str, Any]]:
        """Return the stored objects (parsed JSON), filtered by kind and/or role."""
        df = self.table("objects")
        out = []
        for row in df.itertuples(index=False):
            if (kind is None or row.kind == kind) and (role is None or row.role == role):
                out.append(json.loads(str(row.body)))
        return out

    @property
    def canary(self) -> dict[str, Any]:
        """Return the Canary object as collected."""
        found = self.objects(kind="Canary")
        if not found:
            raise BundleError(f"{self.path}: the bundle holds no Canary object")
        return found[0]


def read_bundle(path: str | Path) -> Bundle:
    """Open a bundle folder and check its manifest's schema."""
    p = Path(path)
    mpath = p / MANIFEST
    if not p.is_dir():
        raise BundleError(f"{p}: not a bundle folder (no such directory)")
    if not mpath.is_file():
        raise BundleError(f"{p}: no {MANIFEST}; this is not a bundle, or an incomplete one")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BundleError(f"{mpath}: unreadable manifest ({exc})") from None
    if not isinstance(manifest, Mapping) or manifest.get("schema") != SCHEMA:
        raise BundleError(f"{mpath}: not an evidence bundle manifest (schema is not {SCHEMA!r})")
    version = manifest.get("schema_version")
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise BundleError(
            f"{mpath}: bundle schema_version {version} is newer than this evidence understands ({SCHEMA_VERSION}); upgrade evidence"
        )
    return Bundle(p, dict(manifest))


def verify_bundle(path: str | Path) -> dict[str, Any]:
    """Check every file against the manifest; raise VerifyError naming the first mismatch."""
    b = read_bundle(path)
    raw = (b.path / MANIFEST).read_bytes()
    found = _SELF_HASH.findall(raw.decode("utf-8", errors="replace"))
    if len(found) != 1:
        raise VerifyError(f"{b.path}: {MANIFEST} carries no self_sha256; it was altered or not written by evidence")
    zeroed = raw.replace(f'"self_sha256": "{found[0]}"'.encode(), f'"self_sha256": "{_ZERO_HASH}"'.encode())
    if hashlib.sha256(zeroed).hexdigest() != found[0]:
        raise VerifyError(f"{b.path}: {MANIFEST} differs from what was written (self_sha256 mismatch)")
    files: dict[str, Any] = b.manifest.get("files", {})
    present = []
    for f in sorted(b.path.rglob("*")):
        rel = str(f.relative_to(b.path))
        if f.is_symlink() or not (f.is_file() or f.is_dir()):
            raise VerifyError(f"{b.path}: {rel} is not a regular file (extra entry)")
        if f.is_dir() and not any(f.iterdir()):
            raise VerifyError(f"{b.path}: {rel}/ is an empty folder that is not part of the bundle (extra entry)")
        if f.is_file() and rel != MANIFEST:
            present.append(rel)
    for name in sorted(files):
        f = b.path / name
        if not f.is_file():
            raise VerifyError(f"{b.path}: {name} is missing (listed in the manifest)")
        info = files[name]
        if f.stat().st_size != info.get("bytes"):
            raise VerifyError(
                f"{b.path}: {name} differs from the manifest (size {f.stat().st_size}, expected {info.get('bytes')})"
            )
        if sha256_file(f) != info.get("sha256"):
            raise VerifyError(f"{b.path}: {name} differs from the manifest (sha256 mismatch)")
    extra = [n for n in present if n not in files and n not in ATTESTATION_FILES]
    if extra:
        raise VerifyError(f"{b.path}: {extra[0]} is not listed in the manifest (extra file)")
    return {"path": str(b.path), "files": len(files), "bundle_id": b.bundle_id, "manifest_sha256": b.manifest_sha256}


def grouped_gaps(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return the manifest's gaps grouped per kind and query, each with where it lies in time.

    A long window can fail in many chunks of one query; a reader wants one line per query
    saying which time ranges are missing, not a line per chunk.
    """
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    order: list[tuple[str, str]] = []
    for i, g in enumerate(manifest.get("gaps", [])):
        key = (str(g.get("kind")), str(g.get("query") or f"#{i}"))
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(g)
    out = []
    for kind, query in order:
        items = groups[(kind, query)]
        ranges = [(str(g["from"]), str(g["to"])) for g in items if g.get("from") and g.get("to")]
        if not ranges:
            span = ""
        elif len(ranges) <= 3:
            span = ", ".join(f"{a} → {b}" for a, b in ranges)
        else:
            span = f"{len(ranges)} chunks between {ranges[0][0]} and {ranges[-1][1]}"
        name = "" if query.startswith("#") else query
        out.append(
            {
                "kind": kind,
                "where": " ".join(x for x in (name, f"[{span}]" if name and span else span) if x),
                "detail": str(items[0].get("detail") or ""),
                "count": len(items),
            }
        )
    return out
