"""What collection needs to know from a Canary's spec, with Flagger's defaults (reference §1.4)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from evidence.model import CanaryRef


@dataclass(frozen=True)
class CanarySpec:
    """What collection needs to know from the Canary's spec."""

    ref: CanaryRef
    target: str
    apex: str
    port: int | None
    interval_s: float
    interval_text: str
    threshold: int
    metrics: list[dict[str, Any]]


def parse_duration(text: str) -> float:
    """Parse a Kubernetes/Go duration like 1m, 30s, 1m30s into seconds; raise ValueError."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h)", text or "")
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(text)
    return sum(float(n) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[u] for n, u in parts)


def canary_spec(ref: CanaryRef, canary: dict[str, Any]) -> CanarySpec:
    """Read the fields collection needs, with Flagger's defaults (reference §1.4)."""
    spec = canary.get("spec") or {}
    analysis = spec.get("analysis") or spec.get("canaryAnalysis") or {}
    target = str((spec.get("targetRef") or {}).get("name") or ref.name)
    service = spec.get("service") or {}
    apex = str(service.get("name") or target)
    port = service.get("port")
    itext = str(analysis.get("interval") or "60s")
    try:
        interval = max(10.0, parse_duration(itext))
    except ValueError:
        interval = 60.0
    threshold = int(analysis.get("threshold") or 0)
    return CanarySpec(
        ref=ref,
        target=target,
        apex=apex,
        port=int(port) if isinstance(port, int) else None,
        interval_s=interval,
        interval_text=itext,
        threshold=threshold if threshold > 0 else 1,
        metrics=[m for m in analysis.get("metrics") or [] if isinstance(m, dict)],
    )
