"""Verification that proves: every problem of a bundle, its signature under a key, a whole archive.

``check_bundle`` lists every integrity problem (not only the first), pins the manifest with
``expect_sha256``, and with a public key requires a valid signature whose subjects match the
files (so an attestation copied onto another, self-consistent bundle fails).  Without a key the
result says ``unsigned`` or ``signed, not checked``.  ``check_store`` does that for every
bundle of an archive.  ``bundle.verify_bundle`` stays the integrity check of record: it runs
too, so its rules hold here as well.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evidence.archive.sign import check_attestation, load_public_key, read_envelopes
from evidence.bundle import ATTESTATION_FILES, MANIFEST, read_bundle, sha256_file, verify_bundle
from evidence.errors import BundleError, UsageError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

    from evidence.archive.store import Store, StoredBundle

UNSIGNED, NOT_CHECKED, VALID, INVALID = "unsigned", "signed, not checked (pass --key)", "valid", "invalid"
_SELF_HASH = re.compile(rb'"self_sha256": "([0-9a-f]{64})"')


@dataclass
class BundleCheck:
    """What verification found in one bundle."""

    location: str
    bundle_id: str | None = None
    manifest_sha256: str | None = None
    files: int = 0
    bytes: int = 0
    signature: str = UNSIGNED
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        """Return the check as JSON values (kind ``Verification``)."""
        return {
            "location": self.location,
            "ok": self.ok,
            "bundleId": self.bundle_id,
            "manifestSha256": self.manifest_sha256,
            "files": self.files,
            "bytes": self.bytes,
            "signature": self.signature,
            "problems": list(self.problems),
        }


def self_hash_problem(raw: bytes) -> str | None:
    """Return why a manifest's bytes do not match its own ``self_sha256``, or None."""
    found = _SELF_HASH.findall(raw)
    if len(found) != 1:
        return f"{MANIFEST} carries no self_sha256; it was altered or not written by evidence"
    zeroed = raw.replace(b'"self_sha256": "' + found[0] + b'"', b'"self_sha256": "' + b"0" * 64 + b'"')
    if hashlib.sha256(zeroed).hexdigest().encode() != found[0]:
        return f"{MANIFEST} differs from what was written (self_sha256 mismatch)"
    return None


def _integrity_problems(path: Path, files: dict[str, dict[str, Any]], digests: dict[str, str]) -> tuple[list[str], int]:
    """Return every mismatch between the files and the manifest, and the bytes read; fill ``digests``."""
    problems: list[str] = []
    raw = (path / MANIFEST).read_bytes()
    problem = self_hash_problem(raw)
    if problem:
        problems.append(problem)
    total = len(raw)
    for name in sorted(files):
        f = path / name
        info = files[name] if isinstance(files[name], dict) else {}
        if "/" in name or "\\" in name or name.startswith(".") or not f.is_file():
            problems.append(f"{name} is missing (listed in the manifest)")
            continue
        size = f.stat().st_size
        total += size
        digests[name] = sha256_file(f)
        if size != info.get("bytes"):
            problems.append(f"{name} differs from the manifest (size {size}, expected {info.get('bytes')})")
        elif digests[name] != info.get("sha256"):
            problems.append(f"{name} differs from the manifest (sha256 mismatch)")
    for f in sorted(path.rglob("*")):
        rel = f.relative_to(path).as_posix()
        if f.is_symlink() or not (f.is_file() or f.is_dir()):
            problems.append(f"{rel} is not a regular file (extra entry)")
        elif f.is_file() and rel != MANIFEST and rel not in files and rel not in ATTESTATION_FILES:
            problems.append(f"{rel} is not listed in the manifest (extra file)")
        elif f.is_dir() and not any(f.iterdir()):
            problems.append(f"{rel}/ is an empty folder that is not part of the bundle (extra entry)")
    return problems, total


