"""Traffic routers: each one's metric and label names behind one ``TrafficMetrics`` record.

Like Flagger's ``pkg/metrics/observers/``: a router is one file and one registry line here.
Only Traefik exists today; Gateway API or Istio would be ``gatewayapi.py`` / ``istio.py``.
"""

from __future__ import annotations

from evidence.routers.traefik import FLAGGER_NAMESPACE_LABELS, LABEL_NAME, TRAEFIK, TrafficMetrics

ROUTERS: dict[str, TrafficMetrics] = {TRAEFIK.name: TRAEFIK}
#: A Canary without ``spec.provider`` uses Flagger's ``-mesh-provider``, which a Canary does not show.
DEFAULT_ROUTER = TRAEFIK


def router_for(provider: str | None) -> tuple[TrafficMetrics, str | None]:
    """Return the router of a Canary's ``spec.provider`` and a warning when it has no module here."""
    if not provider:
        return DEFAULT_ROUTER, None
    found = ROUTERS.get(provider.split(":")[0].strip().lower())
    if found is not None:
        return found, None
    return DEFAULT_ROUTER, (
        f"spec.provider {provider!r} has no router here (known: {', '.join(sorted(ROUTERS))}): "
        f"{DEFAULT_ROUTER.name}'s series were asked for"
    )


def router_named(name: str | None) -> TrafficMetrics:
    """Return the router a bundle's manifest names (None: a bundle written before routers were recorded)."""
    return ROUTERS.get(name or DEFAULT_ROUTER.name, DEFAULT_ROUTER)


__all__ = [
    "DEFAULT_ROUTER",
    "FLAGGER_NAMESPACE_LABELS",
    "LABEL_NAME",
    "ROUTERS",
    "TRAEFIK",
    "TrafficMetrics",
    "router_for",
    "router_named",
]
