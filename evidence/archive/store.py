"""Archive stores: a folder or an S3 bucket, one bundle per rollout, complete or absent.

The API an unattended caller (the watcher) uses::

    store = open_store("s3://bucket/prefix" or "/path/to/archive", endpoint=None)
    result = store.put_bundle(local_bundle_dir, supersede=False)   # -> PutResult(location, created)
    store.find(bundle_id)          # -> location of the newest copy, or None
    for entry in store.bundles():  # StoredBundle(location, key, bundle_id, generation), complete ones only
        with store.local_copy(entry) as path: ...
    store.read_file(entry, "summary.json")  # -> bytes
    store.put_reports(location, [report_paths])  # -> the reports' locations, beside the bundle (create-only)

Layout (hive partitions, so DuckDB, Trino, Athena and Spark read it as it is)::

    <root>/cluster=<c>/namespace=<ns>/canary=<name>/date=YYYY-MM-DD/<bundle-id>/<the bundle's files>

Putting a bundle whose id is already stored is a no-op (``created`` false, the existing
location).  With ``supersede`` the old copy stays and the new one goes beside it as
``<bundle-id>.v<N>``, with a record ``<bundle-id>.v<N>.succession.json`` naming both; readers
take the highest generation.  Rendered reports go beside their bundle, never inside it (a bundle
holds only what its manifest lists): ``<bundle folder>.reports/<file>``, each written create-only.  Writes are complete-or-absent: a folder store builds a hidden
temporary folder and renames it; an S3 store uploads every other file first and the manifest
last with a conditional create (``If-None-Match: *``), and readers ignore a bundle without
its manifest.  A failed upload removes what it wrote and never leaves a manifest.  S3
Object Lock retention (``retain_until``, compliance mode) and legal hold (the manifest's
``legal_hold``) apply to every object of the bundle where the bucket supports them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from evidence.archive.summary import ManifestFacts, manifest_facts
from evidence.bundle import MANIFEST, read_bundle, safe_component, verify_bundle
from evidence.errors import StoreError, UsageError

_ENTRY = re.compile(r"^(?P<id>[0-9a-f]{32})(?:\.v(?P<gen>[2-9]|[1-9][0-9]+))?$")
SUCCESSION_SUFFIX = ".succession.json"


@dataclass(frozen=True)
class PutResult:
    """Where a bundle is stored, and whether this put created it."""

    location: str
    created: bool
    supersedes: str | None = None


@dataclass(frozen=True)
class StoredBundle:
    """A complete bundle in a store."""

    location: str  # path or s3:// URL of the bundle folder
    key: str  # its folder relative to the store's root
    bundle_id: str
    generation: int
    files: tuple[str, ...] = ()  # the names found in its folder


class Store(Protocol):
    """What every archive store offers."""

    @property
    def url(self) -> str: ...

    def put_bundle(
        self, local_bundle_dir: Path, supersede: bool = False, retain_until: dt.datetime | None = None
    ) -> PutResult: ...

    def find(self, bundle_id: str) -> str | None: ...

    def bundles(self) -> Iterator[StoredBundle]: ...

    def local_copy(self, entry: StoredBundle) -> AbstractContextManager[Path]: ...

    def read_file(self, entry: StoredBundle, name: str) -> bytes: ...

    def put_reports(self, location: str, files: list[Path]) -> list[str]: ...


REPORTS_SUFFIX = ".reports"


def is_store_url(text: str) -> bool:
    """Return whether ``text`` names an S3 store rather than a folder."""
    return text.startswith("s3://")


def open_store(url_or_path: str | Path, *, endpoint: str | None = None) -> Store:
    """Return the store a folder path or ``s3://BUCKET/PREFIX`` names (credentials from AWS_*)."""
    text = str(url_or_path)
    if is_store_url(text):
        from evidence.archive.s3 import S3ArchiveStore
        from evidence.extras import require_extra

        require_extra("archive", f"the S3 store {text}", ("obstore",))

        return S3ArchiveStore.from_url(text, endpoint=endpoint)
    if endpoint:
        raise UsageError(f"--s3-endpoint is for s3:// stores; {text} is a folder")
    return FolderStore(Path(text))


def partition_key(facts: ManifestFacts) -> str:
    """Return the hive partition folders of a bundle (each value sanitised to one path segment)."""
    return "/".join(
        f"{k}={safe_component(v)}"
        for k, v in (("cluster", facts.cluster), ("namespace", facts.namespace), ("canary", facts.canary), ("date", facts.date))
    )


def entry_name(bundle_id: str, generation: int) -> str:
    """Return the folder name of a bundle's copy of that generation."""
    return bundle_id if generation <= 1 else f"{bundle_id}.v{generation}"


def parse_entry(key: str) -> tuple[str, int] | None:
    """Return (bundle id, generation) of a bundle folder key, or None when it is not one."""
    parts = key.strip("/").split("/")
    if len(parts) < 5 or not all(
        p.split("=", 1)[0] == k for p, k in zip(parts[-5:-1], ("cluster", "namespace", "canary", "date"))
    ):
        return None
    m = _ENTRY.match(parts[-1])
    return (m.group("id"), int(m.group("gen") or 1)) if m else None


def newest(entries: list[StoredBundle]) -> list[StoredBundle]:
    """Return one entry per bundle id: the highest generation (a successor supersedes its predecessor)."""
    best: dict[str, StoredBundle] = {}
    for e in entries:
        if e.bundle_id not in best or e.generation > best[e.bundle_id].generation:
            best[e.bundle_id] = e
    return sorted(best.values(), key=lambda e: e.key)


