"""Chat notifications after each capture: Slack (Block Kit), Microsoft Teams (Adaptive Card), Discord (embeds).

``decision(evaluation)`` turns an evaluation into the plain facts a message shows: the canary,
Flagger's outcome, the policy verdict, each breached criterion with its worst value and
threshold, the detection lag, the blast radius.  ``payload(fmt, facts)`` builds one format's
body (reference shapes: Slack ``blocks`` with a ``text`` fallback; Teams a ``message`` whose
``attachments`` hold an Adaptive Card 1.4; Discord ``embeds`` with ``allowed_mentions`` empty).
The format is chosen by ``--notify-format`` or by the URL's host.

``Notifier.send`` never blocks the capture: each message goes out from a background thread,
retried with exponential backoff on transport errors, 429 and 5xx, and every failure is logged.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit

from evidence.capture.metrics import Metrics
from evidence.errors import UsageError

FORMATS = ("slack", "teams", "discord")
log = logging.getLogger("evidence.capture")
RED, GREEN, GREY = 15548997, 5763719, 9807270


def decision(ev: Any) -> dict[str, Any]:
    """Return the facts of an evaluation that a notification shows (plain JSON values)."""
    breached = [
        {"criterion": c.name, "value": c.worst_value, "threshold": c.threshold, "comparator": c.comparator, "unit": c.unit}
        for c in ev.criteria
        if c.breached
    ]
    return {
        "bundle_id": ev.bundle_id,
        "canary": ev.canary,
        "flagger_outcome": ev.outcome,
        "verdict": ev.verdict,
        "breached": breached,
        "detection_lag_seconds": ev.lag.detection_lag_seconds,
        "blast_radius": {
            "max_weight": ev.blast.max_weight,
            "canary_requests": ev.blast.canary_requests,
            "canary_errors": ev.blast.canary_errors,
        },
    }


def format_for(url: str, chosen: str | None) -> str:
    """Return the format for ``url``: ``chosen`` if given, else by host; raise UsageError if unknown."""
    if chosen:
        if chosen not in FORMATS:
            raise UsageError(f"--notify-format {chosen!r}: choose one of {', '.join(FORMATS)}")
        return chosen
    host = (urlsplit(url).hostname or "").lower()
    if host.endswith("slack.com"):
        return "slack"
    if host.endswith("discord.com") or host.endswith("discordapp.com"):
        return "discord"
    if "office.com" in host or "logic.azure.com" in host or "powerplatform.com" in host:
        return "teams"
    raise UsageError(f"--notify {url}: cannot tell Slack, Teams or Discord from the host; add --notify-format")


def _lines(f: dict[str, Any]) -> list[tuple[str, str]]:
    lag = f.get("detection_lag_seconds")
    blast = f.get("blast_radius") or {}
    rows = [
        ("Canary", str(f.get("canary"))),
        ("Flagger outcome", str(f.get("flagger_outcome"))),
        ("Policy verdict", str(f.get("verdict"))),
        ("Detection lag", "n/a" if lag is None else f"{lag:.0f} s"),
        (
            "Blast radius",
            f"max weight {blast.get('max_weight')}%, {blast.get('canary_errors')} errors in {blast.get('canary_requests')} canary requests",
        ),
    ]
    for b in f.get("breached") or []:
        value = "no data" if b["value"] is None else f"{b['value']:.4g}{b.get('unit') or ''}"
        rows.append(
            (f"Breached: {b['criterion']}", f"{value} (threshold {b['comparator']} {b['threshold']:g}{b.get('unit') or ''})")
        )
    rows.append(("Bundle", f"{f.get('bundle_id')} at {f.get('location')}"))
    return rows


def payload(fmt: str, f: dict[str, Any]) -> dict[str, Any]:
    """Return the message body of ``fmt`` for the facts ``f``."""
    title = f"Canary {f.get('canary')}: {f.get('flagger_outcome')}, policy {f.get('verdict')}"
    rows = _lines(f)
    link = str(f.get("location") or "")
    linkable = link.startswith(("http://", "https://"))
    if fmt == "slack":
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"*Policy verdict:* {f.get('verdict')}"},
                "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"[:2000]} for k, v in rows[:10]],
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"bundle {f.get('bundle_id')}"}]},
        ]
        if linkable:
            blocks.append(
                {
                    "type": "actions",
                    "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Decision record"}, "url": link}],
                }
            )
        return {"text": title, "blocks": blocks}
    if fmt == "teams":
        card: dict[str, Any] = {
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.4",
            "msteams": {"width": "Full"},
            "body": [
                {"type": "TextBlock", "text": title, "size": "large", "weight": "bolder", "wrap": True},
                {"type": "FactSet", "facts": [{"title": k, "value": v} for k, v in rows]},
            ],
        }
        if linkable:
            card["actions"] = [{"type": "Action.OpenUrl", "title": "Decision record", "url": link}]
        return {
            "type": "message",
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}],
        }
    if fmt == "discord":
        embed: dict[str, Any] = {
            "title": title[:256],
            "description": f"Policy verdict: {f.get('verdict')}",
            "color": RED if f.get("verdict") == "abort" else GREEN if f.get("verdict") else GREY,
            "fields": [{"name": k[:256], "value": v[:1024], "inline": True} for k, v in rows[:25]],
            "footer": {"text": str(f.get("bundle_id"))},
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if linkable:
            embed["url"] = link
        return {"username": "evidence", "content": title[:2000], "embeds": [embed], "allowed_mentions": {"parse": []}}
    raise UsageError(f"unknown notification format {fmt!r}; choose one of {', '.join(FORMATS)}")


def post(url: str, body: dict[str, Any], attempts: int = 4, backoff_s: float = 1.0, timeout_s: float = 5.0) -> int:
    """POST ``body``; retry transport errors, 429 and 5xx with exponential backoff; return the last status (0: no answer)."""
    data = json.dumps(body).encode()
    status = 0
    for attempt in range(attempts):
        req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
        retry_after = None
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            status = exc.code
            if status != 429 and status < 500:
                return status
            retry_after = exc.headers.get("Retry-After")
        except (urllib.error.URLError, OSError):
            status = 0
        if attempt + 1 < attempts:
            wait = backoff_s * 2**attempt
            if retry_after and retry_after.isdigit():
                wait = min(float(retry_after), 30.0)
            time.sleep(wait)
    return status


class Notifier:
    """Sends each capture's decision to every URL from one background thread."""

    def __init__(self, urls: tuple[str, ...], fmt: str | None, metrics: Metrics, backoff_s: float = 1.0) -> None:
        self.targets = [(u, format_for(u, fmt)) for u in urls]
        self.metrics = metrics
        self.backoff_s = backoff_s
        self._q: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        if self.targets:
            self._thread = threading.Thread(target=self._run, name="evidence-notify", daemon=True)
            self._thread.start()

    def send(self, facts: dict[str, Any]) -> None:
        if self.targets:
            self._q.put(facts)

    def close(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            self._q.put(None)
            self._thread.join(timeout=timeout)

    def _run(self) -> None:
        while (facts := self._q.get()) is not None:
            for url, fmt in self.targets:
                status = post(url, payload(fmt, facts), backoff_s=self.backoff_s)
                ok = 200 <= status < 300
                self.metrics.notification("sent" if ok else "failed")
                host = urlsplit(url).hostname
                entry = {
                    "msg": "notification",
                    "format": fmt,
                    "host": host,
                    "status": status,
                    "bundle_id": facts.get("bundle_id"),
                }
                (log.info if ok else log.warning)(json.dumps(entry))
