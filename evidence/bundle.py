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
from evidence.model import (
    Gap,
    GapKind,
    Manifest,
    ManifestCanary,
    Provenance,
    QueryRecord,
    Redaction,
    RolloutSpan,
    ScrapeLabels,
    Window,
    parse_stored_time,
    rfc3339,
)

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


def _fsync(path: Path, directory: bool = False) -> None:
    """Flush a file (or a folder's entries) to disk, so a crash right after the rename keeps it whole."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _output_error(parent: Path, exc: OSError) -> BundleError:
    what = exc.strerror or str(exc)
    return BundleError(f"cannot write the bundle under --out {parent}: {what}; choose a writable folder with free space")


def output_error(parent: Path, exc: OSError) -> BundleError:
    """Return the error of a failed write under ``--out`` (for the streams that build a table beside the writer)."""
    return _output_error(parent, exc)


@dataclass
class BundleWriter:
    """Builds a bundle in a hidden temporary folder; ``commit()`` renames it into place."""

    parent: Path
    name: str
    tmp: Path = field(init=False)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The tables written by ``write_table``, kept so the summary's evaluation need not read them back.
    written: dict[str, pa.Table] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.parent.exists() and not self.parent.is_dir():
            raise BundleError(f"--out {self.parent} is a file; give a folder to put the bundle in")
        try:
            self.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.name}.", suffix=".partial", dir=self.parent))
        except OSError as exc:
            raise _output_error(self.parent, exc) from None

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
        try:
            pq.write_table(arrow, path, compression="zstd", compression_level=3, use_dictionary=True)
            _fsync(path)
        except OSError as exc:
            raise _output_error(self.parent, exc) from None
        self.files[path.name] = {"rows": arrow.num_rows}
        self.written[table] = arrow

    def frames(self) -> dict[str, pd.DataFrame]:
        """Return the written tables as ``Bundle.table`` would read them back (the streamed samples are not among them)."""
        return {name: arrow.to_pandas() for name, arrow in self.written.items()}

    def adopt_table(self, table: str, built: Path, rows: int) -> None:
        """Move in a table's parquet built beside the bundle (``evidence.samplestream``); its schema is checked."""
        import pyarrow.parquet as pq

        problem = schema_problem(table, pq.read_schema(built))
        if problem:
            raise ValueError(f"table {table}: {problem}")
        path = self.tmp / f"{table}.parquet"
        try:
            os.replace(built, path)
            _fsync(path)
        except OSError as exc:
            raise _output_error(self.parent, exc) from None
        self.files[path.name] = {"rows": rows}

    def commit(self, manifest: dict[str, Any]) -> Path:
        """Hash every file, write the manifest, flush, rename into place; return the final path.

        When another writer put the same bundle (same bundle id) in place first, this one's
        temporary folder is dropped and the existing bundle's path returned.
        """
        for name, info in self.files.items():
            p = self.tmp / name
            info["sha256"] = sha256_file(p)
            info["bytes"] = p.stat().st_size
        manifest = dict(manifest, files={k: self.files[k] for k in sorted(self.files)}, self_sha256=_ZERO_HASH)
        text = json.dumps(manifest, indent=2, sort_keys=False, ensure_ascii=False) + "\n"
        # The manifest protects itself: its sha256, computed with this field zeroed, sits in it.
        text = text.replace(f'"self_sha256": "{_ZERO_HASH}"', f'"self_sha256": "{hashlib.sha256(text.encode()).hexdigest()}"')
        final = self.parent / self.name
        try:
            (self.tmp / MANIFEST).write_bytes(text.encode("utf-8"))
            _fsync(self.tmp / MANIFEST)
            os.chmod(self.tmp, 0o755)
            _fsync(self.tmp, directory=True)
            if final.exists():
                return self._existing(final, str(manifest.get("bundle_id")))
            try:
                os.rename(self.tmp, final)
            except OSError:
                if final.exists():  # a concurrent writer won the race
                    return self._existing(final, str(manifest.get("bundle_id")))
                raise
            _fsync(self.parent, directory=True)
        except OSError as exc:
            raise _output_error(self.parent, exc) from None
        return final

    def _existing(self, final: Path, bundle_id: str) -> Path:
        try:
            same = json.loads((final / MANIFEST).read_text(encoding="utf-8")).get("bundle_id") == bundle_id
        except (OSError, ValueError, AttributeError):
            same = False
        if not same:
            raise BundleError(f"{final} already exists and is not this bundle; remove it or choose another --out")
        self.abort()
        return final

    def abort(self) -> None:
        """Remove the temporary folder."""
        shutil.rmtree(self.tmp, ignore_errors=True)