def check_bundle(
    path: str | Path,
    key: str | Path | None = None,
    expect_sha256: str | None = None,
    location: str | None = None,
    public: EllipticCurvePublicKey | None = None,
) -> BundleCheck:
    """Verify one bundle folder; return every problem found (none: it verifies).

    ``key`` is a public key file; ``public`` the same key already loaded (for many bundles).
    """
    p = Path(path)
    result = BundleCheck(location or str(p))
    if expect_sha256 is not None and not re.fullmatch(r"[0-9a-fA-F]{64}", expect_sha256):
        raise UsageError(f"--expect-sha256 {expect_sha256!r}: give the manifest's sha256 as 64 hex digits")
    if public is None and key is not None:
        public = load_public_key(key)
    try:
        b = read_bundle(p)
    except BundleError as exc:
        result.problems.append(str(exc).removeprefix(f"{p}: "))
        return result
    result.bundle_id = b.record.bundle_id
    result.manifest_sha256 = sha256_file(p / MANIFEST)
    result.files = len(b.record.files)
    digests = {MANIFEST: result.manifest_sha256}
    problems, result.bytes = _integrity_problems(p, b.record.files, digests)
    result.problems.extend(problems)
    if not problems:
        try:
            verify_bundle(p)  # the integrity check of record; its rules may be stricter than the loop above
        except BundleError as exc:
            result.problems.append(str(exc).removeprefix(f"{p}: "))
    if expect_sha256 is not None and result.manifest_sha256 != expect_sha256.lower():
        result.problems.append(f"{MANIFEST} sha256 is {result.manifest_sha256}, not the expected {expect_sha256.lower()}")
    signed = any((p / n).is_file() for n in ATTESTATION_FILES)
    if public is None:
        result.signature = NOT_CHECKED if signed else UNSIGNED
        if signed:
            try:
                read_envelopes(p)
            except (OSError, ValueError) as exc:
                result.problems.append(f"the attestation is malformed: {exc}")
        return result
    bad = check_attestation(p, public, digests)
    result.signature = VALID if not bad else (UNSIGNED if not signed else INVALID)
    result.problems.extend(bad)
    return result


@dataclass
class StoreCheck:
    """What verification found in every bundle of an archive."""

    store: str
    bundles: list[BundleCheck]

    @property
    def ok(self) -> bool:
        return all(b.ok for b in self.bundles)

    def to_json(self) -> dict[str, Any]:
        """Return the check as JSON values (kind ``ArchiveVerification``)."""
        return {
            "store": self.store,
            "ok": self.ok,
            "bundles": len(self.bundles),
            "bad": sum(not b.ok for b in self.bundles),
            "bytes": sum(b.bytes for b in self.bundles),
            "results": [b.to_json() for b in self.bundles],
        }


def iter_checks(store: Store, key: str | Path | None = None, workers: int | None = None) -> Iterator[BundleCheck]:
    """Yield the check of every complete bundle in a store, in the store's order (a few at a time)."""
    from concurrent.futures import ThreadPoolExecutor

    public = load_public_key(key) if key is not None else None  # a bad key is one error, not one per bundle

    def one(entry: StoredBundle) -> BundleCheck:
        with store.local_copy(entry) as local:
            return check_bundle(local, location=entry.location, public=public)

    # Hashing and file reads release the GIL, the rest does not: about one worker per core.
    with ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 1)) as pool:
        yield from pool.map(one, store.bundles())


def check_store(store: Store, key: str | Path | None = None) -> StoreCheck:
    """Verify every bundle of a store."""
    return StoreCheck(store.url, list(iter_checks(store, key)))


def dumps(doc: dict[str, Any]) -> str:
    """Return a JSON document as the CLI prints it."""
    return json.dumps(doc, indent=2, ensure_ascii=False)


def is_store_target(target: str) -> bool:
    """Return whether ``verify TARGET`` names an archive store rather than one bundle."""
    p = Path(target)
    return target.startswith("s3://") or (p.is_dir() and not (p / MANIFEST).exists() and any(p.glob("cluster=*")))
