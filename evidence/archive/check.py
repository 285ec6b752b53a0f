"""Verification that proves: every problem of a bundle, its signature under a key, a whole archive.

``check_bundle`` lists every integrity problem (not only the first), pins the manifest with
``expect_sha256``, and with a public key requires a valid signature whose subjects match the
files (so an attestation copied onto another, self-consistent bundle fails).  Without a key the
result says ``unsigned`` or ``signed, not checked``.  ``check_store`` does that for every
bundle of an archive.  The file checks are ``bundle.check_bundle``'s, the one integrity check.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evidence.archive.sign import check_attestation, load_public_key, read_envelopes
from evidence.bundle import ATTESTATION_FILES, MANIFEST, read_bundle, sha256_file
from evidence.bundle import check_bundle as bundle_problems
from evidence.errors import BundleError, UsageError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey

    from evidence.archive.store import Store, StoredBundle

UNSIGNED, NOT_CHECKED, VALID, INVALID = "unsigned", "signed, not checked (pass --key)", "valid", "invalid"


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
    result.problems.extend(bundle_problems(p, digests))  # the integrity check of record, every problem
    result.bytes = (p / MANIFEST).stat().st_size + sum((p / n).stat().st_size for n in digests if n != MANIFEST)
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