@contextmanager
def bundle_writer(parent: Path, name: str) -> Iterator[BundleWriter]:
    """Yield a writer; on any exception (Ctrl-C and SIGTERM included) leave no trace."""
    w = BundleWriter(parent, name)
    try:
        yield w
    except BaseException:
        w.abort()
        raise
    finally:
        if w.tmp.exists():
            w.abort()


def inside_bundle(path: Path) -> Path | None:
    """Return the bundle folder ``path`` is (or lies inside), if any: outputs must never go there."""
    p = path.resolve()
    for candidate in (p, *p.parents):
        mpath = candidate / MANIFEST
        try:
            if mpath.is_file() and json.loads(mpath.read_text(encoding="utf-8")).get("schema") == SCHEMA:
                return candidate
        except (OSError, ValueError, AttributeError):
            continue
    return None


@dataclass
class Bundle:
    """A bundle on disk, read lazily.

    ``verified`` is True when the bundle was checked against its manifest before use, False
    when it was used although it failed (``--allow-unverified``; ``unverified_reason`` says
    why), None when nobody checked.
    """

    path: Path
    manifest: dict[str, Any]
    _frames: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    verified: bool | None = None
    unverified_reason: str | None = None
    _record: Manifest | None = field(default=None, repr=False)

    @property
    def record(self) -> Manifest:
        """Return the manifest as typed records (read once)."""
        if self._record is None:
            self._record = manifest_from_json(self.manifest)
        return self._record

    @property
    def manifest_sha256(self) -> str:
        return sha256_file(self.path / MANIFEST)

    @property
    def bundle_id(self) -> str:
        return str(self.manifest["bundle_id"])

    def table(self, name: str) -> pd.DataFrame:
        """Return a table as a DataFrame (timestamps tz-aware UTC); its columns are checked against SCHEMAS."""
        if name not in SCHEMAS:
            raise BundleError(f"{self.path}: no table named {name!r}; tables are {', '.join(TABLES)}")
        if name not in self._frames:
            import pyarrow as pa
            import pyarrow.parquet as pq

            p = self.path / f"{name}.parquet"
            if not p.is_file():
                raise BundleError(f"{self.path}: table {name}.parquet is missing; the bundle is incomplete — collect it again")
            try:
                arrow = pq.read_table(p)
            except (OSError, pa.ArrowException, ValueError) as exc:
                raise BundleError(f"{p}: unreadable parquet ({_short(exc)}); run `evidence verify {self.path}`") from None
            problem = schema_problem(name, arrow.schema)
            if problem:
                raise BundleError(f"{p}: {problem}; run `evidence verify {self.path}`")
            self._frames[name] = arrow.to_pandas()
        return self._frames[name]

    def objects(self, kind: str | None = None, role: str | None = None) -> list[dict[str, Any]]:
        """Return the stored objects (parsed JSON), filtered by kind and/or role."""
        df = self.table("objects")
        out = []
        for row in df.itertuples(index=False):
            if (kind is None or row.kind == kind) and (role is None or row.role == role):
                try:
                    body = json.loads(str(row.body))
                except ValueError:
                    raise BundleError(
                        f"{self.path}: objects.parquet holds a body that is not JSON; run `evidence verify`"
                    ) from None
                if isinstance(body, dict):
                    out.append(body)
        return out

    @property
    def canary(self) -> dict[str, Any]:
        """Return the Canary object as collected, every field the analysis reads of the CRD's type (``normalise_canary``)."""
        from evidence.canary import normalise_canary

        found = self.objects(kind="Canary")
        if not found:
            raise BundleError(f"{self.path}: the bundle holds no Canary object")
        return normalise_canary(found[0])[0]