def succession_record(bundle_id: str, predecessor: str, successor: str) -> bytes:
    """Return the record that a successor supersedes its predecessor."""
    doc = {
        "apiVersion": "evidence/v1",
        "kind": "Succession",
        "bundleId": bundle_id,
        "predecessor": predecessor,
        "successor": successor,
        "recordedAt": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return (json.dumps(doc, indent=2) + "\n").encode()


def prepare_put(local_bundle_dir: Path) -> tuple[ManifestFacts, list[str]]:
    """Verify a local bundle and return its facts and its files (the manifest last)."""
    verify_bundle(local_bundle_dir)
    b = read_bundle(local_bundle_dir)
    facts = manifest_facts(b.manifest)
    names = sorted(f.name for f in b.path.iterdir() if f.is_file() and f.name != MANIFEST)
    return facts, [*names, MANIFEST]


@dataclass
class FolderStore:
    """An archive in a local (or mounted) folder."""

    root: Path

    @property
    def url(self) -> str:
        return str(self.root)

    def _generations(self, facts: ManifestFacts) -> list[int]:
        part = self.root / partition_key(facts)
        if not part.is_dir():
            return []
        found = [parse_entry(f"{partition_key(facts)}/{p.name}") for p in part.iterdir() if (p / MANIFEST).is_file()]
        return sorted(g for f in found if f and f[0] == facts.bundle_id for g in [f[1]])

    def put_bundle(self, local_bundle_dir: Path, supersede: bool = False, retain_until: dt.datetime | None = None) -> PutResult:
        """Copy a verified bundle into the archive; complete or absent."""
        if retain_until is not None:
            raise UsageError(f"--retain-until needs an S3 store with Object Lock; {self.root} is a folder")
        facts, names = prepare_put(Path(local_bundle_dir))
        part = self.root / partition_key(facts)
        gens = self._generations(facts)
        if gens and not supersede:
            return PutResult(str(part / entry_name(facts.bundle_id, gens[-1])), created=False)
        gen = gens[-1] + 1 if gens else 1
        final = part / entry_name(facts.bundle_id, gen)
        try:
            part.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".partial", dir=part))
        except OSError as exc:
            raise StoreError(
                f"cannot write into the archive folder {self.root}: {exc.strerror or exc}; check it exists and is writable"
            ) from None
        try:
            for name in names:
                shutil.copyfile(Path(local_bundle_dir) / name, tmp / name)
            os.chmod(tmp, 0o755)
            os.rename(tmp, final)  # atomic: the bundle appears whole or not at all
        except OSError as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if final.is_dir() and (final / MANIFEST).is_file():  # another writer was first
                return PutResult(str(final), created=False)
            raise StoreError(f"writing {final} failed ({exc.strerror or exc}); nothing was stored") from None
        prev = None
        if gens:
            prev = str(part / entry_name(facts.bundle_id, gens[-1]))
            rec = part / f"{final.name}{SUCCESSION_SUFFIX}"
            rec.write_bytes(succession_record(facts.bundle_id, prev, str(final)))
        return PutResult(str(final), created=True, supersedes=prev)

    def _all(self) -> Iterator[StoredBundle]:
        if not self.root.is_dir():
            raise StoreError(f"archive folder {self.root} does not exist; check the path")
        for m in self.root.glob("cluster=*/namespace=*/canary=*/date=*/*/" + MANIFEST):
            key = m.parent.relative_to(self.root).as_posix()
            parsed = parse_entry(key)
            if parsed:
                yield StoredBundle(str(m.parent), key, parsed[0], parsed[1], tuple(sorted(os.listdir(m.parent))))

    def bundles(self) -> Iterator[StoredBundle]:
        """Yield every complete bundle, newest generation only."""
        yield from newest(list(self._all()))

    def find(self, bundle_id: str) -> str | None:
        """Return the location of the newest copy of a bundle, or None."""
        hits = [e for e in self._all() if e.bundle_id == bundle_id]
        return newest(hits)[0].location if hits else None

    @contextmanager
    def local_copy(self, entry: StoredBundle) -> Iterator[Path]:
        """Yield the bundle's folder itself (no copy is needed)."""
        yield Path(entry.location)

    def read_file(self, entry: StoredBundle, name: str) -> bytes:
        """Return one file of a stored bundle."""
        try:
            return (Path(entry.location) / name).read_bytes()
        except OSError as exc:
            raise StoreError(f"{entry.location}/{name}: {exc.strerror or exc}") from None

    def put_reports(self, location: str, files: list[Path]) -> list[str]:
        """Copy reports beside the bundle at ``location``, create-only (an existing report is kept); return their paths."""
        folder = Path(f"{location}{REPORTS_SUFFIX}")
        out = []
        try:
            folder.mkdir(exist_ok=True)
            for f in files:
                target = folder / f.name
                try:
                    with target.open("xb") as dst:
                        dst.write(f.read_bytes())
                except FileExistsError:
                    pass
                out.append(str(target))
        except OSError as exc:
            raise StoreError(f"writing the reports into {folder} failed ({exc.strerror or exc})") from None
        return out


def parse_retention(text: str | None) -> dt.datetime | None:
    """Return a --retain-until time (RFC 3339 or a date, UTC midnight); it must be in the future."""
    if text is None:
        return None
    from evidence.model import parse_time

    value = f"{text}T00:00:00Z" if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else text
    when = parse_time(value, "--retain-until")
    if when <= dt.datetime.now(dt.UTC):
        raise UsageError(f"--retain-until {text}: the date is in the past; give a future date")
    return when


def collect_into_store(store: Store, collect: Callable[[Path], Path], supersede: bool = False) -> PutResult:
    """Collect a bundle into a temporary folder with ``collect(tmp)``, put it into the store, remove the folder."""
    tmp = Path(tempfile.mkdtemp(prefix="evidence-collect-"))
    try:
        return store.put_bundle(collect(tmp), supersede=supersede)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
