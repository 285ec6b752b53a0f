"""An HTTP proxy in front of a real Prometheus that injects faults, for the fault tests.

Rules match a substring of the decoded query string; each rule answers a status code, hangs,
answers late (``slow``: after ``delay`` seconds), or drops the connection, for its first ``times`` matching requests (or always).  The hostile
actions: ``body`` answers ``status`` with ``body`` as is (an HTML page, a 200 with
``status: error``, a wrong shape, a 401 echoing a credential); ``partial`` forwards the query and
answers Thanos-style — ``status: success`` with ``warnings`` and only the first half of the
series; ``trickle`` sends a valid answer one byte every ``delay`` seconds; ``endless`` sends a
body that never ends.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType


@dataclass
class Rule:
    match: str
    action: str  # "status" | "hang" | "slow" | "drop" | "body" | "partial" | "trickle" | "endless"
    status: int = 503
    times: int | None = None  # None: always
    hits: int = 0
    body: bytes = b""
    content_type: str = "application/json"
    delay: float = 0.5
    after: int = 0  # the first ``after`` matching requests pass through untouched
    seen: int = 0


@dataclass
class FaultProxy:
    upstream: str
    rules: list[Rule] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)  # time.monotonic() of each request, as ``requests``
    require: dict[str, str] = field(default_factory=dict)  # header -> value, else 401

    def __post_init__(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                query = urllib.parse.unquote_plus(self.path)
                proxy.requests.append(query)
                proxy.arrivals.append(time.monotonic())
                proxy.headers.append({k: v for k, v in self.headers.items()})
                if any(self.headers.get(k) != v for k, v in proxy.require.items()):
                    body = b'{"status":"error","errorType":"unauthorized","error":"missing or wrong credentials"}'
                    self.send_response(401)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                for rule in proxy.rules:
                    if rule.match in query and rule.seen < rule.after:
                        rule.seen += 1
                        continue
                    if rule.match in query and (rule.times is None or rule.hits < rule.times):
                        rule.hits += 1
                        if rule.action == "hang":
                            time.sleep(30)
                            return
                        if rule.action == "slow":  # answer correctly, ``delay`` seconds late
                            time.sleep(rule.delay)
                            break
                        if rule.action == "drop":
                            self.connection.close()
                            return
                        if rule.action in ("body", "partial", "trickle", "endless"):
                            self._hostile(rule)
                            return
                        body = b'{"status":"error","errorType":"internal","error":"injected fault"}'
                        self.send_response(rule.status)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        self.wfile.write(body)
                        return
                try:
                    with urllib.request.urlopen(proxy.upstream + self.path, timeout=30) as r:
                        body, status, ctype = r.read(), r.status, r.headers.get("Content-Type", "application/json")
                except urllib.error.HTTPError as exc:
                    body, status, ctype = exc.read(), exc.code, "application/json"
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _upstream(self) -> tuple[int, bytes]:
                try:
                    with urllib.request.urlopen(proxy.upstream + self.path, timeout=30) as r:
                        return r.status, r.read()
                except urllib.error.HTTPError as exc:
                    return exc.code, exc.read()

            def _hostile(self, rule: Rule) -> None:
                try:
                    if rule.action == "endless":
                        self.send_response(200)
                        self.send_header("Content-Type", "application/json")
                        self.end_headers()
                        self.wfile.write(b'{"status":"success","data":{"resultType":"vector","result":[')
                        chunk = b'{"metric":{"a":"' + b"x" * 65536 + b'"},"value":[1,"1"]},'
                        deadline = time.monotonic() + 60
                        while time.monotonic() < deadline:
                            self.wfile.write(chunk)
                        return
                    if rule.action == "body":
                        status, body = rule.status, rule.body
                    else:
                        status, body = self._upstream()
                    if rule.action == "partial":
                        doc = json.loads(body)
                        result = doc.get("data", {}).get("result", [])
                        doc["data"]["result"] = result[: len(result) // 2]
                        doc["warnings"] = ["partial response: store 10.0.0.7:10901 did not answer (context deadline exceeded)"]
                        body = json.dumps(doc).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", rule.content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if rule.action == "trickle":
                        for i in range(len(body)):
                            self.wfile.write(body[i : i + 1])
                            self.wfile.flush()
                            time.sleep(rule.delay)
                    else:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.server.shutdown()
        self.server.server_close()
