"""An HTTP proxy in front of a real Prometheus that injects faults, for the fault tests.

Rules match a substring of the decoded query string; each rule answers a status code, hangs,
or drops the connection, for its first ``times`` matching requests (or always).
"""

from __future__ import annotations

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
    action: str  # "status" | "hang" | "drop"
    status: int = 503
    times: int | None = None  # None: always
    hits: int = 0


@dataclass
class FaultProxy:
    upstream: str
    rules: list[Rule] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    require: dict[str, str] = field(default_factory=dict)  # header -> value, else 401

    def __post_init__(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                query = urllib.parse.unquote_plus(self.path)
                proxy.requests.append(query)
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
                    if rule.match in query and (rule.times is None or rule.hits < rule.times):
                        rule.hits += 1
                        if rule.action == "hang":
                            time.sleep(30)
                            return
                        if rule.action == "drop":
                            self.connection.close()
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