def _short(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


_HEX_ID = re.compile(r"[0-9a-f]{32,64}")


def manifest_problem(manifest: Any) -> str | None:
    """Return why a parsed manifest cannot be a bundle manifest this evidence reads, or None."""
    if not isinstance(manifest, Mapping) or manifest.get("schema") != SCHEMA:
        return f"not an evidence bundle manifest (schema is not {SCHEMA!r})"
    version = manifest.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        return f"schema_version {version!r} is not a version number (an integer from 1); the manifest was altered or not written by evidence"
    if version > SCHEMA_VERSION:
        return f"bundle schema_version {version} is newer than this evidence understands ({SCHEMA_VERSION}); upgrade evidence"
    bid = manifest.get("bundle_id")
    if not isinstance(bid, str) or not _HEX_ID.fullmatch(bid):
        return "the manifest has no valid bundle_id; it was altered or not written by evidence"
    canary = manifest.get("canary")
    if not isinstance(canary, Mapping) or not all(
        isinstance(canary.get(k), str) and canary.get(k) for k in ("namespace", "name")
    ):
        return "the manifest names no canary (canary.namespace and canary.name); it was altered or not written by evidence"
    window = manifest.get("window")
    if not isinstance(window, Mapping) or not isinstance(window.get("start"), str) or not isinstance(window.get("end"), str):
        return "the manifest has no window start/end; it was altered or not written by evidence"
    return None


def read_bundle(path: str | Path) -> Bundle:
    """Open a bundle folder and check its manifest's schema (``check_bundle`` checks its files)."""
    p = Path(path)
    mpath = p / MANIFEST
    if not p.is_dir():
        raise BundleError(f"{p}: not a bundle folder (no such directory)")
    if not mpath.is_file():
        raise BundleError(f"{p}: no {MANIFEST}; this is not a bundle, or an incomplete one")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BundleError(f"{mpath}: unreadable manifest ({_short(exc)})") from None
    problem = manifest_problem(manifest)
    if problem:
        raise BundleError(f"{mpath}: {problem}")
    return Bundle(p, dict(manifest))


def _safe_name(name: Any) -> bool:
    """Return whether a manifest file name stays inside the bundle: relative, no '..', no odd characters."""
    if not isinstance(name, str) or not name or name.startswith("/") or "\\" in name or "\x00" in name:
        return False
    return all(part not in ("", ".", "..") for part in name.split("/")) and name != MANIFEST


def self_hash_problem(raw: bytes) -> str | None:
    """Return why a manifest's bytes do not match its own ``self_sha256``, or None."""
    found = _SELF_HASH.findall(raw.decode("utf-8", errors="replace"))
    if len(found) != 1:
        return f"{MANIFEST} carries no self_sha256; it was altered or not written by evidence"
    zeroed = raw.replace(f'"self_sha256": "{found[0]}"'.encode(), f'"self_sha256": "{_ZERO_HASH}"'.encode())
    if hashlib.sha256(zeroed).hexdigest() != found[0]:
        return f"{MANIFEST} differs from what was written (self_sha256 mismatch)"
    return None


def check_bundle(path: str | Path, digests: dict[str, str] | None = None) -> list[str]:
    """Return every problem of a bundle against its manifest (empty when it verifies).

    ``digests``, when given, receives the sha256 of every listed file that was read.
    """
    try:
        b = read_bundle(path)
    except BundleError as exc:
        return [str(exc)]
    problems: list[str] = []
    problem = self_hash_problem((b.path / MANIFEST).read_bytes())
    if problem:
        problems.append(problem)
    files = b.manifest.get("files")
    if not isinstance(files, Mapping):
        return [*problems, f"{MANIFEST} lists no files; it was altered or not written by evidence"]
    problems.extend(
        f"{t}.parquet is not listed in the manifest (every bundle has it)" for t in TABLES if f"{t}.parquet" not in files
    )
    present: list[str] = []
    for f in sorted(b.path.rglob("*")):
        rel = f.relative_to(b.path).as_posix()
        if f.is_symlink() or not (f.is_file() or f.is_dir()):
            problems.append(f"{rel} is not a regular file (extra entry)")
        elif f.is_dir() and not any(f.iterdir()):
            problems.append(f"{rel}/ is an empty folder that is not part of the bundle (extra entry)")
        elif f.is_file() and rel != MANIFEST:
            present.append(rel)
    for name in sorted(files, key=str):
        problems.extend(_file_problems(b.path, name, files[name], digests))
    problems.extend(
        f"{n} is not listed in the manifest (extra file)" for n in present if n not in files and n not in ATTESTATION_FILES
    )
    return problems


def _file_problems(root: Path, name: Any, info: Any, digests: dict[str, str] | None = None) -> list[str]:
    if not _safe_name(name):
        return [f"the manifest lists {name!r}, a path outside the bundle; it was altered"]
    if not isinstance(info, Mapping) or not isinstance(info.get("bytes"), int) or not isinstance(info.get("sha256"), str):
        return [f"the manifest's entry of {name} has no bytes/sha256; it was altered"]
    f = root / name
    if f.is_symlink() or not f.is_file():
        return [f"{name} is missing (listed in the manifest)"]
    if f.stat().st_size != info["bytes"]:
        return [f"{name} differs from the manifest (size {f.stat().st_size}, expected {info['bytes']})"]
    digest = sha256_file(f)
    if digests is not None:
        digests[name] = digest
    if digest != info["sha256"]:
        return [f"{name} differs from the manifest (sha256 mismatch)"]
    table = name[: -len(".parquet")] if name.endswith(".parquet") else ""
    if table in SCHEMAS:
        problem = _parquet_problem(f, table)
        if problem:
            return [f"{name}: {problem}"]
    return []


def _parquet_problem(path: Path, table: str) -> str | None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException, ValueError) as exc:
        return f"not a readable parquet file ({_short(exc)})"
    return schema_problem(table, schema)


