"""Flagger found where it runs (its pods in any namespace, the previous container's log), and lists that survive 429 and 410.

Against the loopback API server (tests/kubeapi.py) over a simulator dump, with Flagger installed as
its Traefik tutorial does (namespace ``traefik``) and restarted halfway through the rollout.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from evidence.errors import KubeError
from evidence.model import CanaryRef
from evidence.sources.kube import KubeSource
from tests.kubeapi import FLAGGER_NAMESPACE, KubeApiServer

REF = CanaryRef("shop", "podinfo")


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


@pytest.fixture(scope="module")
def tutorial(simulated: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    dump = simulated("rollback-error-rate") / "dump"
    with KubeApiServer(dump, tmp_path_factory.mktemp("kubeapi"), flagger_namespace="traefik", flagger_restarted=True) as s:
        yield s


def _source(api: KubeApiServer, **kwargs: object) -> KubeSource:
    return KubeSource(str(api.kubeconfig), context="test", backoff=0.01, **kwargs)  # type: ignore[arg-type]


def test_flagger_is_found_in_any_namespace_with_its_previous_log(tutorial: KubeApiServer) -> None:
    tutorial.reset()
    with _source(tutorial) as src:
        data = src.read(REF)
    # Both halves: the previous container's (before the restart) first, then the current one's.
    assert data.log_lines == tutorial.log_lines
    assert not [w for w in data.warnings if "Flagger's" in w and "log" in w]
    assert tutorial.requests_for("/api/v1/pods")
    assert tutorial.requests_for("/api/v1/namespaces/traefik/pods/flagger-7c9f8d6b5-x2x4z/log")


def test_an_explicit_namespace_is_the_only_place_looked_at(tutorial: KubeApiServer) -> None:
    tutorial.reset()
    with _source(tutorial, flagger_namespace=FLAGGER_NAMESPACE) as src:
        data = src.read(REF)
    assert data.log_lines == []
    said = [w for w in data.warnings if w.startswith("Flagger's log not read")]
    assert said and FLAGGER_NAMESPACE in said[0] and "--flagger-namespace" in said[0]
    assert not tutorial.requests_for("/api/v1/pods")


def test_a_log_that_cannot_be_read_is_said(tutorial: KubeApiServer) -> None:
    tutorial.reset()
    with KubeSource(str(tutorial.kubeconfig), context="no-logs", backoff=0.01) as src:
        data = src.read(REF)
    assert data.log_lines == []
    assert any(w.startswith("Flagger's") and "403" in w for w in data.warnings), data.warnings


CANARY_PATH = "/apis/flagger.app/v1beta1/namespaces/shop/canaries/podinfo"
EVENTS_PATH = "/api/v1/namespaces/shop/events"


def test_a_429_is_retried_after_the_time_the_server_asks(tutorial: KubeApiServer) -> None:
    tutorial.reset()
    tutorial.fail(CANARY_PATH, status=429, message="too many requests, please try again later", retry_after=1)
    started = time.monotonic()
    with _source(tutorial) as src:
        data = src.read(REF)
    assert time.monotonic() - started >= 1.0  # Retry-After: 1, not the 0.01 s backoff
    assert data.canary["metadata"]["name"] == REF.name
    assert len(tutorial.requests_for(CANARY_PATH)) == 2


def test_an_expired_continue_token_restarts_the_list(tutorial: KubeApiServer) -> None:
    tutorial.reset()
    with _source(tutorial, page_size=2) as src:
        whole = src.read(REF).events
    tutorial.reset()
    expired = "The provided continue parameter is too old to display a consistent list result."
    tutorial.fail(EVENTS_PATH, status=410, message=expired, continued=True)
    with _source(tutorial, page_size=2) as src:
        again = src.read(REF).events
    assert len(whole) > 2 and [e["metadata"]["name"] for e in again] == [e["metadata"]["name"] for e in whole]
    firsts = [q for _, _, q in tutorial.requests_for(EVENTS_PATH) if not q.get("continue")]
    assert len(firsts) == 2  # the list started once more from its first page


def test_a_list_that_keeps_expiring_is_an_error(tutorial: KubeApiServer) -> None:
    tutorial.reset()
    tutorial.fail(EVENTS_PATH, status=410, message="too old", times=None, continued=True)
    with _source(tutorial, page_size=2) as src, pytest.raises(KubeError, match="410"):
        src.read(REF)


CUSTOM_LABELS = {"component": "canary-controller", "pod-template-hash": "7c9f8d6b5"}


@pytest.fixture(scope="module")
def custom_install(simulated: Callable[[str], Path], tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    """Flagger installed by hand: namespace ``delivery``, pods and Deployment with labels of the team's own."""
    dump = simulated("rollback-error-rate") / "dump"
    with KubeApiServer(
        dump,
        tmp_path_factory.mktemp("kubeapi-custom"),
        flagger_namespace="delivery",
        flagger_pod_labels=CUSTOM_LABELS,
        flagger_deployment_labels={"team": "delivery"},
    ) as s:
        yield s


def test_flagger_is_found_through_its_deployments_selector(custom_install: KubeApiServer) -> None:
    custom_install.reset()
    with _source(custom_install) as src:
        data = src.read(REF)
    assert data.log_lines == custom_install.log_lines
    assert not [w for w in data.warnings if "Flagger's" in w and "log" in w], data.warnings
    assert custom_install.requests_for("/apis/apps/v1/deployments")
    listed = [q for _, path, q in custom_install.requests_for("/api/v1/namespaces/delivery/pods") if not path.endswith("/log")]
    assert [q.get("labelSelector") for q in listed] == ["component=canary-controller"]
    # The Helm/kustomize pod labels were not needed.
    assert not custom_install.requests_for("/api/v1/pods")


def test_the_deployment_in_the_given_namespace_is_used(custom_install: KubeApiServer) -> None:
    custom_install.reset()
    with _source(custom_install, flagger_namespace="delivery") as src:
        data = src.read(REF)
    assert data.log_lines == custom_install.log_lines
    assert custom_install.requests_for("/apis/apps/v1/namespaces/delivery/deployments")
    assert not custom_install.requests_for("/apis/apps/v1/deployments")


def test_without_a_readable_deployment_the_pod_labels_are_tried_and_a_miss_is_said(
    simulated: Callable[[str], Path], tmp_path: Path
) -> None:
    """No Flagger Deployment to read and pods without Flagger's labels: the log is not read, and the warning says where it was looked for."""
    dump = simulated("rollback-error-rate") / "dump"
    with KubeApiServer(dump, tmp_path, flagger_namespace="delivery", flagger_pod_labels=CUSTOM_LABELS) as api:
        with _source(api) as src:
            data = src.read(REF)
        assert data.log_lines == []
        (said,) = [w for w in data.warnings if w.startswith("Flagger's log not read")]
        assert "app.kubernetes.io/name=flagger" in said and "app=flagger" in said and "--flagger-namespace" in said
        assert api.requests_for("/apis/apps/v1/deployments") and api.requests_for("/api/v1/pods")
