"""Flagger found where it runs: its pods in any namespace, the previous container's log after a restart.

Against the loopback API server (tests/kubeapi.py) over a simulator dump, with Flagger installed as
its Traefik tutorial does (namespace ``traefik``) and restarted halfway through the rollout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

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
