"""``flagger-healthy``: Flagger's Deployment, its flags and version, and the Canary's phase.

Flags come from ``cmd/flagger/main.go`` (reference §1.2, §7.1): ``-mesh-provider`` (the Canary's
``spec.provider`` overrides it), ``-metrics-server`` (default ``http://prometheus:9090``,
``spec.metricsServer`` overrides it), ``-event-webhook``, ``-slack-url``, ``-msteams-url``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from evidence.preflight.context import Context
from evidence.preflight.model import CheckResult
from evidence.render.formatting import fmt_duration

CODE = "flagger-healthy"
DEFAULT_METRICS_SERVER = "http://prometheus:9090"
TRAEFIK_GROUP_SINCE = (1, 42, 0)  # traefik.io/v1alpha1 from Flagger 1.42.0 (§4.2)
ACTIVE_PHASES = ("Progressing", "Waiting", "WaitingPromotion", "Promoting", "Finalising")


@dataclass(frozen=True)
class FlaggerInfo:
    """What one Flagger Deployment says about itself; env values are never read, only names."""

    namespace: str
    name: str
    version: str | None
    flags: dict[str, str]
    env_names: frozenset[str]
    available: bool
    ready: str

    @property
    def where(self) -> str:
        return f"{self.namespace}/{self.name}"

    def version_tuple(self) -> tuple[int, ...] | None:
        m = re.match(r"^v?(\d+)\.(\d+)\.(\d+)", self.version or "")
        return tuple(int(x) for x in m.groups()) if m else None

    def has(self, flag: str, env: str) -> bool:
        """Return whether a flag or its environment variable is set (e.g. -event-webhook / EVENT_WEBHOOK_URL)."""
        return bool(self.flags.get(flag)) or env in self.env_names


def read_flagger(deployment: dict[str, Any]) -> FlaggerInfo:
    """Read a Flagger Deployment: the flagger container's image tag, flags and env names, availability."""
    meta = deployment.get("metadata") or {}
    pod = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
    containers = [c for c in pod.get("containers") or [] if isinstance(c, dict)]
    c = next((c for c in containers if c.get("name") == "flagger"), containers[0] if containers else {})
    image = str(c.get("image") or "")
    tag = image.split("@", 1)[0].rpartition(":")[2] if ":" in image.split("@", 1)[0].rpartition("/")[2] else None
    flags: dict[str, str] = {}
    words = [str(w) for w in (c.get("command") or []) + (c.get("args") or [])]
    for i, word in enumerate(words):
        m = re.match(r"^--?([a-z][a-z0-9-]*)(?:=(.*))?$", word)
        if m:
            value = m.group(2)
            if value is None and i + 1 < len(words) and not words[i + 1].startswith("-"):
                value = words[i + 1]
            flags[m.group(1)] = value if value is not None else "true"
    env = frozenset(str(e.get("name")) for e in c.get("env") or [] if isinstance(e, dict) and e.get("name"))
    status = deployment.get("status") or {}
    available_cond = any(
        x.get("type") == "Available" and x.get("status") == "True" for x in status.get("conditions") or [] if isinstance(x, dict)
    )
    replicas = int(status.get("replicas") or 0)
    avail = int(status.get("availableReplicas") or 0)
    return FlaggerInfo(
        str(meta.get("namespace") or ""),
        str(meta.get("name") or ""),
        tag.lstrip("v") if tag else None,
        flags,
        env,
        avail > 0 and (available_cond or not status.get("conditions")),
        f"{avail}/{replicas or (deployment.get('spec') or {}).get('replicas') or 0} available",
    )


def check_flagger(ctx: Context) -> list[CheckResult]:
    """Report Flagger's configuration, then its live state and the Canary's phase (skipped on a dump)."""
    return [_configuration(ctx), _live_state(ctx)]


