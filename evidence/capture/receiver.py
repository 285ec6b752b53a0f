"""The receiver for Flagger's webhooks: journal first, answer at once, work later.

Endpoints: ``POST /flagger/event`` (the ``event`` hook) and ``POST /flagger/post-rollout`` (the
``post-rollout`` hook, and a ``rollback`` hook if one is pointed here); ``GET /healthz``,
``/readyz`` and ``/metrics``.

Answers (Flagger counts a status <= 202 as success, so 204 is never sent):

* ``202`` once the body is written and fsynced to the journal;
* ``400`` for a body that is not Flagger's payload (JSON object with ``name``, ``namespace``,
  ``phase``; an event also needs ``metadata.eventMessage``);
* ``401`` without ``Authorization: Bearer <token>`` when a token is configured;
* ``413`` above ``max_bytes``;
* ``409`` on ``/flagger/post-rollout`` for a phase other than ``Succeeded``/``Failed``, after
  journalling it.  Flagger sends post-rollout hooks only those two phases; a ``rollback`` hook
  sends the current phase and treats a status <= 202 as "roll back now", so answering 202 there
  would roll the canary back.  (Never point a ``pre-rollout`` or ``rollout`` hook here: any
  status above 202 counts a failed check.)

Captures never run in a request thread: a terminal post-rollout is handed to ``on_terminal``,
which only queues it, so every answer comes within the socket timeout (1 s) even while a
capture runs.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from evidence.capture.journal import Journal
from evidence.capture.metrics import Metrics
from evidence.errors import UsageError

MAX_BYTES = 1024 * 1024
TERMINAL = ("Succeeded", "Failed")
log = logging.getLogger("evidence.capture")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    receiver: Receiver


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "evidence-receiver"
    timeout = 1.0  # a client that trickles its body is cut off: answers stay within 1 s
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, code: int, body: bytes, content_type: str = "application/json") -> None:
        if self.path.startswith("/flagger/"):
            self.server.receiver.metrics.webhook(code)
        try:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            self.close_connection = True

    def _json(self, code: int, message: str) -> None:
        self._send(code, json.dumps({"code": code, "message": message}).encode() + b"\n")

    def do_GET(self) -> None:
        r = self.server.receiver
        if self.path == "/healthz":
            return self._send(200, b"ok\n", "text/plain")
        if self.path == "/readyz":
            ok = r.ready()
            return self._send(200 if ok else 503, b"ok\n" if ok else b"not ready\n", "text/plain")
        if self.path == "/metrics":
            return self._send(200, r.metrics.render(), "text/plain; version=0.0.4; charset=utf-8")
        self._json(404, f"no such path {self.path}; POST /flagger/event or /flagger/post-rollout")

    def do_POST(self) -> None:
        r = self.server.receiver
        hook = {"/flagger/event": "event", "/flagger/post-rollout": "post-rollout"}.get(self.path)
        if hook is None:
            return self._json(404, f"no such path {self.path}; POST /flagger/event or /flagger/post-rollout")
        if r.token is not None and self.headers.get("Authorization", "") != f"Bearer {r.token}":
            self.close_connection = True
            return self._json(401, "missing or wrong bearer token")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            return self._json(400, "a Content-Length is required")
        if length > r.max_bytes:
            self.close_connection = True
            return self._json(413, f"body of {length} bytes is above the limit of {r.max_bytes}")
        try:
            body = self.rfile.read(length)
        except OSError:
            self.close_connection = True
            return
        payload, problem = parse_payload(body, hook)
        if payload is None:
            return self._json(400, problem)
        try:
            r.journal.append(f"webhook:{hook}", payload["namespace"], payload["name"], payload, body=body)
        except OSError as exc:
            log.error(json.dumps({"msg": "journal write failed", "error": str(exc)}))
            return self._json(503, f"journal write failed: {exc}")
        if hook == "post-rollout":
            if payload["phase"] not in TERMINAL:
                return self._json(
                    409, f"phase {payload['phase']!r} is not terminal: journalled, no capture (and no rollback signalled)"
                )
            r.on_terminal(
                payload["namespace"],
                payload["name"],
                str(payload["phase"]),
                str(payload.get("checksum") or ""),
                "post-rollout webhook",
            )
        self._json(202, "journalled")


def parse_payload(body: bytes, hook: str) -> tuple[dict[str, Any] | None, str]:
    """Return Flagger's payload from ``body``, or None and what is wrong with it."""
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return None, f"body is not JSON: {exc}"
    if not isinstance(obj, dict):
        return None, "body is not a JSON object"
    for key in ("name", "namespace", "phase"):
        if not isinstance(obj.get(key), str) or not obj[key]:
            return None, f"{key!r} is missing or not a string: not Flagger's webhook payload"
    meta = obj.get("metadata")
    if meta is not None and not isinstance(meta, dict):
        return None, "'metadata' is not an object"
    if hook == "event" and not isinstance((meta or {}).get("eventMessage"), str):
        return None, "an event payload needs metadata.eventMessage"
    return obj, ""


class Receiver:
    """The HTTP server; ``start()`` serves in a thread, ``stop()`` ends it."""

    def __init__(
        self,
        journal: Journal,
        metrics: Metrics,
        on_terminal: Callable[[str, str, str, str, str], None],
        listen: str,
        token: str | None = None,
        max_bytes: int = MAX_BYTES,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        host, sep, port = listen.rpartition(":")
        if not sep or not port.isdigit():
            raise UsageError(f"--listen {listen!r}: write HOST:PORT, e.g. 0.0.0.0:8080")
        self.journal, self.metrics, self.on_terminal = journal, metrics, on_terminal
        self.token, self.max_bytes, self.ready = token, max_bytes, ready
        try:
            self._httpd = _Server((host or "0.0.0.0", int(port)), _Handler)
        except OSError as exc:
            raise UsageError(f"--listen {listen}: cannot listen ({exc.strerror or exc}); choose another address") from None
        self._httpd.receiver = self
        self.port = int(self._httpd.server_address[1])
        self._thread: threading.Thread | None = None

    def start(self) -> Receiver:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
