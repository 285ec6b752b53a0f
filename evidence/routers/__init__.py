"""Traffic routers: each one's metric and label names behind one ``TrafficMetrics`` record.

Like Flagger's ``pkg/metrics/observers/``: a router is one file and one registry line here.
Only Traefik exists today; Gateway API or Istio would be ``gatewayapi.py`` / ``istio.py``.
"""

from __future__ import annotations

from evidence.routers.traefik import FLAGGER_NAMESPACE_LABELS, LABEL_NAME, TRAEFIK, TrafficMetrics

ROUTERS: dict[str, TrafficMetrics] = {TRAEFIK.name: TRAEFIK}

__all__ = ["FLAGGER_NAMESPACE_LABELS", "LABEL_NAME", "ROUTERS", "TRAEFIK", "TrafficMetrics"]
