"""Writing a bundle atomically: a hidden temporary folder, fsynced, renamed into place."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evidence.bundle.layout import _ZERO_HASH, MANIFEST, arrow_schema, schema_problem, sha256_file
from evidence.bundle.manifest import manifest_to_json
from evidence.errors import BundleError
from evidence.model import Manifest

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa


def _fsync(path: Path, directory: bool = False) -> None:
    """Flush a file (or a folder's entries) to disk, so a crash right after the rename keeps it whole."""
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def output_error(parent: Path, exc: OSError) -> BundleError:
    """Return the error of a failed write under ``--out`` (also for the streams that build a table beside the writer)."""
    what = exc.strerror or str(exc)
    return BundleError(f"cannot write the bundle under --out {parent}: {what}; choose a writable folder with free space")


def _flush_and_hash(path: Path) -> tuple[str, int]:
    """Flush a finished file to disk; return its sha256 and size."""
    _fsync(path)
    return sha256_file(path), path.stat().st_size


@dataclass
class BundleWriter:
    """Builds a bundle in a hidden temporary folder; ``commit()`` renames it into place.

    Each finished file is flushed to disk and hashed by one background thread (``sealed``), so
    the caller goes on meanwhile (collect evaluates the rollout for its summary): the disk and
    the hash take no turn on the critical path, and no file is hashed twice.
    """

    parent: Path
    name: str
    tmp: Path = field(init=False)
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: The tables written by ``write_table``, kept so the summary's evaluation need not read them back.
    written: dict[str, pa.Table] = field(default_factory=dict, repr=False)
    _seals: dict[str, Future[tuple[str, int]]] = field(default_factory=dict, init=False, repr=False)
    _sealer: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.parent.exists() and not self.parent.is_dir():
            raise BundleError(f"--out {self.parent} is a file; give a folder to put the bundle in")
        try:
            self.parent.mkdir(parents=True, exist_ok=True)
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.name}.", suffix=".partial", dir=self.parent))
        except OSError as exc:
            raise output_error(self.parent, exc) from None

    def write_table(self, table: str, frame: pd.DataFrame | pa.Table) -> None:
        """Write one table (a frame, or an arrow table of exactly its schema) as zstd parquet with its fixed schema."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = arrow_schema(table)
        if isinstance(frame, pa.Table):
            if not frame.schema.equals(schema):
                raise ValueError(f"table {table}: {schema_problem(table, frame.schema) or 'columns out of order'}")
            arrow = frame
        else:
            missing = [c for c in schema.names if c not in frame.columns]
            if missing:
                raise ValueError(f"table {table}: missing columns {missing}")
            arrow = pa.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)
        path = self.tmp / f"{table}.parquet"
        try:
            pq.write_table(arrow, path, compression="zstd", compression_level=3, use_dictionary=True)
        except OSError as exc:
            raise output_error(self.parent, exc) from None
        self._seal(path.name, arrow.num_rows)
        self.written[table] = arrow

    def write_bytes(self, name: str, data: bytes, rows: int) -> None:
        """Write one file of the bundle that is not a table (``summary.json``, ``SHA256SUMS``)."""
        try:
            (self.tmp / name).write_bytes(data)
        except OSError as exc:
            raise output_error(self.parent, exc) from None
        self._seal(name, rows)

    def _seal(self, name: str, rows: int) -> None:
        """List a finished file and start flushing and hashing it in the background."""
        if self._sealer is None:
            self._sealer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evidence-seal")
        path = self.tmp / name
        self.files[name] = {"rows": rows}
        self._seals[name] = self._sealer.submit(_flush_and_hash, path)

    def sealed(self, name: str) -> tuple[str, int]:
        """Return (sha256, bytes) of a listed file once it is on disk (a file put in ``tmp`` by hand: flushed and hashed now)."""
        seal = self._seals.get(name)
        try:
            return seal.result() if seal is not None else _flush_and_hash(self.tmp / name)
        except OSError as exc:
            raise output_error(self.parent, exc) from None

    def _stop_sealing(self) -> None:
        if self._sealer is not None:
            self._sealer.shutdown(wait=True, cancel_futures=True)
            self._sealer = None

    def frames(self, names: tuple[str, ...] | None = None) -> dict[str, pd.DataFrame]:
        """Return the written tables (those of ``names``) as ``Bundle.table`` would read them back (the streamed samples are not among them)."""
        return {name: arrow.to_pandas() for name, arrow in self.written.items() if names is None or name in names}

    def adopt_table(self, table: str, built: Path, rows: int) -> None:
        """Move in a table's parquet built beside the bundle (``evidence.samplestream``); its schema is checked."""
        import pyarrow.parquet as pq

        problem = schema_problem(table, pq.read_schema(built))
        if problem:
            raise ValueError(f"table {table}: {problem}")
        path = self.tmp / f"{table}.parquet"
        try:
            os.replace(built, path)
        except OSError as exc:
            raise output_error(self.parent, exc) from None
        self._seal(path.name, rows)

    def commit(self, record: Manifest | Mapping[str, Any]) -> Path:
        """Hash every file, write the manifest, flush, rename into place; return the final path.

        ``record`` is the typed manifest (a mapping is written as given: tests forge manifests).

        When another writer put the same bundle (same bundle id) in place first, this one's
        temporary folder is dropped and the existing bundle's path returned.
        """
        for name, info in self.files.items():
            info["sha256"], info["bytes"] = self.sealed(name)
        self._stop_sealing()
        body = manifest_to_json(record) if isinstance(record, Manifest) else dict(record)
        manifest = dict(body, files={k: self.files[k] for k in sorted(self.files)}, self_sha256=_ZERO_HASH)
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
            raise output_error(self.parent, exc) from None
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
        """Remove the temporary folder (after the background flushes: none may run on into a removed file)."""
        self._stop_sealing()
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
