"""KubeSource with the real kubernetes client over HTTPS against the loopback API server."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from evidence.errors import KubeError, NotFoundError
from evidence.model import CanaryRef
from evidence.sources.kube import KubeSource

from .kubeapi import FLAGGER_NAMESPACE, KubeApiServer

REF = CanaryRef("shop", "podinfo")
CANARY = "/apis/flagger.app/v1beta1/namespaces/shop/canaries/podinfo"
EVENTS = "/api/v1/namespaces/shop/events"
EVENTS_V1 = "/apis/events.k8s.io/v1/namespaces/shop/events"
TRAEFIK = "/apis/traefik.io/v1alpha1/namespaces/shop/traefikservices/podinfo"


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # The client honours HTTPS_PROXY like kubectl; a developer's proxy must not catch loopback.
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def dump(simulated: Callable[[str], Path]) -> Path:
    return simulated("rollback-error-rate") / "dump"


@pytest.fixture(scope="module")
def server(dump: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    with KubeApiServer(dump, tmp_path_factory.mktemp("kubeapi")) as s:
        yield s


@pytest.fixture
def api(server: KubeApiServer) -> KubeApiServer:
    server.reset()
    return server


@pytest.fixture
def source_for(api: KubeApiServer) -> Iterator[Callable[..., KubeSource]]:
    made: list[KubeSource] = []

    def make(context: str = "test", **kwargs: Any) -> KubeSource:
        kwargs.setdefault("backoff", 0.01)
        src = KubeSource(str(api.kubeconfig), context=context, **kwargs)
        made.append(src)
        return src

    yield make
    for src in made:
        src.close()


def canary_events(dump: Path) -> list[dict[str, Any]]:
    items = load(dump / "events.json")["items"]
    return sorted(
        (e for e in items if e["involvedObject"]["kind"] == "Canary" and e["involvedObject"]["name"] == "podinfo"),
        key=lambda e: e["metadata"]["name"],
    )


def test_read_returns_the_canary_and_what_it_refers_to(
    api: KubeApiServer, source_for: Callable[..., KubeSource], dump: Path
) -> None:
    src = source_for()
    data = src.read(REF)

    assert src.describe() == f"cluster {api.url}"
    assert (data.source_kind, data.source) == ("cluster", api.url)
    assert data.canary == load(dump / "canary.json")  # spec and status as the server holds them
    assert data.canary["status"]["phase"] == "Failed"
    [traefik] = data.traefik_services
    expected = load(dump / "traefikservice.json")
    assert (traefik["apiVersion"], traefik["kind"], traefik["metadata"]["name"]) == (
        "traefik.io/v1alpha1",
        "TraefikService",
        "podinfo",
    )
    assert traefik["spec"] == expected["spec"]
    deployments = {d["metadata"]["name"]: d for d in load(dump / "deployments.json")["items"]}
    assert [w["metadata"]["name"] for w in data.workloads] == ["podinfo", "podinfo-primary"]
    for w in data.workloads:
        assert (w["apiVersion"], w["kind"]) == ("apps/v1", "Deployment")
        assert w["spec"] == deployments[w["metadata"]["name"]]["spec"]
    assert [(p["kind"], p["metadata"]["name"]) for p in data.alert_providers] == [("AlertProvider", "on-call")]
    assert data.metric_templates == []  # this canary uses only Flagger's builtin metrics
    assert data.warnings == []
    # The AlertProvider names a Secret, and the server would serve it: the source never asks.
    assert not [r for r in api.requests if "/secrets" in r[1]]
    assert {m for m, _, _ in api.requests} == {"GET"}


def test_events_are_the_canarys_own_and_paged(api: KubeApiServer, source_for: Callable[..., KubeSource], dump: Path) -> None:
    data = source_for(page_size=3).read(REF)

    core = sorted((e for e in data.events if e["apiVersion"] == "v1"), key=lambda e: e["metadata"]["name"])
    expected = canary_events(dump)
    assert len(expected) > 6
    assert core == expected  # unmodified, with apiVersion and kind restored on every item
    assert all(e["involvedObject"]["name"] == "podinfo" for e in core)  # not checkout's, not the Deployment's
    pages = api.requests_for(EVENTS)
    assert len(pages) >= 3
    assert all(
        q["limit"] == "3" and q["fieldSelector"] == "involvedObject.kind=Canary,involvedObject.name=podinfo" for _, _, q in pages
    )
    assert "continue" not in pages[0][2] and all(q.get("continue") for _, _, q in pages[1:])

    v1 = sorted((e for e in data.events if e["apiVersion"] == "events.k8s.io/v1"), key=lambda e: e["metadata"]["name"])
    assert len(v1) + len(core) == len(data.events)
    assert [e["metadata"]["name"] for e in v1] == [e["metadata"]["name"] for e in core]
    for new, old in zip(v1, core, strict=True):
        assert new["kind"] == "Event"
        assert new["regarding"] == old["involvedObject"]
        assert (new["note"], new["reason"], new["deprecatedCount"]) == (old["message"], old["reason"], old["count"])
    assert all(q["fieldSelector"] == "regarding.kind=Canary,regarding.name=podinfo" for _, _, q in api.requests_for(EVENTS_V1))
    assert len(api.requests_for(EVENTS_V1)) >= 3


def test_flaggers_log_lines_are_returned(api: KubeApiServer, source_for: Callable[..., KubeSource], dump: Path) -> None:
    data = source_for().read(REF)

    assert data.log_lines == (dump / "flagger.log").read_text(encoding="utf-8").splitlines()
    # Without --flagger-namespace, Flagger's pods are looked for in every namespace by their labels.
    [(_, _, query)] = api.requests_for("/api/v1/pods")[:1]
    assert query["labelSelector"] == "app.kubernetes.io/name=flagger"


def test_flaggers_log_unreadable_is_a_warning(source_for: Callable[..., KubeSource]) -> None:
    data = source_for("no-logs").read(REF)
    assert data.log_lines == []
    [warning] = data.warnings
    assert "Flagger's log not read" in warning and "list pods" in warning and FLAGGER_NAMESPACE in warning
    assert data.events  # the rest was read

    data = source_for(flagger_namespace="monitoring").read(REF)
    assert data.log_lines == []
    assert "--flagger-namespace" in data.warnings[0]


def test_metric_templates_are_read(simulated: Callable[[str], Path], server: KubeApiServer, tmp_path: Path) -> None:
    dump = simulated("promoted-despite-breach") / "dump"
    with KubeApiServer(dump, tmp_path, certificates=server.certificates) as api, KubeSource(str(api.kubeconfig)) as src:
        data = src.read(CanaryRef("shop", "cart"))
    assert data.warnings == []
    [template] = data.metric_templates
    expected = load(dump / "metrictemplates.json")["items"][0]
    assert (template["kind"], template["metadata"]["name"]) == ("MetricTemplate", "error-percentage")
    assert template["spec"] == expected["spec"]


def test_missing_deployment_is_a_warning(api: KubeApiServer, source_for: Callable[..., KubeSource]) -> None:
    api.remove("deployments", "shop", "podinfo-primary", group="apps")
    data = source_for().read(REF)
    assert [w["metadata"]["name"] for w in data.workloads] == ["podinfo"]
    assert data.warnings == ["Deployment shop/podinfo-primary not found"]


def test_events_api_not_served_is_skipped(api: KubeApiServer, source_for: Callable[..., KubeSource]) -> None:
    api.fail(EVENTS_V1, status=404, times=None)
    data = source_for().read(REF)
    assert data.events and {e["apiVersion"] for e in data.events} == {"v1"}
    assert data.warnings == []


def test_traefik_api_not_served_is_a_warning(api: KubeApiServer, source_for: Callable[..., KubeSource]) -> None:
    api.fail(TRAEFIK, status=404, times=None)  # Traefik's CRDs are not installed
    data = source_for().read(REF)
    assert data.traefik_services == []
    assert data.warnings == ["TraefikService shop/podinfo not read: the API server does not serve traefikservices.traefik.io"]


def test_events_api_forbidden_is_a_warning(api: KubeApiServer, source_for: Callable[..., KubeSource]) -> None:
    api.fail(EVENTS_V1, status=403, times=None, message="events.events.k8s.io is forbidden")
    data = source_for().read(REF)
    assert {e["apiVersion"] for e in data.events} == {"v1"}
    [warning] = data.warnings
    assert 'needs RBAC permission to list events (API group "events.k8s.io") in namespace shop' in warning


def test_flagger_not_installed_is_not_found(api: KubeApiServer, source_for: Callable[..., KubeSource]) -> None:
    api.fail(CANARY, status=404, times=None)  # no Canary CRD: a 404 whose Status names no object
    with pytest.raises(NotFoundError, match=r"does not serve canaries\.flagger\.app/v1beta1; is Flagger installed\?"):
        source_for().read(REF)


def test_unknown_canary_is_not_found(api: KubeApiServer, source_for: Callable[..., KubeSource]) -> None:
    with pytest.raises(NotFoundError) as err:
        source_for().read(CanaryRef("shop", "nope"))
    assert str(err.value) == f"canary shop/nope not found on {api.url}; `kubectl get canaries -n shop` lists them"


def test_rejected_token_says_to_refresh_it(api: KubeApiServer, source_for: Callable[..., KubeSource]) -> None:
    with pytest.raises(KubeError) as err:
        source_for("bad-token").read(REF)
    message = str(err.value)
    assert f"the API server {api.url} rejected the credentials (401 Unauthorized)" in message
    assert "refresh the token in your kubeconfig" in message
    assert "evidence-test-token" not in message


def test_forbidden_events_name_the_missing_permission(source_for: Callable[..., KubeSource]) -> None:
    with pytest.raises(KubeError) as err:
        source_for("no-events").read(REF)
    message = str(err.value)
    assert message.startswith('forbidden (403): needs RBAC permission to list events (API group "") in namespace shop: ')
    assert 'User "system:serviceaccount:ops:evidence" cannot list resource "events"' in message


def test_missing_context_names_the_available_ones(api: KubeApiServer) -> None:
    with pytest.raises(KubeError) as err:
        KubeSource(str(api.kubeconfig), context="prod")
    message = str(err.value)
    assert str(api.kubeconfig) in message and "'prod'" in message
    assert "available contexts: test, no-events, no-logs, bad-token, untrusted" in message


def test_no_kubeconfig_says_how_to_give_one(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(KubeError, match="pass --kubeconfig or set KUBECONFIG"):
        KubeSource()
    with pytest.raises(KubeError, match="no such file"):
        KubeSource(str(tmp_path / "missing"))


def test_kubeconfig_env_is_a_path_list_like_kubectls(api: KubeApiServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'absent'}:{api.kubeconfig}")
    with KubeSource() as src:
        assert src.describe() == f"cluster {api.url}"
        assert src.read(REF).canary["metadata"]["name"] == "podinfo"


def test_server_errors_are_retried(api: KubeApiServer, source_for: Callable[..., KubeSource]) -> None:
    api.fail(CANARY, status=500, times=2)
    api.drop(TRAEFIK, times=1)
    data = source_for().read(REF)
    assert data.canary["metadata"]["name"] == "podinfo"
    assert len(data.traefik_services) == 1
    assert len(api.requests_for(CANARY)) == 3
    assert len(api.requests_for(TRAEFIK)) == 2


def test_server_errors_that_persist_fail_after_three_attempts(api: KubeApiServer, source_for: Callable[..., KubeSource]) -> None:
    api.fail(CANARY, status=503, times=None)
    with pytest.raises(KubeError) as err:
        source_for().read(REF)
    assert f"the API server {api.url} failed to get canaries.flagger.app shop/podinfo with 503" in str(err.value)
    assert "after 3 attempts" in str(err.value)
    assert len(api.requests_for(CANARY)) == 3


def test_hanging_server_times_out(api: KubeApiServer, source_for: Callable[..., KubeSource]) -> None:
    api.hang(EVENTS, seconds=20)
    src = source_for(request_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(KubeError) as err:
        src.read(REF)
    assert time.monotonic() - started < 2.0
    assert str(err.value).startswith(f"the API server {api.url} did not answer list events in namespace shop within 0.5s")
    assert len(api.requests_for(EVENTS)) == 1  # a timeout is not retried: it already took the whole budget


def test_unreachable_server_is_named(server: KubeApiServer, tmp_path: Path, dump: Path) -> None:
    gone = KubeApiServer(dump, tmp_path, certificates=server.certificates).start()
    gone.stop()
    with KubeSource(str(gone.kubeconfig), backoff=0.01) as src, pytest.raises(KubeError) as err:
        src.read(REF)
    message = str(err.value)
    assert message.startswith(f"cannot reach the API server {gone.url} (")
    assert "Connection refused" in message and "after 3 attempts" in message


def test_untrusted_certificate_is_a_tls_error(api: KubeApiServer, source_for: Callable[..., KubeSource]) -> None:
    with pytest.raises(KubeError) as err:
        source_for("untrusted").read(REF)
    assert str(err.value).startswith(f"TLS with the API server {api.url} failed (")
    assert "certificate-authority" in str(err.value)


def test_loopback_server_answers_like_an_api_server(api: KubeApiServer) -> None:
    assert api.certificates is not None
    context = ssl.create_default_context(cafile=str(api.certificates.ca))

    def get(path: str, token: str = "evidence-test-token-full") -> tuple[int, dict[str, Any]]:
        req = urllib.request.Request(api.url + path, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, context=context, timeout=5) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, json.load(exc)

    code, body = get(EVENTS + "?limit=2")
    assert (code, body["kind"], body["apiVersion"]) == (200, "EventList", "v1")
    assert body["metadata"]["continue"] and body["metadata"]["resourceVersion"] and body["metadata"]["remainingItemCount"] > 0
    assert "kind" not in body["items"][0]  # built-in lists carry no kind on their items
    code, body = get("/apis/flagger.app/v1beta1/namespaces/shop/canaries")
    assert body["kind"] == "CanaryList" and body["items"][0]["kind"] == "Canary"
    assert get(CANARY[: -len("podinfo")] + "nope") == (
        404,
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": 'canaries.flagger.app "nope" not found',
            "reason": "NotFound",
            "details": {"name": "nope", "kind": "canaries", "group": "flagger.app"},
            "code": 404,
        },
    )
    assert get("/version", token="nope")[1]["message"] == "Unauthorized"
    assert get("/apis/example.com/v1/things")[1]["message"] == "the server could not find the requested resource"
    code, body = get(EVENTS + "?fieldSelector=spec.foo%3Dbar")
    assert (code, body["message"]) == (400, "field label not supported: spec.foo")


def test_a_forbidden_optional_object_is_a_warning(api: KubeApiServer, source_for: Callable[..., KubeSource]) -> None:
    api.fail(TRAEFIK, status=403, times=None, message="traefikservices.traefik.io is forbidden")
    api.fail(
        "/apis/apps/v1/namespaces/shop/deployments/podinfo-primary",
        status=403,
        times=None,
        message="deployments.apps is forbidden",
    )
    data = source_for().read(REF)
    assert data.traefik_services == []
    assert [w["metadata"]["name"] for w in data.workloads] == ["podinfo"]
    assert any(w.startswith("TraefikService shop/podinfo not read: forbidden (403)") for w in data.warnings)
    assert any(w.startswith("Deployment shop/podinfo-primary not read: forbidden (403)") for w in data.warnings)
    assert data.events, "the perishable events were still collected"
