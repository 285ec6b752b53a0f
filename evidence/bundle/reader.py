"""Reading a bundle, and checking it against its manifest (``check_bundle``: the one integrity check)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evidence.bundle.footer import FooterError, read_footer
from evidence.bundle.layout import (
    ATTESTATION_FILES,
    MANIFEST,
    SCHEMA,
    SCHEMAS,
    TABLES,
    footer_problem,
    schema_problem,
    sha256_file,
)
from evidence.bundle.manifest import manifest_from_json, manifest_problem, self_hash_problem
from evidence.errors import BundleError, VerifyError
from evidence.model import Manifest

if TYPE_CHECKING:
    import pandas as pd


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
    _samples: tuple[Any, Any, Any] | None = field(default=None, repr=False)

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
        if name not in self._frames:
            self._frames[name] = self._arrow(name).to_pandas()
        return self._frames[name]

    def sample_arrays(self, series_ids: Any = None) -> tuple[Any, Any, Any]:
        """Return the samples table as numpy arrays (series ids, int64 epoch ms, float64 values), without a pandas frame.

        A long window's samples as a frame cost about ten times their own 20 bytes each; the
        counter arithmetic needs only these three arrays.  With ``series_ids``, only those
        series' samples (in the table's order), read a row group at a time: the peak is what is
        kept and one group, not the window (``evidence show`` and collect's summary need only
        Flagger's gauges); row groups whose footer statistics exclude the ids are not read.
        """
        if series_ids is not None:
            return self._read_samples(series_ids)
        if self._samples is None:
            self._samples = self._read_samples()
        return self._samples

    def sample_rows(self) -> int:
        """Return the number of samples, from the samples table's footer."""
        return int(self._parquet("samples").metadata.num_rows)

    def sample_counts(self) -> dict[int, int]:
        """Return each series id's number of samples, reading only the ``series_id`` column a row group at a time."""
        import numpy as np
        import pyarrow as pa

        f = self._parquet("samples")
        counts: dict[int, int] = {}
        for i in range(f.metadata.num_row_groups):
            try:
                column = f.read_row_group(i, columns=["series_id"]).column("series_id").to_numpy()
            except (OSError, pa.ArrowException, ValueError) as exc:
                raise self._unreadable(exc) from None
            ids, n = np.unique(column, return_counts=True)
            for sid, k in zip(ids.tolist(), n.tolist(), strict=True):
                counts[sid] = counts.get(sid, 0) + k
        return counts

    def _read_samples(self, series_ids: Any = None) -> tuple[Any, Any, Any]:
        import numpy as np
        import pyarrow as pa

        from evidence.arrays import distinct

        f = self._parquet("samples")
        n = f.metadata.num_rows
        wanted = None if series_ids is None else distinct(np.asarray(series_ids, dtype=np.int64))
        if wanted is None:
            sid, ms, value = np.empty(n, dtype=np.int32), np.empty(n, dtype=np.int64), np.empty(n, dtype=np.float64)
        parts: list[tuple[Any, Any, Any]] = []
        at = 0
        # One row group at a time into arrays of the final size: the peak is the arrays and one group.
        for i in range(f.metadata.num_row_groups):
            k = f.metadata.row_group(i).num_rows
            if wanted is not None and (wanted.size == 0 or not _may_hold(f.metadata.row_group(i), wanted)):
                at += k
                continue
            try:
                group = f.read_row_group(i, columns=["series_id", "timestamp", "value"])
            except (OSError, pa.ArrowException, ValueError) as exc:
                raise self._unreadable(exc) from None
            k = group.num_rows
            if at + k > n:
                raise self._unreadable(ValueError("more rows than its footer says"))
            g_sid = group.column("series_id").to_numpy()
            g_ms = group.column("timestamp").cast(pa.int64()).to_numpy()
            g_value = group.column("value").to_numpy()
            if wanted is None:
                sid[at : at + k], ms[at : at + k], value[at : at + k] = g_sid, g_ms, g_value
            else:
                keep = _member(g_sid, wanted)
                parts.append((g_sid[keep].astype(np.int32), g_ms[keep], g_value[keep]))
            at += k
            del group, g_sid, g_ms, g_value
        if at != n:
            raise self._unreadable(ValueError("fewer rows than its footer says"))
        if wanted is None:
            return sid, ms, value
        if not parts:
            return np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        return tuple(np.concatenate([p[j] for p in parts]) for j in range(3))  # type: ignore[return-value]

    def _parquet(self, name: str) -> Any:
        """Return a table's parquet file opened (its footer read), its columns checked against SCHEMAS."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        p = self._table_path(name)
        try:
            f = pq.ParquetFile(p)
        except (OSError, pa.ArrowException, ValueError) as exc:
            raise self._unreadable(exc, p) from None
        problem = schema_problem(name, f.schema_arrow)
        if problem:
            raise BundleError(f"{p}: {problem}; run `evidence verify {self.path}`")
        return f

    def _table_path(self, name: str) -> Path:
        if name not in SCHEMAS:
            raise BundleError(f"{self.path}: no table named {name!r}; tables are {', '.join(TABLES)}")
        p = self.path / f"{name}.parquet"
        if not p.is_file():
            raise BundleError(f"{self.path}: table {name}.parquet is missing; the bundle is incomplete — collect it again")
        return p

    def _unreadable(self, exc: BaseException, p: Path | None = None) -> BundleError:
        return BundleError(
            f"{p or self.path / 'samples.parquet'}: unreadable parquet ({_short(exc)}); restore the bundle from its archive "
            f"or collect it again (`evidence verify {self.path}` names any file that differs from its manifest)"
        )

    def _arrow(self, name: str) -> Any:
        """Return a table as read by pyarrow, its columns checked against SCHEMAS."""
        import pyarrow as pa

        f = self._parquet(name)
        try:
            return f.read()
        except (OSError, pa.ArrowException, ValueError) as exc:
            raise self._unreadable(exc, self._table_path(name)) from None

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
    # The footer alone, without pyarrow: verify stays light (evidence.bundle.footer says what it cannot see).
    try:
        footer = read_footer(path)
    except (OSError, FooterError) as exc:
        return f"not a readable parquet file ({_short(exc)})"
    return footer_problem(table, footer.columns)


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


def _may_hold(row_group: Any, wanted: Any) -> bool:
    """Whether a row group's ``series_id`` statistics (min, max) leave room for one of ``wanted`` (sorted)."""
    import numpy as np

    for j in range(row_group.num_columns):
        col = row_group.column(j)
        if col.path_in_schema != "series_id":
            continue
        stats = col.statistics
        if stats is None or not stats.has_min_max:
            return True
        lo = int(np.searchsorted(wanted, int(stats.min), side="left"))
        return lo < wanted.size and int(wanted[lo]) <= int(stats.max)
    return True


def _member(values: Any, wanted: Any) -> Any:
    """Return which of ``values`` are in ``wanted`` (sorted, distinct): a lookup table when the ids are small."""
    import numpy as np

    if values.size and wanted.size and int(values.min()) >= 0 and 0 <= int(wanted[0]):
        top = max(int(values.max()), int(wanted[-1]))
        if top < (1 << 24):
            table = np.zeros(top + 1, dtype=bool)
            table[wanted] = True
            return table[values]
    return np.isin(values, wanted)