def _configuration(ctx: Context) -> CheckResult:
    if ctx.flagger_error:
        return CheckResult(
            CODE,
            "warn",
            f"Flagger's Deployment could not be read: {ctx.flagger_error}",
            "grant list on deployments.apps, or check by hand",
        )
    infos = [read_flagger(d) for d in ctx.flagger]
    if not infos and not ctx.live:
        # A dump may simply not hold it: not checked, rather than "Flagger is missing".
        return CheckResult(
            CODE,
            "skip",
            f"no Deployment labelled app.kubernetes.io/name=flagger in the dump {ctx.cluster.source}: Flagger's flags and version not checked",
            "save it into the dump: `kubectl get deploy -A -l app.kubernetes.io/name=flagger -o json`",
        )
    if not infos:
        return CheckResult(
            CODE,
            "block",
            "no Deployment labelled app.kubernetes.io/name=flagger in any namespace of the cluster",
            "install Flagger, or label its Deployment app.kubernetes.io/name=flagger",
        )
    f = infos[0]
    mesh = f.flags.get("mesh-provider")
    provider = ctx.plan.provider or mesh
    server = ctx.plan.metrics_server or f.flags.get("metrics-server") or DEFAULT_METRICS_SERVER
    version = f.version or "unknown (no image tag)"
    facts = (
        f"Flagger {version} in {f.where}, -mesh-provider={mesh or '(not set)'}"
        + (f", Canary spec.provider={ctx.plan.provider}" if ctx.plan.provider else "")
        + f", metrics server {server}"
    )
    if len(infos) > 1:
        others = ", ".join(i.where for i in infos[1:])
        return CheckResult(
            CODE, "warn", f"{facts}; more controllers found: {others}", "run one Flagger per mesh provider and scope them apart"
        )
    if provider != "traefik":
        return CheckResult(
            CODE,
            "block",
            f"{facts}: the provider in force is {provider or 'Flagger’s default'}, not traefik, so the TraefikService and the Traefik queries are not used (reference §1.2)",
            "set spec.provider: traefik on the Canary, or run Flagger with -mesh-provider=traefik",
        )
    vt = f.version_tuple()
    if vt is not None and vt < TRAEFIK_GROUP_SINCE:
        return CheckResult(
            CODE,
            "warn",
            f"{facts}: before 1.42.0 Flagger writes TraefikServices in traefik.containo.us, which Traefik v3 no longer serves (reference §4.2)",
            "upgrade Flagger to 1.42.0 or later",
        )
    return CheckResult(CODE, "ok", facts)


def _live_state(ctx: Context) -> CheckResult:
    phase = ctx.plan.phase or "(none)"
    if not ctx.live:
        return CheckResult(
            CODE,
            "skip",
            f"availability and the Canary's live phase need the live cluster; the dump says phase {phase}",
            "run preflight against the cluster (--kubeconfig/--context) before the rollout",
        )
    infos = [read_flagger(d) for d in ctx.flagger]
    if infos and not infos[0].available:
        return CheckResult(
            CODE, "block", f"Flagger {infos[0].where} is not available ({infos[0].ready})", "fix Flagger's pods before a rollout"
        )
    ready = f"Flagger {infos[0].ready}; " if infos else ""
    if ctx.plan.suspend:
        return CheckResult(
            CODE, "block", f"{ready}the Canary is suspended: Flagger skips every run (reference §1.2)", "set spec.suspend: false"
        )
    if phase in ("Terminating", "Terminated"):
        return CheckResult(CODE, "block", f"{ready}the Canary is {phase} (revertOnDeletion finalizer)", "recreate the Canary")
    if phase in ACTIVE_PHASES:
        return _active(ctx, ready, phase)
    if phase == "Failed":
        return CheckResult(
            CODE,
            "warn",
            f"{ready}the last rollout failed (phase Failed: {ctx.plan.condition or 'no condition'}); the next revision starts a new analysis",
            "read the last rollout's evidence before starting another",
        )
    if phase not in ("Succeeded", "Initialized"):
        return CheckResult(
            CODE, "warn", f"{ready}the Canary is in phase {phase}, not initialized yet", "wait for phase Initialized"
        )
    return CheckResult(CODE, "ok", f"{ready}the Canary is {phase}")


def _active(ctx: Context, ready: str, phase: str) -> CheckResult:
    # lastTransitionTime changes on every status write (reference §1.5): a stale one means no ticks.
    # A closed approval gate writes no status while it waits (reference §2.2): waiting is not stuck.
    since = ctx.plan.last_transition
    limit = max(float(ctx.plan.progress_deadline_s or 600), 3 * ctx.spec.interval_s)
    age = (ctx.at - since).total_seconds() if since else None
    if age is not None and age > limit and phase not in ("Waiting", "WaitingPromotion"):
        return CheckResult(
            CODE,
            "block",
            f"{ready}the Canary is stuck in {phase}: no status write for {fmt_duration(age)} (more than {fmt_duration(limit)})",
            "check Flagger's log for this canary; a new revision restarts the analysis",
        )
    started = f" since {since.astimezone(dt.UTC).strftime('%H:%M:%S')}Z" if since else ""
    return CheckResult(
        CODE, "warn", f"{ready}a rollout is already under way (phase {phase}{started})", "let it finish before starting another"
    )
