"""``rollback-path``: a way to stop a bad canary exists, and (``--probe-webhooks``) what the gates answer now.

Webhook semantics are ``pkg/controller/webhook.go``'s (reference §3.1, §3.3): a POST of
``{name, namespace, phase, checksum, metadata}``; status ``≤ 202`` is success, anything else
(204 included) a failure.  For a ``rollback`` hook success means *roll back*, so a rollback hook
that already answers ≤ 202 rolls the canary back at the first tick.  A closed confirm gate makes
the canary wait (``Waiting`` / ``WaitingPromotion``) without a failed check.

The probe sends phase ``Initialized`` and an empty ``checksum`` (Flagger's checksum is a hash
of its own status that cannot be recomputed here), one attempt, bounded by the hook's timeout
and ``--timeout``.  URLs are shown without credentials or query strings.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from evidence.preflight.context import Context
from evidence.preflight.controller import read_flagger
from evidence.preflight.model import CheckResult, Status
from evidence.preflight.plan import Hook

CODE = "rollback-path"
PROBED = ("rollback", "confirm-rollout", "confirm-promotion")


@dataclass(frozen=True)
class Answer:
    """What a probed hook answered: an HTTP status, or why there was none."""

    status: int | None
    error: str | None = None


def public_url(url: str) -> str:
    """Return ``url`` without user:password and without its query (where tokens hide)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def probe_hook(hook: Hook, namespace: str, name: str, timeout_s: float) -> Answer:
    """POST Flagger's payload with phase Initialized to ``hook.url``; one attempt within ``timeout_s``."""
    payload: dict[str, object] = {"name": name, "namespace": namespace, "phase": "Initialized", "checksum": ""}
    if hook.metadata:
        payload["metadata"] = hook.metadata
    if not hook.url.startswith(("http://", "https://")):
        return Answer(None, f"not an http(s) URL: {public_url(hook.url)!r}")
    headers = {"Content-Type": "application/json", "X-Evidence-Preflight": "probe"}
    parts = urlsplit(hook.url)
    if parts.username is not None:
        # Go's client sends user:password@ as basic auth; urllib would take it for the host.
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    url = urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, parts.query, parts.fragment))
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return Answer(int(response.status))
    except urllib.error.HTTPError as exc:
        return Answer(int(exc.code))
    except TimeoutError:
        return Answer(None, f"no answer within {timeout_s:g}s")
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            return Answer(None, f"no answer within {timeout_s:g}s")
        return Answer(None, f"unreachable ({reason})")


def check_rollback_path(ctx: Context) -> list[CheckResult]:
    """Check that a rollback path exists; with --probe-webhooks, call the gates Flagger calls."""
    out = [_path(ctx)]
    hooks = ctx.plan.hooks_of(*PROBED)
    if ctx.probe and not ctx.live:
        out += [
            CheckResult(
                CODE,
                "skip",
                f"{h.type} hook {h.name}: not probed, the hooks are called on the live cluster only",
                "run with --kubeconfig/--context",
            )
            for h in hooks
        ]
    elif ctx.probe:
        out += [_judge(h, probe_hook(h, ctx.ref.namespace, ctx.ref.name, min(h.timeout_s, ctx.timeout_s))) for h in hooks]
    return out


def _path(ctx: Context) -> CheckResult:
    plan = ctx.plan
    found = [f"{h.type} hook {h.name}" for h in plan.hooks_of("rollback", "pre-rollout")]
    found += [f"alert provider {p}" for p in plan.alert_providers]
    if not plan.alert_providers and ctx.flagger:
        f = read_flagger(ctx.flagger[0])
        # Without analysis.alerts, Flagger's global Slack/Teams notifier gets every alert (§7.1).
        if f.has("slack-url", "SLACK_URL") or f.has("msteams-url", "MSTEAMS_URL"):
            found.append(f"Flagger's global notifier ({f.where})")
    probe_note = "" if ctx.probe or not plan.hooks_of(*PROBED) else " (pass --probe-webhooks to call the hooks)"
    if found:
        return CheckResult(CODE, "ok", "rollback path: " + ", ".join(found) + probe_note)
    status: Status = "block" if ctx.policy.limits.require_rollback_path else "warn"
    return CheckResult(
        CODE,
        status,
        "no rollback path: no rollback or pre-rollout webhook and no alert provider, so nobody can stop or hear about a bad canary",
        "add a rollback webhook or an analysis.alerts entry with an AlertProvider",
    )


def _judge(hook: Hook, answer: Answer) -> CheckResult:
    what = f"{hook.type} hook {hook.name} ({public_url(hook.url)})"
    if answer.status is None:
        then = (
            "Flagger would count it as closed"
            if hook.type != "rollback"
            else "Flagger would read it as 'no rollback', so it cannot stop a canary"
        )
        return CheckResult(
            CODE, "warn", f"{what}: {answer.error}; {then}", "make the hook reachable from Flagger before the rollout"
        )
    code = answer.status
    if hook.type == "rollback":
        if code <= 202:
            return CheckResult(
                CODE,
                "block",
                f"{what} answers {code}: status ≤ 202 means 'roll back', so Flagger would roll the canary back at its first tick (reference §3.1, §3.3)",
                "make the hook answer a status above 202 (e.g. 204 or 404) unless a rollback is wanted",
            )
        if code >= 500:
            return CheckResult(
                CODE,
                "warn",
                f"{what} answers {code}: read as 'no rollback', but the hook is failing",
                "fix the hook so it can signal a rollback",
            )
        return CheckResult(CODE, "ok", f"{what} answers {code}: not signalling a rollback")
    gate = "Waiting" if hook.type == "confirm-rollout" else "WaitingPromotion"
    if code <= 202:
        return CheckResult(CODE, "ok", f"{what} answers {code}: the gate is open")
    return CheckResult(
        CODE,
        "warn",
        f"{what} answers {code}: the gate is closed (any status above 202, 204 included), so the canary would wait in {gate} (reference §3.1)",
        "open the gate when the rollout should proceed",
    )
