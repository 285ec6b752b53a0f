"""What can be collected: every Canary of a source with its latest rollout and whether it is archived.

``list_canaries(source, namespace, bundles=...)`` answers ``evidence list``.  The latest rollout
is found exactly as ``collect`` finds it (Flagger's webhook payloads, log lines and Kubernetes
Events: ``events.find_latest_rollout``), so the bundle id computed here is the one ``collect``
would give the rollout, and "collected" means a bundle of *that* rollout exists in ``--out``
or in the store.  Flagger's outcome is read from the Canary's status (no Prometheus is asked).
Each row costs one read of the canary's events and Flagger's log.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from evidence.analysis.records import RUNNING_PHASES
from evidence.canary import normalise_canary
from evidence.documents import document
from evidence.events import attach_k8s, find_latest_rollout, from_log_lines, from_webhooks, merge_lossless
from evidence.identity import UNKNOWN_CLUSTER, bundle_id_for, rollout_id
from evidence.model import CanaryRef, rfc3339
from evidence.sources import ClusterData


class CanaryLister(Protocol):
    """A cluster source that can also list its Canaries (``KubeSource``, ``DumpSource``)."""

    @property
    def default_namespace(self) -> str | None: ...

    def describe(self) -> str: ...

    def read(self, ref: CanaryRef) -> ClusterData: ...

    def list_canaries(self, namespace: str | None) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class CanaryRow:
    """One line of ``evidence list``."""

    namespace: str
    name: str
    target: str
    phase: str
    outcome: str  # promoted | rolled_back | in_progress | unknown (Flagger's, from the Canary's status)
    rollout_start: dt.datetime | None
    rollout_end: dt.datetime | None
    bundle_id: str | None  # the id collect would give the latest rollout; None without a rollout
    bundle: str | None  # where a bundle of it already is, else None
    warnings: tuple[str, ...] = ()


def phase_outcome(phase: str, running: bool) -> str:
    """Return Flagger's outcome for a Canary's status phase (Failed is Flagger's rollback)."""
    if phase == "Succeeded" and not running:
        return "promoted"
    if phase == "Failed" and not running:
        return "rolled_back"
    if phase in RUNNING_PHASES or running:
        return "in_progress"
    return "unknown"


def list_canaries(
    source: CanaryLister,
    namespace: str | None,
    *,
    find_bundle: Callable[[str], str | None] = lambda bundle_id: None,
    cluster: str | None = None,
) -> list[CanaryRow]:
    """Return one row per Canary in ``namespace`` (None: every namespace), sorted by namespace and name.

    ``find_bundle(bundle_id)`` says where a bundle already is (a folder or a store), or None.
    """
    rows: list[CanaryRow] = []
    for obj in source.list_canaries(namespace):
        view, _ = normalise_canary(obj)
        meta = obj.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        ref = CanaryRef(str(meta.get("namespace") or namespace or ""), str(meta.get("name") or ""))
        rows.append(_row(ref, view, source.read(ref), find_bundle, cluster))
    return sorted(rows, key=lambda r: (r.namespace, r.name))


def _row(
    ref: CanaryRef, view: dict[str, Any], data: ClusterData, find_bundle: Callable[[str], str | None], cluster: str | None
) -> CanaryRow:
    status = view.get("status") or {}
    spec = view.get("spec") or {}
    log_rows, _ = from_log_lines(data.log_lines, ref.name, ref.namespace)
    probe, _ = attach_k8s(merge_lossless(from_webhooks(data.webhook_events), log_rows), data.events, None)
    found = find_latest_rollout(probe)
    start, end = found if found is not None else (None, None)
    bundle_id = bundle = None
    if start is not None:
        last_applied = status.get("lastAppliedSpec")
        rid = rollout_id(
            cluster or data.cluster or UNKNOWN_CLUSTER,
            ref.namespace,
            ref.name,
            start,
            str(last_applied) if last_applied else None,
        )
        bundle_id = bundle_id_for(rid)
        bundle = find_bundle(bundle_id)
    phase = str(status.get("phase") or "")
    return CanaryRow(
        namespace=ref.namespace,
        name=ref.name,
        target=str((spec.get("targetRef") or {}).get("name") or ""),
        phase=phase or "Unknown",
        outcome=phase_outcome(phase, start is not None and end is None),
        rollout_start=start,
        rollout_end=end,
        bundle_id=bundle_id,
        bundle=bundle,
        warnings=tuple(data.warnings),
    )


def canary_list_document(rows: list[CanaryRow], source: str) -> dict[str, Any]:
    """Return the rows as a ``CanaryList`` document (schemas/canarylist.schema.json)."""
    items = [
        {
            "namespace": r.namespace,
            "name": r.name,
            "target": r.target,
            "phase": r.phase,
            "outcome": r.outcome,
            "rolloutStart": rfc3339(r.rollout_start),
            "rolloutEnd": rfc3339(r.rollout_end),
            "bundleId": r.bundle_id,
            "collected": r.bundle is not None,
            "bundle": r.bundle,
        }
        for r in rows
    ]
    return document("CanaryList", {"source": source, "items": items})


def format_canary_table(rows: list[CanaryRow], wide: bool = False, all_namespaces: bool = True) -> str:
    """Return the rows as a kubectl-style table (``wide``: target, bundle id and where it is)."""
    head = (["NAMESPACE"] if all_namespaces else []) + ["NAME", "PHASE", "OUTCOME", "ROLLOUT START", "ROLLOUT END", "COLLECTED"]
    if wide:
        head += ["TARGET", "BUNDLE ID", "BUNDLE"]
    table = [head]
    for r in rows:
        end = rfc3339(r.rollout_end) or ("running" if r.rollout_start is not None else "-")
        line = ([r.namespace] if all_namespaces else []) + [
            r.name,
            r.phase,
            r.outcome,
            rfc3339(r.rollout_start) or "-",
            end,
            "yes" if r.bundle else ("no" if r.bundle_id else "-"),
        ]
        if wide:
            line += [r.target or "-", r.bundle_id or "-", r.bundle or "-"]
        table.append(line)
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    return "".join("   ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() + "\n" for row in table)
