"""PromQL over the Prometheus HTTP API (Prometheus, Thanos, Mimir, Cortex, VictoriaMetrics).

Documented HTTP requests (``requests``), bounded in time and size.  Credentials (bearer token, basic auth, user:password in
the URL) are sent but never described: ``describe()`` and every error message carry the
URL without them.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from evidence.errors import PrometheusError, PrometheusInvalidQuery, PrometheusPartial, PrometheusTimeout, UsageError

#: Prometheus refuses range queries of more than 11,000 points per series.
MAX_POINTS = 11_000
#: The largest answer read from Prometheus; a 2-hour chunk of a busy service is a few MB.
DEFAULT_MAX_BYTES = 256 * 2**20
CHUNK_BYTES = 64 * 1024
#: Prometheus' PromQL annotations (2.46+) travel in ``warnings`` too; they do not mean data is missing.
_ANNOTATIONS = ("PromQL info:", "PromQL warning:")
#: ``--prometheus-compression``: whether answers are asked gzip-compressed.
COMPRESSION_MODES = ("auto", "gzip", "none")
#: ``auto``: a Prometheus that answers ``vector(1)`` within this many milliseconds (the better of
#: two, on the open connection) is near, and asked for uncompressed answers.
NEAR_MS = 5.0


@dataclass(frozen=True)
class PrometheusAuth:
    """How to authenticate to Prometheus; any field may be empty."""

    bearer_token: str | None = None
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    insecure_skip_verify: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    client_cert: tuple[str, str] | None = None  # (cert file, key file): the API server's service proxy may want one

    def secrets(self) -> tuple[str, ...]:
        """Return the credential values themselves, to scrub them from anything a server echoes."""
        from evidence.redact import secret_key

        # Tenant headers (X-Scope-OrgID) are not secrets: scrubbing their value would blank a namespace.
        headers = [v for k, v in self.headers.items() if secret_key(k) or k.lower() in ("authorization", "cookie")]
        values = [self.bearer_token, self.password, *headers]
        return tuple(v for v in values if v and len(v) >= 4)

    def kinds(self) -> list[str]:
        """Return which kinds of credentials are set (for the manifest; never the values)."""
        out = []
        if self.bearer_token:
            out.append("bearer-token")
        if self.username:
            out.append("basic-auth")
        if self.ca_file:
            out.append("ca-file")
        if self.insecure_skip_verify:
            out.append("insecure-skip-verify")
        if self.client_cert:
            out.append("client-cert")
        return out


def strip_credentials(url: str) -> tuple[str, str | None, str | None]:
    """Return the URL without user:password, and the user and password it carried."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url, None, None
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment)), parts.username, parts.password


def read_token_file(path: str) -> str:
    """Read a bearer token file (like a service-account token): a regular file of at most 64 KiB."""
    from evidence.errors import read_bounded

    text = read_bounded(path, "--prometheus-token-file", 64 * 1024, UsageError).strip()
    if not text:
        raise UsageError(f"--prometheus-token-file {path}: the file is empty")
    return text