def verify_bundle(path: str | Path) -> dict[str, Any]:
    """Check every file against the manifest; raise VerifyError naming the first problem (and how many more)."""
    problems = check_bundle(path)
    if problems:
        more = f" (and {len(problems) - 1} more problem(s))" if len(problems) > 1 else ""
        raise VerifyError(f"{Path(path)}: {problems[0]}{more}")
    b = read_bundle(path)
    files: Mapping[str, Any] = b.manifest["files"]
    return {"path": str(b.path), "files": len(files), "bundle_id": b.bundle_id, "manifest_sha256": b.manifest_sha256}


def open_bundle(path: str | Path, allow_unverified: bool = False) -> Bundle:
    """Open a bundle for use, verified first: a bundle that fails is refused unless ``allow_unverified``.

    With ``allow_unverified`` the bundle is returned with ``verified`` False and the reason, so
    every output can say UNVERIFIED.
    """
    problems = check_bundle(path)
    b = read_bundle(path)
    if not problems:
        b.verified = True
        return b
    reason = problems[0] + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
    if not allow_unverified:
        raise VerifyError(
            f"{b.path}: the bundle does not verify: {reason}; refusing to use changed evidence — "
            f"run `evidence verify {b.path}`, or pass --allow-unverified to use it anyway, marked UNVERIFIED"
        )
    b.verified, b.unverified_reason = False, reason
    return b


# ----- the manifest as typed records (the one place its keys are spelled) -------------------------

