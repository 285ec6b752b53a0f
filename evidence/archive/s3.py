"""The S3 archive store, through ``obstore`` (conditional create, multipart, list).

Endpoint, region and credentials come from the usual variables (``AWS_ACCESS_KEY_ID``,
``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_REGION`` / ``AWS_DEFAULT_REGION``,
``AWS_ENDPOINT_URL``) or ``--s3-endpoint``; an explicit endpoint uses path-style requests.
Requests give up after a few retries within seconds, so a store that vanishes is an error,
not a hang.  See ``store.py`` for the layout and the write order.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from evidence.archive.store import (
    REPORTS_SUFFIX,
    SUCCESSION_SUFFIX,
    PutResult,
    StoredBundle,
    entry_name,
    newest,
    parse_entry,
    partition_key,
    prepare_put,
    succession_record,
)
from evidence.bundle import MANIFEST
from evidence.errors import StoreAuthError, StoreError, UsageError

MULTIPART_BYTES = 64 << 20
ORPHAN_WAIT_S = 60.0  # how long a second writer of one bundle waits for the first one's manifest


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    for marker in ("<Code>", "Server returned non-2xx status code: "):
        if marker in text:
            code = text.split(marker, 1)[1].split("<", 1)[0].split("\n", 1)[0]
            return code.strip()
    return text.splitlines()[0] if text else type(exc).__name__


@dataclass
class S3ArchiveStore:
    """An archive under ``s3://BUCKET/PREFIX``."""

    bucket: str
    prefix: str
    endpoint: str | None = None
    _stores: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_url(cls, url: str, endpoint: str | None = None) -> S3ArchiveStore:
        """Parse ``s3://BUCKET[/PREFIX]``."""
        rest = url.removeprefix("s3://")
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise UsageError(f"{url}: write s3://BUCKET/PREFIX")
        return cls(bucket, prefix.strip("/"), endpoint or os.environ.get("AWS_ENDPOINT_URL") or None)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def _client(self, headers: dict[str, str] | None = None) -> Any:
        """Return an obstore S3Store (one per set of default headers)."""
        key = repr(sorted((headers or {}).items()))
        if key in self._stores:
            return self._stores[key]
        from obstore.store import S3Store

        access = os.environ.get("AWS_ACCESS_KEY_ID")
        secret = os.environ.get("AWS_SECRET_ACCESS_KEY")
        if not access or not secret:
            raise StoreAuthError(f"{self.url}: no credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
        options: dict[str, Any] = {"timeout": dt.timedelta(seconds=60), "connect_timeout": dt.timedelta(seconds=5)}
        config: dict[str, Any] = {
            "access_key_id": access,
            "secret_access_key": secret,
            "region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        }
        if os.environ.get("AWS_SESSION_TOKEN"):
            config["token"] = os.environ["AWS_SESSION_TOKEN"]
        if self.endpoint:
            config["endpoint"] = self.endpoint
            config["virtual_hosted_style_request"] = False
            options["allow_http"] = self.endpoint.startswith("http://")
        if headers:
            options["default_headers"] = headers
            config["checksum_algorithm"] = "sha256"  # S3 requires an integrity checksum with Object Lock
        retry = {"max_retries": 2, "retry_timeout": dt.timedelta(seconds=5)}
        store = S3Store(self.bucket, client_options=options, retry_config=retry, **config)  # type: ignore[arg-type]
        self._stores[key] = store
        return store

    def _key(self, rel: str) -> str:
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def _error(self, exc: BaseException, what: str) -> StoreError:
        """Return the store error for an obstore failure."""
        from obstore.exceptions import PermissionDeniedError, UnauthenticatedError

        reason = _first_line(exc)
        if isinstance(exc, (PermissionDeniedError, UnauthenticatedError)) or reason in (
            "SignatureDoesNotMatch",
            "InvalidAccessKeyId",
            "AccessDenied",
        ):
            return StoreAuthError(
                f"{self.url}: {what} was refused ({reason}); check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY and the bucket policy"
            )
        if reason == "NoSuchBucket":
            return StoreError(f"{self.url}: the bucket {self.bucket!r} does not exist; create it or fix the URL")
        return StoreError(
            f"{self.url}: {what} failed ({reason}); check --s3-endpoint / AWS_ENDPOINT_URL and that the store is up"
        )

    def _list(self, rel_prefix: str) -> list[str]:
        import obstore
        from obstore.exceptions import BaseError

        try:
            pages = obstore.list(self._client(), self._key(rel_prefix) if rel_prefix else (self.prefix or None))
            keys = [str(o["path"]) for page in pages for o in page]
        except BaseError as exc:
            raise self._error(exc, "listing") from None
        cut = len(self.prefix) + 1 if self.prefix else 0
        return [k[cut:] for k in keys]

    def _generations(self, part: str, bundle_id: str) -> list[int]:
        gens = []
        for rel in self._list(part + "/"):
            if rel.endswith("/" + MANIFEST):
                parsed = parse_entry(rel.rsplit("/", 1)[0])
                if parsed and parsed[0] == bundle_id:
                    gens.append(parsed[1])
        return sorted(gens)

    def _location(self, rel: str) -> str:
        return f"s3://{self.bucket}/{self._key(rel)}"

    def put_bundle(self, local_bundle_dir: Path, supersede: bool = False, retain_until: dt.datetime | None = None) -> PutResult:
        """Upload a verified bundle: every file, then the manifest with a conditional create."""
        from obstore.exceptions import AlreadyExistsError, BaseError, PreconditionError

        local = Path(local_bundle_dir)
        facts, names = prepare_put(local)
        part = partition_key(facts)
        gens = self._generations(part, facts.bundle_id)
        if gens and not supersede:
            return PutResult(self._location(f"{part}/{entry_name(facts.bundle_id, gens[-1])}"), created=False)
        headers: dict[str, str] = {}
        if retain_until is not None:
            headers["x-amz-object-lock-mode"] = "COMPLIANCE"
            headers["x-amz-object-lock-retain-until-date"] = retain_until.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if facts.legal_hold:
            headers["x-amz-object-lock-legal-hold"] = "ON"
        client = self._client(headers)
        gen = gens[-1] + 1 if gens else 1
        # Two writers of one bundle (two watchers) write the same keys in the same order, every file
        # create-only: the first file decides, and the loser never overwrites (nor deletes) the
        # winner's files.  Files left by a writer that died before its manifest are overwritten
        # once no manifest has appeared for ORPHAN_WAIT_S.
        overwrite = False
        for _ in range(5):
            rel = f"{part}/{entry_name(facts.bundle_id, gen)}"
            written: list[str] = []
            name = ""
            try:
                for name in names:
                    key = self._key(f"{rel}/{name}")
                    self._put(client, key, local / name, create=name == MANIFEST or not overwrite)
                    written.append(key)
            except (AlreadyExistsError, PreconditionError):  # another writer stored this generation first
                self._cleanup(written)
                if name != MANIFEST:
                    if self._manifest_appears(part, facts.bundle_id, gen):
                        if not supersede:
                            return PutResult(self._location(rel), created=False)
                        gen += 1
                    else:
                        overwrite = True  # leftovers of a dead writer
                    continue
                if not supersede:
                    return PutResult(self._location(rel), created=False)
                gen += 1
                continue
            except BaseError as exc:
                self._cleanup(written)
                err = self._error(exc, f"uploading {rel}")
                if headers and _first_line(exc) == "InvalidRequest":
                    err = StoreError(
                        f"{self.url}: the bucket refused Object Lock headers; --retain-until and legal hold need a bucket created with Object Lock enabled"
                    )
                raise err from None
            prev = None
            if gens:
                prev = self._location(f"{part}/{entry_name(facts.bundle_id, gens[-1])}")
                self._put(
                    client,
                    self._key(f"{rel}{SUCCESSION_SUFFIX}"),
                    succession_record(facts.bundle_id, prev, self._location(rel)),
                    create=True,
                )
            return PutResult(self._location(rel), created=True, supersedes=prev)
        raise StoreError(f"{self.url}: could not find a free generation for bundle {facts.bundle_id}; retry")

    def _manifest_appears(self, part: str, bundle_id: str, gen: int) -> bool:
        """Wait up to ORPHAN_WAIT_S for another writer's manifest of this generation."""
        deadline = time.monotonic() + ORPHAN_WAIT_S
        while True:
            if gen in self._generations(part, bundle_id):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)

    def _put(self, client: Any, key: str, data: Path | bytes, create: bool) -> None:
        import obstore

        mode: Literal["create", "overwrite"] = "create" if create else "overwrite"
        if isinstance(data, bytes):
            obstore.put(client, key, data, mode=mode)
            return
        size = data.stat().st_size
        if size >= MULTIPART_BYTES and not create:
            obstore.put(client, key, data, use_multipart=True, chunk_size=16 << 20, mode=mode)
        else:
            obstore.put(client, key, data.read_bytes(), mode=mode)

    def _cleanup(self, keys: list[str]) -> None:
        """Remove what a failed upload wrote (best effort: the manifest never was)."""
        import obstore
        from obstore.exceptions import BaseError

        for key in reversed(keys):
            try:
                obstore.delete(self._client(), key)
            except BaseError:
                continue  # the store is gone or locked: without a manifest the rest stays invisible

    def _all(self) -> list[StoredBundle]:
        by_folder: dict[str, list[str]] = {}
        for rel in self._list(""):
            folder, _, name = rel.rpartition("/")
            by_folder.setdefault(folder, []).append(name)
        out = []
        for folder, names in sorted(by_folder.items()):
            parsed = parse_entry(folder)
            if parsed and MANIFEST in names:  # a bundle without its manifest is not there yet (or never was)
                out.append(StoredBundle(self._location(folder), folder, parsed[0], parsed[1], tuple(sorted(names))))
        return out

    def bundles(self) -> Iterator[StoredBundle]:
        """Yield every complete bundle (with its manifest), newest generation only."""
        yield from newest(self._all())

    def find(self, bundle_id: str) -> str | None:
        """Return the location of the newest copy of a bundle, or None."""
        hits = [e for e in self._all() if e.bundle_id == bundle_id]
        return newest(hits)[0].location if hits else None

    def read_file(self, entry: StoredBundle, name: str) -> bytes:
        """Return one file of a stored bundle."""
        import obstore
        from obstore.exceptions import BaseError

        try:
            return bytes(obstore.get(self._client(), self._key(f"{entry.key}/{name}")).bytes())
        except BaseError as exc:
            raise self._error(exc, f"reading {entry.key}/{name}") from None

    def put_reports(self, location: str, files: list[Path]) -> list[str]:
        """Upload reports beside the bundle at ``location``, each create-only (an existing one is kept); return their URLs."""
        from obstore.exceptions import AlreadyExistsError, BaseError, PreconditionError

        base = f"s3://{self.bucket}/"
        if not location.startswith(base):
            raise StoreError(f"{location} is not in {self.url}")
        key = location[len(base) :] + REPORTS_SUFFIX
        out = []
        for f in files:
            try:
                self._put(self._client(), f"{key}/{f.name}", f, create=True)
            except (AlreadyExistsError, PreconditionError):
                pass  # another capture of this rollout stored it first
            except BaseError as exc:
                raise self._error(exc, f"uploading the report {f.name}") from None
            out.append(f"{base}{key}/{f.name}")
        return out

    @contextmanager
    def local_copy(self, entry: StoredBundle) -> Iterator[Path]:
        """Yield a temporary local copy of every object under the bundle's folder."""
        tmp = Path(tempfile.mkdtemp(prefix="evidence-verify-"))
        try:
            for name in entry.files:
                target = tmp / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(self.read_file(entry, name))
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
