"""Notifications against a loopback HTTP receiver: the payload shape per format, retries on 5xx, never blocking."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from evidence.bundle import open_bundle
from evidence.capture.metrics import NAMES, Metrics
from evidence.capture.notify import Notifier, decision, format_for, payload
from evidence.errors import UsageError
from evidence.evaluate import evaluate_bundle
from evidence.policy import default_policy

README = Path(__file__).resolve().parent.parent / "README.md"


class Sink:
    """A loopback webhook: answers the queued statuses in turn (then ``final``), records each body."""

    def __init__(self, statuses: list[int], final: int = 200, delay: float = 0.0) -> None:
        self.statuses, self.final, self.delay = list(statuses), final, delay
        self.bodies: list[dict[str, Any]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                sink.bodies.append(json.loads(body))
                time.sleep(sink.delay)
                code = sink.statuses.pop(0) if sink.statuses else sink.final
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def sink_for() -> Iterator[Callable[..., Sink]]:
    made: list[Sink] = []

    def make(*a: Any, **kw: Any) -> Sink:
        made.append(Sink(*a, **kw))
        return made[-1]

    yield make
    for s in made:
        s.close()


@pytest.fixture(scope="module")
def facts(bundle_for: Callable[[str], Path]) -> dict[str, Any]:
    ev = evaluate_bundle(open_bundle(bundle_for("rollback-error-rate")), default_policy())
    return dict(decision(ev), location="https://archive.example/bundles/x")


def send(fmt: str, sink: Sink, facts: dict[str, Any], metrics: Metrics) -> None:
    n = Notifier((sink.url,), fmt, metrics, backoff_s=0.01)
    n.send(facts)
    n.close()


def test_slack_block_kit(sink_for: Callable[..., Sink], facts: dict[str, Any]) -> None:
    sink, metrics = sink_for([]), Metrics()
    send("slack", sink, facts, metrics)
    (body,) = sink.bodies
    assert facts["canary"] in body["text"] and [b["type"] for b in body["blocks"]] == ["header", "section", "context", "actions"]
    fields = "\n".join(f["text"] for f in body["blocks"][1]["fields"])
    breach = facts["breached"][0]
    assert (
        f"*Breached: {breach['criterion']}*" in fields and f"threshold {breach['comparator']} {breach['threshold']:g}" in fields
    )
    assert body["blocks"][3]["elements"][0]["url"] == facts["location"]
    assert 'evidence_notifications_total{outcome="sent"} 1' in metrics.render().decode()


def test_teams_adaptive_card_in_a_message(sink_for: Callable[..., Sink], facts: dict[str, Any]) -> None:
    sink = sink_for([], final=202)  # Workflows answer 202
    send("teams", sink, facts, Metrics())
    (body,) = sink.bodies
    assert body["type"] == "message"
    (att,) = body["attachments"]
    assert att["contentType"] == "application/vnd.microsoft.card.adaptive" and att["contentUrl"] is None
    card = att["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    facts_shown = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts_shown["Policy verdict"] == facts["verdict"] and facts_shown["Flagger outcome"] == facts["flagger_outcome"]
    assert card["actions"][0] == {"type": "Action.OpenUrl", "title": "Decision record", "url": facts["location"]}


def test_discord_embeds(sink_for: Callable[..., Sink], facts: dict[str, Any]) -> None:
    sink = sink_for([], final=204)  # Discord answers 204
    send("discord", sink, facts, Metrics())
    (body,) = sink.bodies
    (embed,) = body["embeds"]
    assert body["allowed_mentions"] == {"parse": []} and embed["url"] == facts["location"]
    assert embed["color"] == (15548997 if facts["verdict"] == "abort" else 5763719)
    assert embed["footer"]["text"] == facts["bundle_id"]
    assert any(f["name"].startswith("Breached: ") for f in embed["fields"])


def test_5xx_is_retried_4xx_is_not(sink_for: Callable[..., Sink], facts: dict[str, Any]) -> None:
    flaky, metrics = sink_for([503, 500]), Metrics()
    send("slack", flaky, facts, metrics)
    assert len(flaky.bodies) == 3 and flaky.bodies[0] == flaky.bodies[2]
    bad = sink_for([400])
    send("slack", bad, facts, metrics)
    assert len(bad.bodies) == 1
    text = metrics.render().decode()
    assert 'evidence_notifications_total{outcome="sent"} 1' in text and 'evidence_notifications_total{outcome="failed"} 1' in text


def test_a_slow_receiver_never_blocks_the_capture(sink_for: Callable[..., Sink], facts: dict[str, Any]) -> None:
    slow = sink_for([], delay=1.0)
    n = Notifier((slow.url,), "slack", Metrics(), backoff_s=0.01)
    t0 = time.perf_counter()
    n.send(facts)
    assert time.perf_counter() - t0 < 0.1
    n.close()
    assert len(slow.bodies) == 1


def test_format_by_url_or_option() -> None:
    assert format_for("https://hooks.slack.com/services/T/B/x", None) == "slack"
    assert format_for("https://discord.com/api/webhooks/1/t", None) == "discord"
    assert format_for("https://prod-1.westeurope.logic.azure.com/workflows/x", None) == "teams"
    assert format_for("http://127.0.0.1:9/x", "teams") == "teams"
    with pytest.raises(UsageError, match="--notify-format"):
        format_for("http://127.0.0.1:9/x", None)
    assert payload("slack", {"canary": "a/b"})["text"].startswith("Canary a/b")


def test_readme_lists_every_metric() -> None:
    text = README.read_text(encoding="utf-8")
    section = text[text.index("`GET /metrics`") :]
    section = section[: section.index("\n\n")]
    assert sorted(set(re.findall(r"`(evidence_[a-z_]+)", section))) == sorted(NAMES)
