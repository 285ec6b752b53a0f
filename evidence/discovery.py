"""Where Prometheus is when ``--prometheus`` is not given: Flagger's own ``-metrics-server`` flag.

Flagger queries the Prometheus its Deployment names (``-metrics-server``, default
``http://prometheus:9090``), so on a live cluster that is the Prometheus holding the series its
decisions came from.  Such a URL usually names an in-cluster Service (``prometheus``,
``prometheus.monitoring``, ``….svc``, ``….svc.cluster.local``) that a laptop cannot resolve;
it is then reached through the API server's service proxy
(``/api/v1/namespaces/NS/services/NAME:PORT/proxy``) with the kubeconfig's credentials, which
needs RBAC ``get`` on ``services/proxy`` in that namespace.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit


class FlaggerLister(Protocol):
    """A live source that finds Flagger's Deployment (``KubeSource``)."""

    flagger_namespace: str

    def find_flagger(self, selector: str | None = None) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class ServiceRef:
    """An in-cluster Service a URL names."""

    scheme: str
    namespace: str
    name: str
    port: int
    path: str


@dataclass(frozen=True)
class Discovered:
    """The Prometheus Flagger uses, and how evidence reaches it."""

    flagger_url: str  # Flagger's -metrics-server value (or its default)
    where: str  # the Flagger Deployment, NS/NAME
    service: ServiceRef | None  # the in-cluster Service it names, if it names one
    proxied: bool  # reached through the API server's service proxy


def in_cluster_service(url: str, default_namespace: str) -> ServiceRef | None:
    """Return the Service ``url`` names by cluster DNS, or None for any other host (a FQDN, an IP)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").rstrip(".")
    if not host or parts.scheme not in ("http", "https"):
        return None
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    labels = host.split(".")
    if labels[-3:] == ["svc", "cluster", "local"]:
        labels = labels[:-3]
    elif labels[-1:] == ["svc"]:
        labels = labels[:-1]
    elif len(labels) > 2:
        return None  # a name outside the cluster's DNS
    if len(labels) == 1:
        name, namespace = labels[0], default_namespace
    elif len(labels) == 2:
        name, namespace = labels
    else:
        return None
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return ServiceRef(parts.scheme, namespace, name, port, parts.path.rstrip("/"))


def service_proxy_url(api_server: str, svc: ServiceRef) -> str:
    """Return the API server's proxy URL of a Service port (``https:`` prefixed for a TLS backend)."""
    target = f"{svc.name}:{svc.port}" if svc.scheme == "http" else f"https:{svc.name}:{svc.port}"
    return f"{api_server.rstrip('/')}/api/v1/namespaces/{svc.namespace}/services/{target}/proxy{svc.path}"


def resolves(host: str) -> bool:
    """Return whether ``host`` resolves here (the cluster's DNS names do not, outside the cluster)."""
    try:
        socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return False
    return True


def discover_prometheus(source: FlaggerLister, resolve: Callable[[str], bool] = resolves) -> Discovered | None:
    """Return the Prometheus Flagger's Deployment names, or None when no Flagger Deployment is found."""
    from evidence.preflight.controller import DEFAULT_METRICS_SERVER, read_flagger

    deployments = source.find_flagger()
    if not deployments:
        return None
    info = read_flagger(deployments[0])
    url = info.flags.get("metrics-server") or DEFAULT_METRICS_SERVER
    svc = in_cluster_service(url, info.namespace or source.flagger_namespace)
    host = urlsplit(url).hostname or ""
    return Discovered(url, info.where, svc, proxied=svc is not None and not resolve(host))
