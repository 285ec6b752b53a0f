"""Prometheus' own status: its flags (``GET /api/v1/status/flags``), for the retention.

Built on the source's public settings only (URL, credentials, timeout), one attempt: a store
that does not serve the endpoint (Thanos, Mimir, VictoriaMetrics answer 404 or differently)
is a PrometheusError the check turns into "retention unknown".
"""

from __future__ import annotations

import json
from typing import Any

from evidence.errors import PrometheusError
from evidence.sources.prometheus import PrometheusSource

MAX_BYTES = 1 << 20


def read_flags(prom: PrometheusSource) -> dict[str, str]:
    """Return the server's command-line flags; raise PrometheusError naming the URL when they cannot be read."""
    import requests

    auth = prom.auth
    headers = dict(auth.headers)
    if auth.bearer_token:
        headers["Authorization"] = f"Bearer {auth.bearer_token}"
    basic = (auth.username, auth.password or "") if auth.username else None
    verify: Any = auth.ca_file or not auth.insecure_skip_verify
    url = f"{prom.url}/api/v1/status/flags"
    try:
        with requests.get(url, headers=headers, auth=basic, verify=verify, timeout=prom.timeout, stream=True) as resp:
            status = resp.status_code
            body = resp.raw.read(MAX_BYTES + 1, decode_content=True)
    except requests.exceptions.RequestException as exc:
        raise PrometheusError(f"Prometheus at {prom.url} did not answer /api/v1/status/flags ({type(exc).__name__})") from None
    if status != 200:
        raise PrometheusError(f"Prometheus at {prom.url} answered /api/v1/status/flags with {status}")
    try:
        doc = json.loads(body) if len(body) <= MAX_BYTES else None
    except ValueError:
        doc = None
    data = doc.get("data") if isinstance(doc, dict) else None
    if not isinstance(data, dict):
        raise PrometheusError(f"Prometheus at {prom.url} answered /api/v1/status/flags with something that is not its flags")
    return {str(k): str(v) for k, v in data.items()}
