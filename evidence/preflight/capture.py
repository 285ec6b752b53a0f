"""``evidence-capture``: will the rollout leave a record that outlives Kubernetes' Events?

Events are merged, dropped and expire within the hour (``--event-ttl`` 1 h, reference §2.4);
the ``event`` webhook and the ``post-rollout`` hook (§3.1, §3.4) carry the record instead.  A
hook counts as an evidence receiver when its URL's host or path names ``evidence``.  Prometheus
must keep the series from the rollout's start (minus collect's 10 min lead) until the
collection after its tail: its retention comes from ``/api/v1/status/flags``.
"""

from __future__ import annotations

from evidence.errors import PrometheusError
from evidence.model import prometheus_duration
from evidence.preflight.context import Context
from evidence.preflight.controller import read_flagger
from evidence.preflight.hooks import public_url
from evidence.preflight.limits import exposure_of
from evidence.preflight.model import CheckResult
from evidence.preflight.plan import Hook
from evidence.preflight.promstatus import read_flags
from evidence.render.formatting import fmt_duration

CODE = "evidence-capture"
LEAD_S = TAIL_S = 600.0  # collect's default --lead and --tail
DEFAULT_RETENTION_S = 15 * 86400.0  # Prometheus' default when neither time nor size is set


def _long(seconds: float) -> str:
    """Return a retention as days from two days on (``15 d``), else like other durations."""
    return f"{seconds / 86400:g} d" if seconds >= 2 * 86400 else fmt_duration(seconds)


def is_receiver(url: str) -> bool:
    """Return whether a hook URL points at an evidence receiver (its host or path names ``evidence``)."""
    return "evidence" in public_url(url).lower()


def check_capture(ctx: Context) -> list[CheckResult]:
    """Check the event hook, the post-rollout hook and Prometheus' retention."""
    return [_hook(ctx, "event"), _hook(ctx, "post-rollout"), _retention(ctx)]


def _hook(ctx: Context, kind: str) -> CheckResult:
    hooks: list[Hook] = ctx.plan.hooks_of(kind)
    receivers = [h for h in hooks if is_receiver(h.url)]
    if receivers:
        names = ", ".join(f"{h.name} ({public_url(h.url)})" for h in receivers)
        extra = " — the record does not depend on Events (1 h TTL, reference §2.4)" if kind == "event" else ""
        return CheckResult(CODE, "ok", f"{kind} webhook to an evidence receiver: {names}{extra}")
    if kind == "event" and not hooks and ctx.flagger and read_flagger(ctx.flagger[0]).has("event-webhook", "EVENT_WEBHOOK_URL"):
        f = read_flagger(ctx.flagger[0])
        url = f.flags.get("event-webhook")
        shown = public_url(url) if url else "EVENT_WEBHOOK_URL"
        if url is None or is_receiver(url):
            return CheckResult(
                CODE, "ok", f"Flagger's global event webhook ({f.where}: {shown}) receives every event (reference §3.4)"
            )
    elsewhere = f" ({', '.join(h.name for h in hooks)} point elsewhere)" if hooks else ""
    why = (
        "the record will depend on Kubernetes Events, which are merged, dropped and expire after 1 h (reference §2.4)"
        if kind == "event"
        else "nothing records the outcome when the rollout ends (reference §3.1)"
    )
    return CheckResult(
        CODE,
        "warn",
        f"no {kind} webhook to an evidence receiver{elsewhere}: {why}",
        f"add a webhook of type {kind} pointing at the evidence receiver",
    )


def _retention(ctx: Context) -> CheckResult:
    need = LEAD_S + exposure_of(ctx).rollout_s + TAIL_S
    try:
        flags = read_flags(ctx.prom)
    except PrometheusError as exc:
        return CheckResult(
            CODE,
            "warn",
            f"Prometheus' retention is unknown ({exc})",
            f"make sure the store keeps at least {fmt_duration(need)} (lead + worst-case rollout + tail), or collect right after the rollout",
        )
    text = flags.get("storage.tsdb.retention.time", "")
    seconds = prometheus_duration(text) if text else None
    if not seconds:  # "0s" or unset: the default applies unless only a size limit is set
        if flags.get("storage.tsdb.retention.size", "0B") not in ("", "0B", "0"):
            return CheckResult(
                CODE,
                "warn",
                f"Prometheus keeps data by size only ({flags['storage.tsdb.retention.size']})",
                "check how long that lasts",
            )
        seconds = DEFAULT_RETENTION_S
    if (ctx.now - ctx.at).total_seconds() > seconds:
        return CheckResult(
            CODE,
            "warn",
            f"Prometheus keeps {_long(seconds)}, and --at is {_long((ctx.now - ctx.at).total_seconds())} ago: the series it was asked about may be gone",
            "choose an --at within the retention, or query a long-term store",
        )
    facts = f"Prometheus keeps {_long(seconds)}; the rollout needs {fmt_duration(need)} (10 min lead + worst-case rollout + 10 min tail)"
    if seconds < need:
        return CheckResult(
            CODE,
            "warn",
            f"{facts}: the start of a long rollout is gone before it can be collected (Flagger's bundled Prometheus keeps 2 h, reference §4.1)",
            "raise --storage.tsdb.retention.time, point --prometheus at a long-term store, or collect during the rollout",
        )
    return CheckResult(CODE, "ok", facts)