class PrometheusSource:
    """Runs instant and range queries with bounded retries, a total time bound and a size bound per answer.

    Every request is a plain, documented HTTP request (``GET /api/v1/query`` and
    ``/api/v1/query_range``) made with ``requests``: prometheus-api-client rounds range bounds to
    whole seconds, drops the answer's ``warnings`` and cannot bound an answer's total time or
    size: a Thanos or Cortex answer with ``warnings`` (a store or replica did not answer)
    is partial, and taking it as complete would turn an ABORT into a PASS.  Each answer is read
    as a stream under a deadline of ``timeout`` seconds, whatever the server does (a body that
    trickles a byte a second is cut off), and is refused beyond ``max_bytes``.

    Answers are asked gzip-compressed (requests' default) or not as ``compression`` says; the
    data is the same.  Prometheus compresses at about 15 MB/s (2.42 here: a 2.5 MB answer takes
    150 ms compressed, 20 ms not), more than a fast link saves, so ``auto`` lets ``ping`` decide:
    a Prometheus that answers within ``near_ms`` (loopback, the same cluster or host) is asked
    uncompressed, one further away (a remote API, a ``kubectl port-forward`` or the API
    server's service proxy to another site) compressed; a source that is never pinged
    (preflight's, the watcher's before its first capture: small answers) asks as requests does.
    An ``Accept-Encoding`` among the headers wins over both.
    """

    def __init__(
        self,
        url: str,
        auth: PrometheusAuth | None = None,
        timeout: float = 30.0,
        retries: int = 2,
        max_bytes: int = DEFAULT_MAX_BYTES,
        backoff: float = 0.2,
        compression: str = "auto",
        near_ms: float = NEAR_MS,
    ) -> None:
        clean, user, password = _checked_url(url)
        auth = auth or PrometheusAuth()
        if user is not None and not auth.username:
            auth = replace(auth, username=user, password=password or "", headers=dict(auth.headers))  # the rest kept
        if auth.ca_file and not Path(auth.ca_file).is_file():
            raise UsageError(f"--prometheus-ca-file {auth.ca_file}: no such file")
        if not timeout > 0 or not math.isfinite(timeout):
            raise UsageError(f"--timeout {timeout}: give a number of seconds above 0")
        self.url = clean
        self.auth = auth
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))
        self.max_bytes = int(max_bytes)
        self.backoff = backoff
        if compression not in COMPRESSION_MODES:
            raise UsageError(f"--prometheus-compression {compression!r}: choose from {', '.join(COMPRESSION_MODES)}")
        self.compression = compression
        self.near_ms = float(near_ms)
        #: Whether answers are asked gzip-compressed: under ``auto``, as requests does until ``ping`` decides.
        self.gzip = compression != "none"
        #: Under ``auto``, after ``ping``: the better of its two timed ``vector(1)`` answers, in ms.
        self.answer_ms: float | None = None
        self._session: Any = None
        self._lock = threading.Lock()

    def describe(self) -> str:
        return self.url

    def _new_session(self) -> Any:
        import requests

        session = requests.Session()
        session.verify = self.auth.ca_file or not self.auth.insecure_skip_verify
        if not self.gzip:
            session.headers["Accept-Encoding"] = "identity"
        session.headers.update(self.auth.headers)  # an Accept-Encoding given here wins
        if self.auth.bearer_token:
            session.headers["Authorization"] = f"Bearer {self.auth.bearer_token}"
        if self.auth.username:
            session.auth = (self.auth.username, self.auth.password or "")
        if self.auth.client_cert:
            session.cert = self.auth.client_cert
        if self.auth.insecure_skip_verify:
            import urllib3

            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        return session

    def _http(self) -> Any:
        """Return the session of the queries: no retries of its own (``_query`` retries, under its deadline)."""
        with self._lock:
            if self._session is None:
                self._session = self._new_session()
            return self._session

    def at(self, url: str, timeout: float = 5.0) -> PrometheusSource:
        """Return a source for another Prometheus (a MetricTemplate's ``provider.address``): same bounds, no credentials.

        This source's credentials are never sent to another host, and none are read from
        Kubernetes Secrets; ``timeout`` caps the probe of an address that may not be reachable from here.
        """
        return PrometheusSource(
            url, None, min(self.timeout, timeout), 0, self.max_bytes, self.backoff, self.compression, self.near_ms
        )

    def ping(self) -> None:
        """Check that the API answers (``vector(1)``, under the same time and size bounds); raise PrometheusError otherwise."""
        if not self._vector1():
            raise PrometheusError(f"{self.url} answered vector(1) with nothing: is it a Prometheus API?")
        if self.compression == "auto" and not self._own_encoding():
            self._decide_compression()

    def _decide_compression(self) -> None:
        """``auto``: time ``vector(1)`` twice on the open connection; ask a near Prometheus for uncompressed answers.

        A failed timing query leaves the answers compressed (the health check itself passed).  The
        session's headers change here, before collect's fetch threads start; the watcher runs its
        captures one at a time, so no request is being prepared meanwhile.
        """
        times = []
        try:
            for _ in range(2):
                t0 = time.monotonic()
                self._vector1()
                times.append((time.monotonic() - t0) * 1000)
        except PrometheusError:
            return
        self.answer_ms = min(times)
        with self._lock:
            self.gzip = self.answer_ms > self.near_ms
            if self._session is not None:
                import requests

                compressed = requests.utils.default_headers()["Accept-Encoding"]  # requests' own: gzip, deflate…
                self._session.headers["Accept-Encoding"] = compressed if self.gzip else "identity"

    def _vector1(self) -> list[dict[str, Any]]:
        return self._query("a test query (vector(1))", "/api/v1/query", {"query": "vector(1)"})

    def _own_encoding(self) -> bool:
        return any(k.lower() == "accept-encoding" for k in self.auth.headers)

    def instant(self, query: str, at: dt.datetime, check_samples: bool = True) -> list[dict[str, Any]]:
        """Run an instant query at ``at``; return the API's result list (vector or matrix).

        Every sample is checked to be [unix time, "value"]; ``check_samples=False`` leaves that to
        the caller (collect's raw chunks: ``samplestream.parse_raw`` checks them as it parses).
        """
        result = self._query("an instant query", "/api/v1/query", {"query": query, "time": f"{at.timestamp():.3f}"})
        if check_samples:
            self._check_samples(result)
        return result

    def range(self, query: str, start: dt.datetime, end: dt.datetime, step_s: float) -> list[dict[str, Any]]:
        """Run a range query with exact (millisecond) bounds; the caller keeps it under MAX_POINTS points per series."""
        params = {"query": query, "start": f"{start.timestamp():.3f}", "end": f"{end.timestamp():.3f}", "step": f"{step_s:g}s"}
        result = self._query("a range query", "/api/v1/query_range", params)
        self._check_samples(result)
        return result

    def _check_samples(self, result: list[dict[str, Any]]) -> None:
        """Raise PrometheusError (scrubbed, as every message built from an answer) when a sample is malformed."""
        try:
            _check_samples(result)
        except PrometheusError as exc:
            raise PrometheusError(self._clean(str(exc))) from None

    def scrub(self, text: str) -> str:
        """Return text from or about an answer with this source's credentials scrubbed out."""
        return self._clean(text)

    def _query(self, what: str, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        # Thanos: fail rather than answer from the stores that happened to respond.
        params = dict(params, partial_response="false")
        for attempt in range(self.retries + 1):
            retry = attempt < self.retries
            status, body = self._guard(what, lambda: self._get(path, params))
            if (status >= 500 or status == 429) and retry:
                time.sleep(self.backoff * 2**attempt)
                continue
            return self._result(what, status, body)
        raise AssertionError("unreachable")  # pragma: no cover

    def _get(self, path: str, params: dict[str, str]) -> tuple[int, bytes]:
        """GET one answer as a stream, within the deadline and the size bound."""
        deadline = time.monotonic() + self.timeout
        session = self._http()
        # verify per request: a session's own verify loses to REQUESTS_CA_BUNDLE in requests' merge of settings.
        resp = session.get(
            f"{self.url}{path}", params=params, timeout=(self.timeout, self.timeout), stream=True, verify=session.verify
        )
        try:
            chunks: list[bytes] = []
            size = 0
            # read1 returns what one read of the socket gives: a body that trickles a byte at a time
            # still meets the deadline check after every byte (iter_content would wait for a full chunk).
            while chunk := resp.raw.read1(CHUNK_BYTES, decode_content=True):
                size += len(chunk)
                if size > self.max_bytes:
                    raise PrometheusError(
                        f"Prometheus at {self.url} answered with more than {self.max_bytes // 2**20} MiB; "
                        "narrow the window (--start/--end) or the query"
                    )
                if time.monotonic() > deadline:
                    raise _Deadline()
                chunks.append(chunk)
            return int(resp.status_code), b"".join(chunks)
        finally:
            resp.close()

    def _guard(self, what: str, call: Any) -> Any:
        """Run ``call``, turning transport failures into PrometheusError with the URL and a fix."""
        import requests

        for attempt in range(self.retries + 1):
            try:
                return call()
            except _Deadline:
                raise self._timeout(what) from None
            except requests.exceptions.SSLError as exc:
                raise PrometheusError(
                    f"Prometheus at {self.url}: TLS failed ({self._clean(str(exc))}); "
                    "pass --prometheus-ca-file, or --prometheus-insecure-skip-verify"
                ) from None
            except (requests.exceptions.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                if "timed out" in str(exc) or isinstance(exc, requests.exceptions.Timeout):
                    raise self._timeout(what) from None
                if attempt < self.retries:
                    continue
                raise PrometheusError(
                    f"Prometheus at {self.url} broke off its answer to {what} ({self._clean(str(exc))})"
                ) from None
            except (requests.exceptions.ConnectionError, requests.exceptions.InvalidURL) as exc:
                if "timed out" in str(exc):
                    raise self._timeout(what) from None
                if attempt < self.retries:
                    time.sleep(self.backoff * 2**attempt)
                    continue
                raise PrometheusError(
                    f"Prometheus at {self.url} is unreachable ({self._clean(str(exc))}); check the URL or set EVIDENCE_PROMETHEUS_URL"
                ) from None
            except requests.exceptions.RequestException as exc:
                raise PrometheusError(f"Prometheus at {self.url} failed {what} ({self._clean(str(exc))})") from None
            except ValueError as exc:  # a non-JSON body through the client's own parser
                raise PrometheusError(
                    f"Prometheus at {self.url} answered {what} with something that is not the Prometheus API ({self._clean(str(exc))})"
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _result(self, what: str, status: int, body: bytes) -> list[dict[str, Any]]:
        """Return ``data.result`` of an answer, or raise naming what is wrong with it."""
        try:
            doc = json.loads(body)
        except ValueError:
            kind = "an HTML page" if body.lstrip()[:1] == b"<" else "a body that is not JSON"
            raise PrometheusError(
                f"Prometheus at {self.url} answered {what} with HTTP {status} and {kind} ({self._clean(_short(body.decode('utf-8', 'replace'), 120))}): "
                "is the URL the Prometheus API (not a login page or a proxy)?"
            ) from None
        if not isinstance(doc, dict):
            raise PrometheusError(
                f"Prometheus at {self.url} answered {what} with a JSON {type(doc).__name__}, not the API's object"
            )
        if status != 200 or doc.get("status") != "success":
            error_type = str(doc.get("errorType") or "")
            message = f"HTTP {status} {error_type or doc.get('status')}: {self._clean(_short(str(doc.get('error') or body[:300].decode('utf-8', 'replace'))))}"
            if status in (401, 403):
                raise PrometheusError(
                    f"Prometheus at {self.url} refused {what}: {message}; check --prometheus-token / --prometheus-token-file / basic auth"
                )
            if status == 400 and error_type == "bad_data":
                raise PrometheusInvalidQuery(
                    f"Prometheus at {self.url} rejected {what} as invalid ({message}); this is permanent: re-running will not help"
                )
            raise PrometheusError(f"Prometheus at {self.url} refused {what}: {message}")
        data = doc.get("data")
        result = data.get("result") if isinstance(data, dict) else None
        if not isinstance(result, list) or not all(isinstance(r, dict) for r in result):
            raise PrometheusError(
                f"Prometheus at {self.url} answered {what} without a result list (data: {self._clean(_short(json.dumps(data), 120))})"
            )
        warnings = [str(w) for w in doc.get("warnings") or [] if not str(w).startswith(_ANNOTATIONS)]
        if warnings:
            raise PrometheusPartial(
                f"Prometheus at {self.url} answered {what} only in part ({self._clean(_short('; '.join(warnings)))}); "
                "a store or replica did not answer — the data may be incomplete"
            )
        for r in result:
            if not isinstance(r.get("metric", {}), dict) or not isinstance(r.get("values", r.get("value", [])), list):
                raise PrometheusError(
                    f"Prometheus at {self.url} answered {what} with a malformed series ({self._clean(_short(str(r), 120))})"
                )
        return result

    def _timeout(self, what: str) -> PrometheusTimeout:
        return PrometheusTimeout(
            f"Prometheus at {self.url} did not answer {what} within {self.timeout:g}s; "
            "check the URL, or raise --timeout for a slow long-term store"
        )

    def _refused(self, what: str, text: str) -> PrometheusError:
        hint = (
            "; check --prometheus-token / --prometheus-token-file / basic auth"
            if "401" in text[:40] or "403" in text[:40]
            else ""
        )
        return PrometheusError(f"Prometheus at {self.url} refused {what}: {self._clean(_short(text))}{hint}")

    def _clean(self, text: str) -> str:
        """Scrub what a server or a library says: an error body may echo the credentials sent."""
        from evidence.redact import scrub_text

        return scrub_text(text, self.auth.secrets())


def _number(x: Any, finite: bool = False) -> bool:
    try:
        f = float(x)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond any float
        return False
    return math.isfinite(f) or not finite


#: Sample times accepted, in seconds: from the epoch to 2**42 ms (the year 2109), the range the
#: counter arithmetic keys times in (``analysis.counters._STRIDE``).
MAX_SAMPLE_TIME_S = 2**42 / 1000
#: A sample's time is a JSON number; its value a string as Prometheus writes it ("1.5", "NaN", "+Inf") or a number.
TIME_TYPES = frozenset({int, float})
VALUE_TYPES = frozenset({str, int, float})


def _is_sample(x: Any) -> bool:
    """Return whether an answer's sample is [unix time, "value"] (a JSON number of seconds in range; the value a number or "NaN"/"+Inf")."""
    return (
        type(x) is list
        and len(x) == 2
        and type(x[0]) in TIME_TYPES
        and _number(x[0], finite=True)
        and 0 <= float(x[0]) < MAX_SAMPLE_TIME_S
        and type(x[1]) in VALUE_TYPES
        and _number(x[1])
    )


def _check_samples(result: list[dict[str, Any]]) -> None:
    """Raise PrometheusError when a series' sample (a matrix's ``values``, a vector's ``value``) is malformed."""
    for r in result:
        values = r.get("values") or ([r["value"]] if "value" in r else [])
        if not all(_is_sample(x) for x in values):
            raise sample_error(values, r.get("metric") or {})


def sample_error(values: list[Any], metric: Any) -> PrometheusError:
    """Return the error of a series whose samples are not all [unix time, "value"], naming the first bad one."""

    def short(x: Any, limit: int = 80) -> str:
        text = json.dumps(x, ensure_ascii=True, default=str)
        return text if len(text) <= limit else text[: limit - 1] + "…"

    bad = next((x for x in values if not _is_sample(x)), values[0] if values else None)
    return PrometheusError(
        f"Prometheus answered with a malformed sample {short(bad)} in a series of {short(metric)} "
        '(a sample is [unix time, "value"]): is the URL the Prometheus API, not a proxy rewriting it?'
    )


class _Deadline(Exception):
    """The answer did not complete within the timeout (raised inside ``_get``)."""


def _checked_url(url: str) -> tuple[str, str | None, str | None]:
    """Return the URL without credentials (and them), or raise UsageError naming what is wrong."""
    fix = "give an http(s) URL, e.g. http://prometheus.monitoring:9090, or set EVIDENCE_PROMETHEUS_URL"
    if not url or not url.startswith(("http://", "https://")):
        raise UsageError(f"--prometheus {url!r}: {fix}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UsageError(f"--prometheus {strip_credentials_text(url)!r}: not a valid URL ({exc}); {fix}") from None
    if not parts.hostname or any(c.isspace() for c in url):
        raise UsageError(f"--prometheus {strip_credentials_text(url)!r}: no host name; {fix}")
    if port == 0:
        raise UsageError(f"--prometheus {strip_credentials_text(url)!r}: port 0 is not a port; {fix}")
    return strip_credentials(url.rstrip("/"))


def strip_credentials_text(url: str) -> str:
    """Return ``url`` with any ``user:password@`` removed, for messages (works on URLs urlsplit rejects)."""
    import re

    return re.sub(r"//[^/@\s]*@", "//", url)


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def range_chunks(start: float, end: float, step: float, max_points: int = MAX_POINTS) -> list[tuple[float, float]]:
    """Split [start, end] at ``step`` into pieces of at most ``max_points`` points each."""
    if end < start:
        return []
    n = math.floor((end - start) / step) + 1
    per = max_points
    out = []
    i = 0
    while i < n:
        j = min(n, i + per)
        out.append((start + i * step, start + (j - 1) * step))
        i = j
    return out