_MANIFEST_KEYS = (
    "schema", "schema_version", "bundle_id", "rollout_id", "cluster", "canary", "window", "rollout", "analysis",
    "collected_at", "tool", "sources", "queries", "gaps", "warnings", "redaction", "counts", "legal_hold", "files",
    "self_sha256",
)  # fmt: skip
_QUERY_KEYS = ("id", "kind", "status", "metric", "query", "purpose", "start", "end")


def _map(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def _str(value: Any) -> str | None:
    return str(value) if value is not None and value != "" else None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _query_from_json(q: Mapping[str, Any]) -> QueryRecord:
    return QueryRecord(
        id=str(q.get("id") or ""),
        kind=str(q.get("kind") or ""),
        status=_str(q.get("status")),
        metric=_str(q.get("metric")),
        promql=_str(q.get("query")),
        purpose=_str(q.get("purpose")),
        start=parse_stored_time(q.get("start")),
        end=parse_stored_time(q.get("end")),
        extra={k: v for k, v in q.items() if k not in _QUERY_KEYS},
    )


def _gap_from_json(g: Mapping[str, Any]) -> Gap:
    kind = str(g.get("kind"))
    return Gap(
        kind=GapKind(kind) if kind in GapKind._value2member_map_ else kind,
        query=_str(g.get("query")),
        start=parse_stored_time(g.get("from")),
        end=parse_stored_time(g.get("to")),
        detail=_str(g.get("detail")),
    )


def _labels_from_json(value: Any) -> ScrapeLabels | None:
    lab = _map(value)
    if not lab:
        return None
    return ScrapeLabels(str(lab.get("service") or ""), str(lab.get("namespace") or ""), str(lab.get("chosen") or ""))


def scrape_labels_to_json(labels: ScrapeLabels) -> dict[str, str]:
    """Return the manifest's ``sources.labels`` record."""
    return {"service": labels.service, "namespace": labels.namespace, "chosen": labels.chosen}


def manifest_from_json(m: Mapping[str, Any]) -> Manifest:
    """Return a manifest's typed records; a malformed field reads as absent (``read_bundle`` has checked the essentials)."""
    can, win, roll, ana, src, red = (_map(m.get(k)) for k in ("canary", "window", "rollout", "analysis", "sources", "redaction"))
    ws, we = parse_stored_time(win.get("start")), parse_stored_time(win.get("end"))
    threshold = ana.get("threshold")
    return Manifest(
        schema=str(m.get("schema")),
        schema_version=int(m.get("schema_version") or 0),
        bundle_id=m["bundle_id"] if isinstance(m.get("bundle_id"), str) else "",
        rollout_id=_str(m.get("rollout_id")),
        cluster={str(k): str(v) for k, v in _map(m.get("cluster")).items()},
        canary=ManifestCanary(
            str(can.get("namespace") or ""),
            str(can.get("name") or ""),
            _str(can.get("target")),
            _str(can.get("service")),
            can.get("port") if isinstance(can.get("port"), int) else None,
        ),
        window=Window(ws, we) if ws is not None and we is not None else None,
        window_chosen=_str(win.get("chosen")),
        rollout=RolloutSpan(
            parse_stored_time(roll.get("start")),
            parse_stored_time(roll.get("end")),
            _str(roll.get("detected_from")),
            bool(roll.get("in_progress")),
        ),
        interval_seconds=_num(ana.get("interval_seconds")),
        threshold=threshold if isinstance(threshold, int) and not isinstance(threshold, bool) else None,
        collected_at=parse_stored_time(m.get("collected_at")),
        tool={str(k): str(v) for k, v in _map(m.get("tool")).items()},
        sources=Provenance(
            _map(src.get("kubernetes")),
            _map(src.get("prometheus")),
            _map(src.get("events")),
            _labels_from_json(src.get("labels")),
        ),
        queries=tuple(_query_from_json(q) for q in m.get("queries") or [] if isinstance(q, Mapping)),
        gaps=tuple(_gap_from_json(g) for g in m.get("gaps") or [] if isinstance(g, Mapping)),
        warnings=tuple(str(w) for w in m.get("warnings") or []),
        redaction=Redaction(
            int(red.get("total") or 0),
            int(red.get("listed") or 0),
            dict(_map(red.get("by_action"))),
            tuple(_map(i) for i in red.get("items") or []),
        )
        if "redaction" in m
        else None,
        counts={str(k): int(v) for k, v in _map(m.get("counts")).items() if isinstance(v, int)},
        legal_hold=bool(m.get("legal_hold", False)),
        files={str(k): _map(v) for k, v in _map(m.get("files")).items()},
        self_sha256=_str(m.get("self_sha256")),
        extra={k: v for k, v in m.items() if k not in _MANIFEST_KEYS},
    )


def _query_to_json(q: QueryRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"id": q.id, "purpose": q.purpose, "query": q.promql, "kind": q.kind}
    out |= {"start": rfc3339(q.start), "end": rfc3339(q.end), "status": q.status}
    if q.metric is not None:
        out["metric"] = q.metric
    return out | q.extra


def _gap_to_json(g: Gap) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": str(g.kind), "query": g.query}
    if g.start is not None or g.end is not None:
        out |= {"from": rfc3339(g.start), "to": rfc3339(g.end)}
    return out | {"detail": g.detail}


def manifest_to_json(m: Manifest) -> dict[str, Any]:
    """Return the manifest.json document of typed records (the inverse of ``manifest_from_json``)."""
    c = m.canary
    out: dict[str, Any] = {
        "schema": m.schema,
        "schema_version": m.schema_version,
        "bundle_id": m.bundle_id,
        "rollout_id": m.rollout_id,
        "cluster": m.cluster,
        "canary": {"namespace": c.namespace, "name": c.name, "target": c.target, "service": c.service, "port": c.port},
        "window": {
            "start": rfc3339(m.window.start if m.window else None),
            "end": rfc3339(m.window.end if m.window else None),
            "chosen": m.window_chosen,
        },
        "rollout": {
            "start": rfc3339(m.rollout.start),
            "end": rfc3339(m.rollout.end),
            "detected_from": m.rollout.detected_from,
            "in_progress": m.rollout.in_progress,
        },
        "analysis": {"interval_seconds": m.interval_seconds, "threshold": m.threshold},
        "collected_at": rfc3339(m.collected_at),
        "tool": m.tool,
        "sources": {"kubernetes": m.sources.kubernetes, "prometheus": m.sources.prometheus, "events": m.sources.events}
        | ({"labels": scrape_labels_to_json(m.sources.labels)} if m.sources.labels is not None else {}),
        "queries": [_query_to_json(q) for q in m.queries],
        "gaps": [_gap_to_json(g) for g in m.gaps],
        "warnings": list(m.warnings),
    }
    if m.redaction is not None:
        r = m.redaction
        out["redaction"] = {"total": r.total, "listed": r.listed, "by_action": r.by_action, "items": list(r.items)}
    out |= {"counts": m.counts, "legal_hold": m.legal_hold, "files": m.files}
    if m.self_sha256 is not None:
        out["self_sha256"] = m.self_sha256
    return out | m.extra


def grouped_gaps(manifest: Manifest) -> list[dict[str, Any]]:
    """Return the manifest's gaps grouped per kind and query, each with where it lies in time.

    A long window can fail in many chunks of one query; a reader wants one line per query
    saying which time ranges are missing, not a line per chunk.
    """
    groups: dict[tuple[str, str], list[Gap]] = {}
    order: list[tuple[str, str]] = []
    for i, g in enumerate(manifest.gaps):
        key = (str(g.kind), str(g.query or f"#{i}"))
        if key not in groups:
            groups[key] = []
            order.append(key)
        groups[key].append(g)
    out = []
    for kind, query in order:
        items = groups[(kind, query)]
        ranges = [(str(rfc3339(g.start)), str(rfc3339(g.end))) for g in items if g.start and g.end]
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
                "detail": items[0].detail or "",
                "count": len(items),
            }
        )
    return out
