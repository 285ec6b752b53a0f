"""The one place preflight reads the Canary object beyond ``CanarySpec``: hooks, weights, status.

Defaults follow Flagger 1.44 (../shared/reference/flagger-traefik.md §1.2-§1.5, §3.2, §4.2).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from evidence.canary import CanarySpec
from evidence.model import parse_go_duration, parse_stored_time

DEFAULT_HOOK_TIMEOUT_S = 10.0  # CanaryWebhook.timeout default (§3.2)


@dataclass(frozen=True)
class Hook:
    """One entry of ``analysis.webhooks``; ``type`` "" is a rollout hook (§3.1)."""

    name: str
    type: str
    url: str
    timeout_s: float
    metadata: dict[str, str]


@dataclass(frozen=True)
class CanaryPlan:
    """How the next rollout of a canary will go, read from its spec, and where its status stands."""

    provider: str | None
    metrics_server: str | None
    progress_deadline_s: int | None  # None: not set (Flagger uses 600, §1.2)
    suspend: bool
    skip_analysis: bool
    step_weight: int | None
    step_weights: tuple[int, ...]
    max_weight_field: int | None
    iterations: int
    has_match: bool
    hooks: tuple[Hook, ...]
    alert_providers: tuple[str, ...]
    phase: str
    last_transition: dt.datetime | None
    condition: str

    @property
    def strategy(self) -> str:
        """Return Flagger's ``DeploymentStrategy()``: canary, blue-green or ab-testing (§1.4)."""
        if self.iterations > 0:
            return "ab-testing" if self.has_match else "blue-green"
        return "canary"

    def max_weight(self) -> int:
        """Return ``maxWeight()`` of scheduler.go: the last stepWeights element, else maxWeight, else 100."""
        if self.step_weights:
            return min(100, self.step_weights[-1])
        return self.max_weight_field if self.max_weight_field and self.max_weight_field > 0 else 100

    def weights(self) -> tuple[int, ...]:
        """Return the canary weights of the analysis steps, the last one at or above ``max_weight()`` (§4.2)."""
        if self.strategy != "canary":
            return (100,) if self.strategy == "blue-green" else ()
        if self.step_weights:
            return tuple(min(100, w) for w in self.step_weights)
        step = self.step_weight or 0
        if step <= 0:
            return ()
        out: list[int] = []
        w = 0
        while w < self.max_weight() and len(out) < 100:
            w = min(100, w + step)
            out.append(w)
        return tuple(out)

    def hooks_of(self, *types: str) -> list[Hook]:
        """Return the hooks of the given types, in spec order."""
        return [h for h in self.hooks if h.type in types]


def read_plan(canary: dict[str, Any]) -> CanaryPlan:
    """Read a Canary object into a plan (absent fields get Flagger's defaults)."""
    cspec = CanarySpec.from_object(canary)
    status = canary.get("status") or {}
    hooks = []
    for w in cspec.webhooks:
        try:
            timeout = parse_go_duration(str(w.get("timeout") or "10s"))
        except ValueError:
            timeout = DEFAULT_HOOK_TIMEOUT_S
        meta = w.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        hooks.append(
            Hook(
                str(w.get("name") or ""),
                str(w.get("type") or ""),
                str(w.get("url") or ""),
                timeout,
                {str(k): str(v) for k, v in meta.items()},
            )
        )
    providers = tuple(
        str(a["providerRef"]["name"])
        for a in cspec.alerts
        if isinstance(a.get("providerRef"), dict) and a["providerRef"].get("name")
    )
    conditions = [c for c in status.get("conditions") or [] if isinstance(c, dict) and c.get("type") == "Promoted"]
    return CanaryPlan(
        provider=cspec.provider,
        metrics_server=cspec.metrics_server,
        progress_deadline_s=cspec.progress_deadline_s,
        suspend=cspec.suspend,
        skip_analysis=cspec.skip_analysis or not cspec.has_analysis,
        step_weight=cspec.step_weight,
        step_weights=cspec.step_weights,
        max_weight_field=cspec.max_weight,
        iterations=cspec.iterations or 0,
        has_match=cspec.has_match,
        hooks=tuple(hooks),
        alert_providers=providers,
        phase=str(status.get("phase") or ""),
        last_transition=_time(status.get("lastTransitionTime")),
        condition=str(conditions[0].get("message") or "") if conditions else "",
    )


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _time(value: Any) -> dt.datetime | None:
    return parse_stored_time(value)
