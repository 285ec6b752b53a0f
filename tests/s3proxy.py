"""A pass-through HTTP proxy in front of the real S3 server that refuses writes or vanishes, for the archive tests.

Requests are forwarded byte for byte with their Host header, so SigV4 signatures still verify
upstream.  ``refuse_puts``: every PUT answers 403 AccessDenied (``refuse_puts_matching``: every PUT
whose path holds that text).  ``vanish_after_puts=N``: after N
forwarded PUTs every request has its connection dropped, as if the store disappeared.
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

DENIED = b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>'


@dataclass
class S3FaultProxy:
    upstream: str
    refuse_puts: bool = False
    refuse_puts_matching: str | None = None
    vanish_after_puts: int | None = None
    puts: int = 0
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        proxy = self
        up = urlsplit(self.upstream)

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _gone(self) -> bool:
                return proxy.vanish_after_puts is not None and proxy.puts >= proxy.vanish_after_puts

            def _handle(self) -> None:
                proxy.log.append(f"{self.command} {self.path}")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self._gone():
                    self.close_connection = True
                    self.connection.close()
                    return
                if self.command == "PUT":
                    matching = proxy.refuse_puts_matching
                    if proxy.refuse_puts or (matching is not None and matching in self.path):
                        self.send_response(403)
                        self.send_header("Content-Type", "application/xml")
                        self.send_header("Content-Length", str(len(DENIED)))
                        self.end_headers()
                        self.wfile.write(DENIED)
                        return
                    proxy.puts += 1
                conn = http.client.HTTPConnection(up.hostname or "127.0.0.1", up.port or 80, timeout=30)
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for k, v in self.headers.items():
                    conn.putheader(k, v)
                conn.endheaders(body or None)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> S3FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.server.shutdown()
        self.server.server_close()
