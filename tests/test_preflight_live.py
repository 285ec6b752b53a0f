"""``evidence preflight`` against the loopback API server (real kubernetes client) and real hook servers.

The hook servers answer 200, 204 and 500, or hang; each runs on a free 127.0.0.1 port in this
process and is shut down at the end.  Prometheus is the real one over the scenario's data.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from evidence.cli import cli
from evidence.model import CanaryRef, rfc3339
from evidence.policy import default_policy
from evidence.preflight import CheckResult, Preflight, run_preflight
from evidence.sources.kube import KubeSource
from evidence.sources.prometheus import PrometheusSource
from fixtures.prom import PrometheusServer, free_port

from .kubeapi import KubeApiServer
from .test_preflight import GUARDED, at_of, of, one

CANARIES = ("flagger.app", "canaries")
DEPLOYMENTS = ("apps", "deployments")


class HookServer:
    """Webhook receivers: POST /<status> answers that status, POST /hang never answers until stop()."""

    def __init__(self) -> None:
        self.bodies: dict[str, list[dict[str, Any]]] = {}
        self.auth: dict[str, str] = {}
        self.release = threading.Event()
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                hooks.bodies.setdefault(self.path, []).append(body)
                hooks.auth[self.path] = self.headers.get("Authorization", "")
                if self.path == "/hang":
                    hooks.release.wait(30)
                    return
                self.send_response(int(self.path.split("?")[0].strip("/")))
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def server(simulated: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    with KubeApiServer(simulated(GUARDED) / "dump", tmp_path_factory.mktemp("kubeapi-preflight")) as s:
        yield s


@pytest.fixture
def api(server: KubeApiServer) -> KubeApiServer:
    server.reset()
    return server


@pytest.fixture
def hooks() -> Iterator[HookServer]:
    h = HookServer()
    yield h
    h.stop()


@pytest.fixture
def live(
    api: KubeApiServer, prometheus_for: Callable[[str], PrometheusServer], truth_of: Callable[[str], dict[str, Any]]
) -> Callable[..., Preflight]:
    truth = truth_of(GUARDED)

    def run(probe: bool = False, timeout_s: float = 10.0) -> Preflight:
        source = KubeSource(kubeconfig=str(api.kubeconfig), context="test")
        try:
            return run_preflight(
                CanaryRef.parse(truth["canary"]),
                source,
                PrometheusSource(prometheus_for(GUARDED).url),
                default_policy(),
                at_of(truth),
                probe_webhooks=probe,
                timeout_s=timeout_s,
            )
        finally:
            source.close()

    return run


def canary(api: KubeApiServer) -> dict[str, Any]:
    return api.store[CANARIES][0]


def flagger(api: KubeApiServer) -> dict[str, Any]:
    return next(d for d in api.store[DEPLOYMENTS] if d["metadata"]["name"] == "flagger")


def test_guarded_on_the_live_api_passes_every_check(live: Callable[..., Preflight], api: KubeApiServer) -> None:
    p = live()
    assert {c.status for c in p.checks} == {"ok"}, [c for c in p.checks if c.status != "ok"]
    state = of(p, "flagger-healthy")[1]
    assert "1/1 available" in state.message and "Succeeded" in state.message
    # Flagger was looked for in every namespace, by its label.
    listed = api.requests_for("/apis/apps/v1/deployments")
    assert listed and listed[0][2]["labelSelector"] == "app.kubernetes.io/name=flagger"
    # Before a rollout nothing needs the events or Flagger's log.
    assert not api.requests_for("/api/v1/namespaces/shop/events") and not api.requests_for(
        "/api/v1/namespaces/flagger-system/pods"
    )


def test_flagger_missing_from_the_cluster_blocks(live: Callable[..., Preflight], api: KubeApiServer) -> None:
    api.remove("deployments", "flagger-system", "flagger", group="apps")
    c = of(live(), "flagger-healthy")[0]
    assert c.status == "block" and "in any namespace" in c.message


def test_flagger_unavailable_blocks(live: Callable[..., Preflight], api: KubeApiServer) -> None:
    flagger(api)["status"].update(availableReplicas=0, readyReplicas=0)
    c = of(live(), "flagger-healthy")[1]
    assert c.status == "block" and "0/1 available" in c.message


@pytest.mark.parametrize(
    ("phase", "minutes_ago", "status", "needle"),
    [
        ("Progressing", 2, "warn", "already under way"),
        ("Progressing", 90, "block", "stuck in Progressing"),
        ("Failed", 5, "warn", "last rollout failed"),
        ("WaitingPromotion", 90, "warn", "already under way"),
        ("Terminating", 1, "block", "Terminating"),
    ],
)
def test_canary_phase(
    live: Callable[..., Preflight],
    api: KubeApiServer,
    truth_of: Callable[[str], dict[str, Any]],
    phase: str,
    minutes_ago: int,
    status: str,
    needle: str,
) -> None:
    when = at_of(truth_of(GUARDED)) - dt.timedelta(minutes=minutes_ago)
    canary(api)["status"].update(phase=phase, lastTransitionTime=rfc3339(when))
    c = of(live(), "flagger-healthy")[1]
    assert (c.status, needle in c.message) == (status, True), c


def probe_results(p: Preflight) -> dict[str, CheckResult]:
    return {c.message.split(" (")[0]: c for c in of(p, "rollback-path")[1:]}


def test_probe_webhooks_judges_each_answer(live: Callable[..., Preflight], api: KubeApiServer, hooks: HookServer) -> None:
    closed = f"http://127.0.0.1:{free_port()}/"
    canary(api)["spec"]["analysis"]["webhooks"] = [
        {"name": "quiet", "type": "rollback", "url": f"{hooks.url}/204", "metadata": {"env": "prod"}},
        {"name": "trigger", "type": "rollback", "url": f"{hooks.url}/200"},
        {"name": "broken", "type": "rollback", "url": f"{hooks.url}/500"},
        {"name": "slow", "type": "rollback", "url": f"{hooks.url}/hang", "timeout": "30s"},
        {"name": "gone", "type": "rollback", "url": closed},
        {"name": "gate", "type": "confirm-rollout", "url": f"{hooks.url}/204"},
        {"name": "promote", "type": "confirm-promotion", "url": f"{hooks.url.replace('//', '//ops:s3cr3t@')}/200?token=abc"},
        {"name": "load", "type": "rollout", "url": f"{hooks.url}/500"},
    ]
    p = live(probe=True, timeout_s=1.0)
    got = {k: (v.status, v.message) for k, v in probe_results(p).items()}
    assert got["rollback hook quiet"][0] == "ok" and "answers 204" in got["rollback hook quiet"][1]
    assert (
        got["rollback hook trigger"][0] == "block" and "roll the canary back at its first tick" in got["rollback hook trigger"][1]
    )
    assert got["rollback hook broken"][0] == "warn" and "answers 500" in got["rollback hook broken"][1]
    assert (
        got["rollback hook slow"] == ("warn", got["rollback hook slow"][1])
        and "no answer within 1s" in got["rollback hook slow"][1]
    )
    assert got["rollback hook gone"][0] == "warn" and "unreachable" in got["rollback hook gone"][1]
    assert got["confirm-rollout hook gate"][0] == "warn" and "Waiting" in got["confirm-rollout hook gate"][1]
    assert got["confirm-promotion hook promote"][0] == "ok"
    assert not any("s3cr3t" in m or "token=abc" in m for _, m in got.values())
    assert hooks.auth["/200?token=abc"] == "Basic " + base64.b64encode(b"ops:s3cr3t").decode()
    assert "rollout hook load" not in got  # rollout hooks are not gates: never probed
    assert p.blocked
    assert hooks.bodies["/204"][0] == {
        "name": "cart",
        "namespace": "shop",
        "phase": "Initialized",
        "checksum": "",
        "metadata": {"env": "prod"},
    }
    assert "/500" in hooks.bodies and "metadata" not in hooks.bodies["/200?token=abc"][0]


def test_probe_through_the_cli(
    api: KubeApiServer,
    hooks: HookServer,
    prometheus_for: Callable[[str], PrometheusServer],
    truth_of: Callable[[str], dict[str, Any]],
) -> None:
    truth = truth_of(GUARDED)
    args = ["preflight", truth["canary"], "--prometheus", prometheus_for(GUARDED).url, "--kubeconfig", str(api.kubeconfig)]
    args += ["--context", "test", "--at", rfc3339(at_of(truth)) or "", "--probe-webhooks", "--timeout", "2"]
    hook = next(w for w in canary(api)["spec"]["analysis"]["webhooks"] if w["type"] == "rollback")
    hook["url"] = f"{hooks.url}/404"
    ok = CliRunner().invoke(cli, args)
    assert ok.exit_code == 0, ok.output
    assert "answers 404: not signalling a rollback" in ok.output
    hook["url"] = f"{hooks.url}/202"
    fires = CliRunner().invoke(cli, args)
    assert fires.exit_code == 4 and "answers 202" in fires.output and "BLOCK" in fires.output


def test_probes_are_skipped_on_a_dump(
    simulated: Callable[[str], Path], prometheus_for: Callable[[str], PrometheusServer], truth_of: Callable[[str], dict[str, Any]]
) -> None:
    from evidence.sources.dump import DumpSource

    truth = truth_of(GUARDED)
    p = run_preflight(
        CanaryRef.parse(truth["canary"]),
        DumpSource(simulated(GUARDED) / "dump"),
        PrometheusSource(prometheus_for(GUARDED).url),
        default_policy(),
        at_of(truth),
        probe_webhooks=True,
    )
    probes = of(p, "rollback-path")[1:]
    assert [c.status for c in probes] == ["skip"] and "rollback hook rollback-gate" in probes[0].message
    assert one(p, "flagger-healthy", "live phase").status == "skip"
    assert not p.blocked


def test_prometheus_flags_are_read_or_refused(prometheus_for: Callable[[str], PrometheusServer], hooks: HookServer) -> None:
    from evidence.errors import PrometheusError
    from evidence.preflight.promstatus import read_flags

    assert read_flags(PrometheusSource(prometheus_for(GUARDED).url))["storage.tsdb.retention.time"] == "100y"
    with pytest.raises(PrometheusError, match=r"answered /api/v1/status/flags with 501"):
        read_flags(PrometheusSource(hooks.url))  # not a Prometheus: GET is not served
