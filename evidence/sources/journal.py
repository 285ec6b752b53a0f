"""The capture journal as a lossless event source, layered over another cluster source.

``JournalSource(inner, journal_dir)`` answers like ``inner`` (the live API or a dump) and adds
what the journal holds for the canary: the ``event`` webhook payloads Flagger posted (each with
its receive time) and the Kubernetes Events the watcher journalled.  ``collect`` then merges them
as it merges Events and logs, so a bundle keeps every Halt even after the API server aggregated
or expired its Events.  Journalled Events are added only where the inner source no longer has
an Event of the same uid (the live copy is newer).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evidence.capture.journal import Journal
from evidence.model import CanaryRef, rfc3339
from evidence.sources import ClusterData, ClusterSource


class JournalSource:
    """``inner`` plus the journal's webhook payloads and Events for the canary."""

    def __init__(self, inner: ClusterSource, journal: Journal | str | Path, warnings: list[str] | None = None) -> None:
        self.inner = inner
        self.journal = journal if isinstance(journal, Journal) else Journal(journal)
        self.extra_warnings = list(warnings or [])

    def describe(self) -> str:
        return f"{self.inner.describe()} + journal {self.journal.root}"

    def read(self, ref: CanaryRef) -> ClusterData:
        data = self.inner.read(ref)
        records = self.journal.records(ref.namespace, ref.name)
        hooks = [dict(r.payload, _received_at=rfc3339(r.received_at)) for r in records if r.source == "webhook:event"]
        seen = {h.get("metadata", {}).get("timestamp"): h.get("metadata", {}).get("eventMessage") for h in data.webhook_events}
        data.webhook_events.extend(
            h for h in hooks if seen.get(h["metadata"].get("timestamp")) != h["metadata"].get("eventMessage")
        )
        live = {(_group(e), (e.get("metadata") or {}).get("uid")) for e in data.events}
        newest: dict[tuple[str, Any], dict[str, Any]] = {}
        for r in records:
            if r.source.startswith("kube:"):
                key = (_group(r.payload), (r.payload.get("metadata") or {}).get("uid"))
                if key not in live:
                    newest[key] = r.payload  # records are oldest first: the last one wins
        data.events.extend(newest.values())
        data.source = f"{data.source} + journal {self.journal.root}"
        data.warnings.extend(self.extra_warnings)
        return data


def _group(event: dict[str, Any]) -> str:
    return "events.k8s.io" if str(event.get("apiVersion", "")).startswith("events.k8s.io") else "core"
