"""The capture journal: every Flagger event as it arrived, one JSON line each, durable before it is acknowledged.

A record is ``{"v": 1, "received_at": RFC3339 (ms), "source": S, "namespace": NS, "name": CANARY,
"sha256": HASH, "payload": {...}}`` where ``source`` is ``webhook:event``, ``webhook:post-rollout``,
``kube:events`` (core/v1) or ``kube:events.k8s.io``.  ``payload`` is the webhook body or the Event
object unmodified; ``sha256`` is the hash of the body bytes (a Flagger retry resends the same bytes,
so identical hashes are the same delivery) or of the Event's uid and resourceVersion.

Files: ``active/<namespace>_<canary>.jsonl`` per canary; ``append`` writes one line and fsyncs
before it returns, under one lock, so a 202 is only sent for a record that survives a crash.  A
torn last line (a crash mid-write) is cut off when the file is next opened for writing and
skipped when read.  ``compact(ns, name, before, bundle_id)`` moves the records received before
``before`` into ``done/<namespace>_<canary>/<bundle-id>.jsonl`` (rotation by rollout), so the
active file only holds what the next rollout may need.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evidence.errors import InputError
from evidence.model import parse_stored_time, rfc3339

SOURCES = ("webhook:event", "webhook:post-rollout", "kube:events", "kube:events.k8s.io")


@dataclass(frozen=True)
class Record:
    """One journal line."""

    received_at: dt.datetime
    source: str
    namespace: str
    name: str
    sha256: str
    payload: dict[str, Any]


def _stem(namespace: str, name: str) -> str:
    # Kubernetes names never hold "_", so the pair is unambiguous and always one path segment.
    return f"{namespace}_{name}"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Journal:
    """An append-only, fsynced JSON-lines journal under ``root``; safe across threads of one process."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.active = self.root / "active"
        self.done = self.root / "done"
        try:
            self.active.mkdir(parents=True, exist_ok=True)
            self.done.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(
                f"journal folder {self.root}: {exc.strerror or exc}; give a writable folder with --journal or a writable store"
            ) from None
        self._lock = threading.Lock()
        self._files: dict[str, Any] = {}
        self.events = 0
        self.bytes = sum(p.stat().st_size for p in self.active.glob("*.jsonl"))
        self.torn = 0

    def close(self) -> None:
        """Close the open files."""
        with self._lock:
            for f in self._files.values():
                f.close()
            self._files.clear()

    def _open(self, stem: str) -> Any:
        f = self._files.get(stem)
        if f is None:
            path = self.active / f"{stem}.jsonl"
            f = open(path, "ab+")
            size = f.seek(0, os.SEEK_END)
            if size:
                f.seek(max(0, size - 1))
                if f.read(1) != b"\n":  # a torn last line from a crash: cut it off
                    f.seek(0)
                    data = f.read()
                    keep = data.rfind(b"\n") + 1
                    f.truncate(keep)
                    self.torn += 1
                    self.bytes -= size - keep
            f.seek(0, os.SEEK_END)
            self._files[stem] = f
            if not size:
                _fsync_dir(self.active)
        return f

    def append(
        self,
        source: str,
        namespace: str,
        name: str,
        payload: dict[str, Any],
        body: bytes | None = None,
        received_at: dt.datetime | None = None,
    ) -> Record:
        """Write one record and fsync it; return it.  ``body`` is the raw bytes received (hashed)."""
        if source not in SOURCES:
            raise ValueError(f"unknown journal source {source!r}")
        when = received_at or dt.datetime.now(dt.UTC)
        if body is not None:
            digest = hashlib.sha256(body).hexdigest()
        else:
            meta = payload.get("metadata") or {}
            digest = hashlib.sha256(f"{meta.get('uid')}/{meta.get('resourceVersion')}".encode()).hexdigest()
        rec = Record(when, source, namespace, name, digest, payload)
        line = (
            json.dumps(
                {
                    "v": 1,
                    "received_at": rfc3339(when),
                    "source": source,
                    "namespace": namespace,
                    "name": name,
                    "sha256": digest,
                    "payload": payload,
                },
                separators=(",", ":"),
                ensure_ascii=False,
            ).encode("utf-8")
            + b"\n"
        )
        with self._lock:
            f = self._open(_stem(namespace, name))
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
            self.events += 1
            self.bytes += len(line)
        return rec

    def records(self, namespace: str, name: str, include_done: bool = True) -> list[Record]:
        """Return the canary's records, oldest first, duplicates (same sha256) once; torn lines skipped."""
        stem = _stem(namespace, name)
        paths = sorted((self.done / stem).glob("*.jsonl")) if include_done else []
        paths.append(self.active / f"{stem}.jsonl")
        seen: set[str] = set()
        out: list[Record] = []
        for path in paths:
            for rec in _read(path):
                if rec.sha256 not in seen:
                    seen.add(rec.sha256)
                    out.append(rec)
        out.sort(key=lambda r: r.received_at)
        return out

    def canaries(self) -> list[tuple[str, str]]:
        """Return the (namespace, name) pairs that have an active file."""
        return sorted(tuple(p.stem.split("_", 1)) for p in self.active.glob("*_*.jsonl"))  # type: ignore[misc]

    def compact(self, namespace: str, name: str, before: dt.datetime, bundle_id: str) -> int:
        """Move the canary's active records received before ``before`` into ``done/``; return how many."""
        stem = _stem(namespace, name)
        path = self.active / f"{stem}.jsonl"
        with self._lock:
            f = self._files.pop(stem, None)
            if f is not None:
                f.close()
            if not path.is_file():
                return 0
            lines = [ln for ln in path.read_bytes().split(b"\n") if ln]
            old: list[bytes] = []
            keep: list[bytes] = []
            for ln in lines:
                rec = _parse(ln)
                if rec is None:
                    continue
                (old if rec.received_at < before else keep).append(ln)
            if not old:
                return 0
            target = self.done / stem
            target.mkdir(parents=True, exist_ok=True)
            _write_durably(target / f"{bundle_id}.jsonl", b"".join(ln + b"\n" for ln in old), append=True)
            _write_durably(path, b"".join(ln + b"\n" for ln in keep), append=False)
            self.bytes = sum(p.stat().st_size for p in self.active.glob("*.jsonl"))
            return len(old)


def _write_durably(path: Path, data: bytes, append: bool) -> None:
    if append:
        with open(path, "ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _parse(line: bytes) -> Record | None:
    try:
        obj = json.loads(line)
        when = parse_stored_time(obj["received_at"])
        payload = obj["payload"]
        if when is None or not isinstance(payload, dict) or obj.get("source") not in SOURCES:
            return None
        return Record(when, obj["source"], str(obj["namespace"]), str(obj["name"]), str(obj["sha256"]), payload)
    except (ValueError, KeyError, TypeError):
        return None


def _read(path: Path) -> Iterator[Record]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    for line in data.split(b"\n"):
        if line.strip():
            rec = _parse(line)
            if rec is not None:
                yield rec
