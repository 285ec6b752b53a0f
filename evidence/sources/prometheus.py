"""PromQL over the Prometheus HTTP API (Prometheus, Thanos, Mimir, Cortex, VictoriaMetrics).

Built on prometheus-api-client.  Credentials (bearer token, basic auth, user:password in
the URL) are sent but never described: ``describe()`` and every error message carry the
URL without them.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from evidence.errors import PrometheusError, PrometheusTimeout, UsageError

#: Prometheus refuses range queries of more than 11,000 points per series.
MAX_POINTS = 11_000


@dataclass(frozen=True)
class PrometheusAuth:
    """How to authenticate to Prometheus; any field may be empty."""

    bearer_token: str | None = None
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    insecure_skip_verify: bool = False
    headers: dict[str, str] = field(default_factory=dict)

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
    """Read a bearer token file (like a service-account token)."""
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise UsageError(f"--prometheus-token-file {path}: cannot read it ({exc.strerror})") from None


class PrometheusSource:
    """Runs instant and range queries with bounded retries and a timeout."""

    def __init__(self, url: str, auth: PrometheusAuth | None = None, timeout: float = 30.0, retries: int = 2) -> None:
        if not url or not url.startswith(("http://", "https://")):
            raise UsageError(
                f"--prometheus {url!r}: give an http(s) URL, e.g. http://prometheus.monitoring:9090, or set EVIDENCE_PROMETHEUS_URL"
            )
        clean, user, password = strip_credentials(url.rstrip("/"))
        auth = auth or PrometheusAuth()
        if user is not None and not auth.username:
            auth = PrometheusAuth(
                auth.bearer_token, user, password or "", auth.ca_file, auth.insecure_skip_verify, dict(auth.headers)
            )
        if auth.ca_file and not Path(auth.ca_file).is_file():
            raise UsageError(f"--prometheus-ca-file {auth.ca_file}: no such file")
        self.url = clean
        self.auth = auth
        self.timeout = timeout
        self.retries = retries
        self._client: Any = None

    def describe(self) -> str:
        return self.url

    def _connect(self) -> Any:
        if self._client is None:
            import requests
            from prometheus_api_client import PrometheusConnect
            from urllib3.util.retry import Retry

            session = requests.Session()
            session.verify = self.auth.ca_file or not self.auth.insecure_skip_verify
            headers = dict(self.auth.headers)
            if self.auth.bearer_token:
                headers["Authorization"] = f"Bearer {self.auth.bearer_token}"
            retry = Retry(
                total=self.retries,
                connect=self.retries,
                read=min(1, self.retries),
                status=self.retries,
                backoff_factor=0.2,
                status_forcelist=(429, 500, 502, 503, 504),
                allowed_methods=None,
                raise_on_status=False,
            )
            basic = (self.auth.username, self.auth.password or "") if self.auth.username else None
            self._client = PrometheusConnect(
                url=self.url, headers=headers or None, retry=retry, auth=basic, session=session, timeout=self.timeout
            )
            if self.auth.insecure_skip_verify:
                import urllib3

                urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        return self._client

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        import requests
        from prometheus_api_client.exceptions import PrometheusApiClientException

        try:
            result = fn(*args, **kwargs)
        except PrometheusApiClientException as exc:
            text = str(exc)
            hint = ""
            if "401" in text[:40] or "403" in text[:40]:
                hint = "; check --prometheus-token / --prometheus-token-file / basic auth"
            raise PrometheusError(f"Prometheus at {self.url} refused {what}: {_short(text)}{hint}") from None
        except requests.exceptions.SSLError as exc:
            raise PrometheusError(
                f"Prometheus at {self.url}: TLS failed ({_short(str(exc))}); pass --prometheus-ca-file, or --prometheus-insecure-skip-verify"
            ) from None
        except requests.exceptions.RequestException as exc:
            # A read timeout that exhausted the retries arrives wrapped in a ConnectionError.
            if isinstance(exc, requests.exceptions.Timeout) or "timed out" in str(exc):
                raise PrometheusTimeout(
                    f"Prometheus at {self.url} did not answer {what} within {self.timeout:g}s (after retries); "
                    "check the URL, or raise --timeout for a slow long-term store"
                ) from None
            raise PrometheusError(
                f"Prometheus at {self.url} is unreachable ({_short(str(exc))}); check the URL or set EVIDENCE_PROMETHEUS_URL"
            ) from None
        except ValueError as exc:  # a non-JSON body from a proxy
            raise PrometheusError(
                f"Prometheus at {self.url} answered {what} with something that is not the Prometheus API ({exc})"
            ) from None
        if not isinstance(result, list):
            raise PrometheusError(f"Prometheus at {self.url} answered {what} with an unexpected shape ({type(result).__name__})")
        return result

    def ping(self) -> None:
        """Check that the API answers; raise PrometheusError naming the URL otherwise."""
        client = self._connect()
        result = self._call("a test query (vector(1))", client.custom_query, "vector(1)")
        if not result:
            raise PrometheusError(f"{self.url} answered vector(1) with nothing: is it a Prometheus API?")

    def instant(self, query: str, at: dt.datetime) -> list[dict[str, Any]]:
        """Run an instant query at ``at``; return the API's result list (vector or matrix)."""
        client = self._connect()
        return self._call("an instant query", client.custom_query, query, params={"time": f"{at.timestamp():.3f}"})

    def range(self, query: str, start: dt.datetime, end: dt.datetime, step_s: float) -> list[dict[str, Any]]:
        """Run a range query; the caller keeps it under MAX_POINTS points per series."""
        client = self._connect()
        params = {"start": f"{start.timestamp():.3f}", "end": f"{end.timestamp():.3f}", "step": f"{step_s:g}s"}
        # custom_query_range rounds start/end to whole seconds; Flagger's ticks carry milliseconds.
        return self._call("a range query", _range_exact, client, query, params)


def _range_exact(client: Any, query: str, params: dict[str, str]) -> list[dict[str, Any]]:
    from prometheus_api_client.exceptions import PrometheusApiClientException

    response = client._session.request(
        method="GET",
        url=f"{client.url}/api/v1/query_range",
        params={"query": query, **params},
        verify=client._session.verify,
        headers=client.headers,
        auth=client.auth,
        timeout=client._timeout,
    )
    if response.status_code != 200:
        raise PrometheusApiClientException(f"HTTP Status Code {response.status_code} ({response.content!r})")
    data: list[dict[str, Any]] = response.json()["data"]["result"]
    return data


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
