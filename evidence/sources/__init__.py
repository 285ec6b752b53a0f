"""Where evidence comes from. Each source is passed in to the collectors, never built by them.

A *cluster source* answers for one canary with a :class:`ClusterData`: the live API
(``kube.KubeSource``), a folder of kubectl output (``dump.DumpSource``), and later the
webhook receiver's journal.  ``prometheus.PrometheusSource`` answers PromQL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from evidence.model import CanaryRef


@dataclass
class ClusterData:
    """What a cluster source holds about one canary, as raw Kubernetes objects and lines.

    ``events`` holds core/v1 ``Event`` and events.k8s.io/v1 ``Event`` objects whose involved
    (or regarding) object is the canary, unmodified.  ``log_lines`` are Flagger's zap JSON
    log lines (all of them: the collector keeps the canary's).  ``webhook_events`` are
    event-webhook payloads as Flagger posted them.  ``warnings`` say what the source could
    not read and why (recorded in the manifest).
    """

    source_kind: str  # "cluster" | "dump"
    source: str  # API server URL or dump folder: never credentials
    canary: dict[str, Any]
    cluster: str | None = None  # the cluster's name where the source knows it (a kubeconfig context's cluster)
    metric_templates: list[dict[str, Any]] = field(default_factory=list)
    alert_providers: list[dict[str, Any]] = field(default_factory=list)
    traefik_services: list[dict[str, Any]] = field(default_factory=list)
    workloads: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    log_lines: list[str] = field(default_factory=list)
    webhook_events: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class ClusterSource(Protocol):
    """A place that can tell what the cluster holds about a canary."""

    def describe(self) -> str:
        """Return a one-line description without credentials, e.g. ``cluster https://…``."""

    def read(self, ref: CanaryRef) -> ClusterData:
        """Return what the source holds about ``ref``; raise NotFoundError if there is no such canary."""
