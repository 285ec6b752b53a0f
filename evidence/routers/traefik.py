"""Traefik's vocabulary as Flagger's Traefik observer reads it: the one place its names are spelled.

Flagger 1.44 ``pkg/metrics/observers/traefik.go`` (reference §4.1): requests are counted by
``traefik_service_requests_total`` and timed by ``traefik_service_request_duration_seconds``
(a histogram in seconds), both labelled by the leaf ``service`` Traefik names
``<namespace>-<apex>-<primary|canary>-<port>@kubernetescrd``, the HTTP status ``code`` and, for
the buckets, ``le``.  When Prometheus scrapes Traefik without ``honorLabels`` the service label
arrives as ``exported_service`` (§6.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from evidence.flagger import re2_escape
from evidence.model import Role


@dataclass(frozen=True)
class TrafficMetrics:
    """What the collector, the analysis and preflight need to know of one traffic router's metrics."""

    name: str
    requests: str  # request counter
    duration_buckets: str  # duration histogram, _bucket series
    duration_sum: str
    duration_count: str
    duration_unit_s: float  # the histogram's unit in seconds
    service_label: str
    service_labels: tuple[str, ...]  # where the service may arrive, in order of preference
    code_label: str
    bucket_label: str
    error_code: str  # the status codes the criteria count as errors (a regex; Flagger's query says code!~"5..")
    leaf_suffix: str  # after "<ns>-<apex>-<role>-<port>"
    protocol_label: str = "protocol"
    title: str = ""  # the router's name in prose ("Traefik")
    # Traefik v3 puts the gRPC status in `code` for these protocols (reference §6.2).
    grpc_protocols: tuple[str, ...] = ()
    # The gRPC codes the gRPC HTTP mapping sends to 5xx: Unknown 2, DeadlineExceeded 4,
    # Unimplemented 12, Internal 13, Unavailable 14, DataLoss 15.
    grpc_error_codes: tuple[str, ...] = ()
    builtin_queries: dict[str, str] = field(default_factory=dict)  # Flagger's builtin checks, Go templates
    no_series_causes: tuple[str, ...] = ()  # why a scrape shows no series for a service, most likely first

    @property
    def raw_metrics(self) -> tuple[str, ...]:
        """The series collect fetches raw for the primary and the canary."""
        return (self.requests, self.duration_buckets, self.duration_sum, self.duration_count)

    def leaf_pattern(self, role: Role, any_port: bool = True) -> str:
        """Return the part of Flagger's builtin query that selects a role's leaf services after ``<ns>-<target>``."""
        return f"-{role}-" + ("[0-9a-zA-Z-]+" if any_port else "") + self.leaf_suffix

    def services_regex(self, namespace: str, apex: str, port: int | None, roles: tuple[Role, ...]) -> str:
        """Return the RE2 regex of the leaf service names of ``roles`` (any port when ``port`` is None)."""
        which = roles[0].value if len(roles) == 1 else "(" + "|".join(r.value for r in roles) + ")"
        p = str(port) if port is not None else "[0-9a-zA-Z-]+"
        return f"{re2_escape(namespace)}-{re2_escape(apex)}-{which}-{p}{self.leaf_suffix}"

    def role_of(self, labels: dict[str, str], apex: str, label: str | None = None) -> Role:
        """Return which side of the split a series belongs to (the canary's leaf service, else the primary)."""
        return Role.CANARY if f"-{apex}-canary-" in labels.get(label or self.service_label, "") else Role.PRIMARY

    def is_grpc(self, protocol: object) -> bool:
        """Return whether a ``protocol`` label says the ``code`` label holds a gRPC status."""
        return protocol is not None and str(protocol) in self.grpc_protocols

    def is_error(self, code: object, protocol: object = None) -> bool:
        """Return whether a status-code label (of a series with this ``protocol``) is a failure for the success rate."""
        if code is None:
            return False
        if self.is_grpc(protocol):
            return str(code) in self.grpc_error_codes
        return bool(re.fullmatch(self.error_code, str(code)))


#: Where Flagger's own series carry the canary's namespace, in order of preference: a scrape without
#: honorLabels (kube-prometheus-stack's ServiceMonitor) stores the target's namespace in ``namespace``
#: and Flagger's in ``exported_namespace``.
FLAGGER_NAMESPACE_LABELS = ("namespace", "exported_namespace")
#: A Prometheus label name (``--service-label`` must be one).
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

_LEAF = "@kubernetescrd"
_CANARY = "{{ namespace }}-{{ target }}-canary-[0-9a-zA-Z-]+" + _LEAF
_BUCKETS = "traefik_service_request_duration_seconds_bucket"

TRAEFIK = TrafficMetrics(
    name="traefik",
    title="Traefik",
    requests="traefik_service_requests_total",
    duration_buckets=_BUCKETS,
    duration_sum="traefik_service_request_duration_seconds_sum",
    duration_count="traefik_service_request_duration_seconds_count",
    duration_unit_s=1.0,
    service_label="service",
    service_labels=("service", "exported_service"),
    code_label="code",
    bucket_label="le",
    error_code=r"5\d\d",
    leaf_suffix=_LEAF,
    grpc_protocols=("grpc", "grpc-web"),
    grpc_error_codes=("2", "4", "12", "13", "14", "15"),
    no_series_causes=(
        "Prometheus scrapes Traefik without honorLabels (kube-prometheus-stack's ServiceMonitor): its `service` label "
        "arrives as `exported_service` — set honorLabels: true on the ServiceMonitor",
        "Traefik does not export service metrics: set --metrics.prometheus.addServicesLabels=true",
        "Traefik v3 with per-router/per-service metrics switched off (observability.metrics: false on the routers, or "
        "--metrics.prometheus.addServicesLabels unset)",
        "the route does not go through Flagger's TraefikService, or spec.service.port is not the port Traefik names "
        "the leaf services by (<namespace>-<service>-primary-<port>@kubernetescrd)",
        "--prometheus is not the Prometheus that scrapes this Traefik",
    ),
    builtin_queries={
        "request-success-rate": (
            f'sum(rate({_BUCKETS}{{service=~"{_CANARY}",code!~"5..",le="+Inf"}}[{{{{ interval }}}}])) / '
            f'sum(rate({_BUCKETS}{{service=~"{_CANARY}",le="+Inf"}}[{{{{ interval }}}}])) * 100'
        ),
        "request-duration": (
            f'histogram_quantile(0.99, sum(rate({_BUCKETS}{{service=~"{_CANARY}"}}[{{{{ interval }}}}])) by (le)) * 1000'
        ),
    },
)
