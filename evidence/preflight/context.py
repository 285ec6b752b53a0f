"""What every check reads: the canary, its sources and the primary's traffic, fetched once.

The primary's Traefik series are looked up under each of the router's service labels (where
kube-prometheus-stack renamed it, reference §4.1, §6.2); leaf services are named after the apex
service (§1.3, §6.3; ``evidence.routers.traefik``).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import statistics
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from evidence.canary import CanarySpec
from evidence.errors import PrometheusError
from evidence.flagger import promql_string
from evidence.model import CanaryRef, Role
from evidence.policy import Policy
from evidence.preflight.plan import CanaryPlan
from evidence.routers import TRAEFIK
from evidence.sources import ClusterData
from evidence.sources.prometheus import PrometheusSource

SERVICE_LABELS = TRAEFIK.service_labels
REQUESTS = TRAEFIK.requests
BUCKETS = TRAEFIK.duration_buckets
LOOKBACK_S = 300  # Prometheus' default lookback delta: an instant query sees nothing older
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


class FlaggerFinder(Protocol):
    """A cluster source that can also find Flagger's own Deployment."""

    def describe(self) -> str: ...

    def read_objects(self, ref: CanaryRef) -> ClusterData: ...

    def find_flagger(self, selector: str = ...) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class PrimaryTraffic:
    """The primary's Traefik series at ``at``: under which label, how fresh, how busy."""

    label: str | None  # one of TRAEFIK.service_labels, None: no series in the last 5 minutes
    services: tuple[str, ...] = ()
    last_sample: dt.datetime | None = None
    scrape_interval_s: float | None = None
    rps: float | None = None
    protocols: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    buckets: tuple[str, ...] = ()
    also_under: str | None = None  # the other label, when both carry the primary


@dataclass
class Context:
    """The inputs of every check; Prometheus answers are fetched lazily and kept."""

    ref: CanaryRef
    spec: CanarySpec
    plan: CanaryPlan
    cluster: ClusterData
    flagger: list[dict[str, Any]]
    flagger_error: str | None
    live: bool
    prom: PrometheusSource
    at: dt.datetime
    policy: Policy
    probe: bool
    timeout_s: float
    now: dt.datetime
    _primary: PrimaryTraffic | None = field(default=None, repr=False)

    def unpasteable(self) -> str | None:
        """Return why Flagger's templates must not be rendered here: a name that is not a Kubernetes name.

        Flagger pastes names into PromQL unquoted; such a name can only come from a crafted
        object and would run a different query (as ``evidence.queries`` refuses too).
        """
        for what, value in (
            ("targetRef.name", self.spec.target),
            ("service.name", self.spec.apex),
            ("namespace", self.ref.namespace),
        ):
            if not _K8S_NAME.fullmatch(value):
                return f"{what} {value!r} is not a Kubernetes name, and pasting it into PromQL as Flagger does would run a different query"
        return None

    def primary_regex(self) -> str:
        """Return the RE2 regex of the primary's leaf service names (port when the spec gives it)."""
        return TRAEFIK.services_regex(self.ref.namespace, self.spec.apex, self.spec.port, (Role.PRIMARY,))

    def selector(self, label: str) -> str:
        """Return ``{label=~"<primary regex>"}``, quoted."""
        return "{" + label + "=~" + promql_string(self.primary_regex()) + "}"

    def value(self, query: str) -> float | None:
        """Run an instant query at ``at``; return the last sample's value (as Flagger does, §4.1), None if none or NaN."""
        result = self.prom.instant(query, self.at)
        value: float | None = None
        for item in result:
            sample = item.get("value")
            if isinstance(sample, list) and len(sample) == 2:
                try:
                    value = float(sample[1])
                except (TypeError, ValueError):
                    value = None
        return None if value is None or math.isnan(value) else value

    def primary(self) -> PrimaryTraffic:
        """Return the primary's Traefik series (fetched once)."""
        if self._primary is None:
            found = [(label, self._primary_under(label)) for label in SERVICE_LABELS]
            present = [(label, t) for label, t in found if t is not None]
            if not present:
                self._primary = PrimaryTraffic(None)
            else:
                other = present[1][0] if len(present) > 1 else None
                self._primary = replace(present[0][1], also_under=other)
        return self._primary

    def _primary_under(self, label: str) -> PrimaryTraffic | None:
        rows = self.prom.instant(f"{REQUESTS}{self.selector(label)}[{LOOKBACK_S}s]", self.at)
        rows = [r for r in rows if r.get("values")]
        if not rows:
            return None
        services = sorted({str(r["metric"].get(label, "")) for r in rows})
        protocols = sorted({str(r["metric"].get("protocol", "")) for r in rows if r["metric"].get("protocol")})
        codes = sorted({str(r["metric"].get(TRAEFIK.code_label, "")) for r in rows if r["metric"].get(TRAEFIK.code_label)})
        last = max(float(r["values"][-1][0]) for r in rows)
        gaps = [float(b[0]) - float(a[0]) for r in rows for a, b in zip(r["values"], r["values"][1:], strict=False)]
        rps = 0.0
        spans = False
        for r in rows:
            (t0, v0), (t1, v1) = r["values"][0], r["values"][-1]
            if float(t1) > float(t0):
                spans = True
                rps += max(0.0, float(v1) - float(v0)) / (float(t1) - float(t0))
        try:
            les = self.prom.instant(f"count by ({TRAEFIK.bucket_label}) ({BUCKETS}{self.selector(label)})", self.at)
        except PrometheusError:
            les = []
        le = TRAEFIK.bucket_label
        # `le` compared as numbers: Prometheus 3 stores Traefik's le="5" as le="5.0" (§6.1), one bucket.
        by_bound: dict[float, str] = {}
        for r in les:
            text = str((r.get("metric") or {}).get(le) or "")
            try:
                by_bound.setdefault(float(text), text)
            except ValueError:
                continue
        buckets = [by_bound[b] for b in sorted(by_bound)]
        return PrimaryTraffic(
            label,
            tuple(services),
            dt.datetime.fromtimestamp(last, dt.UTC),
            statistics.median(gaps) if gaps else None,
            rps if spans else None,
            tuple(protocols),
            tuple(codes),
            tuple(buckets),
        )
