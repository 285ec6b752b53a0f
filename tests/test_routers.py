"""The traffic seam: Traefik's names live in ``evidence.routers.traefik`` and nowhere else in the code."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

from evidence.bundle import manifest_from_json, manifest_to_json, read_bundle
from evidence.canary import CanarySpec
from evidence.flagger import render_query
from evidence.model import Role
from evidence.routers import ROUTERS, TRAEFIK, router_for, router_named
from tests.conftest import ROOT

# What only a router file may spell: metric names and the leaf-service suffix.
ROUTER_WORDS = ("traefik_service_", "@kubernetescrd", "exported_service")


def _code_strings(path: Path) -> list[tuple[int, str]]:
    """Return the string constants of a module that are not docstrings, with their line."""
    tree = ast.parse(path.read_text())
    docs = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (n.lineno, n.value)
        for n in ast.walk(tree)
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs
    ]


def test_no_module_but_the_router_spells_traefiks_names() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}: {text[:80]!r}"
        for path in sorted((ROOT / "evidence").rglob("*.py"))
        if "routers" not in path.parts
        for line, text in _code_strings(path)
        if any(w in text for w in ROUTER_WORDS)
    ]
    assert not found, "\n".join(found)


def test_the_registry_holds_traefik() -> None:
    assert ROUTERS == {"traefik": TRAEFIK}


@pytest.mark.parametrize(
    ("port", "roles", "expected"),
    [
        (80, (Role.PRIMARY, Role.CANARY), r"shop-podinfo-(primary|canary)-80@kubernetescrd"),
        (None, (Role.PRIMARY,), r"shop-podinfo-primary-[0-9a-zA-Z-]+@kubernetescrd"),
    ],
)
def test_leaf_service_names(port: int | None, roles: tuple[Role, ...], expected: str) -> None:
    assert TRAEFIK.services_regex("shop", "podinfo", port, roles) == expected


def test_series_roles_and_error_codes() -> None:
    assert TRAEFIK.role_of({"service": "shop-podinfo-canary-80@kubernetescrd"}, "podinfo") is Role.CANARY
    assert TRAEFIK.role_of({"service": "shop-podinfo-primary-80@kubernetescrd"}, "podinfo") is Role.PRIMARY
    assert [TRAEFIK.is_error(c) for c in ("500", "503", "404", "5xx", None)] == [True, True, False, False, False]


def test_builtin_queries_select_the_canary_as_flagger_renders_them() -> None:
    rendered = render_query(
        TRAEFIK.builtin_queries["request-success-rate"], {"namespace": "shop", "target": "podinfo", "interval": "1m"}, {}
    )
    assert rendered == (
        'sum(rate(traefik_service_request_duration_seconds_bucket{service=~"shop-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd",'
        'code!~"5..",le="+Inf"}[1m])) / sum(rate(traefik_service_request_duration_seconds_bucket{service=~'
        '"shop-podinfo-canary-[0-9a-zA-Z-]+@kubernetescrd",le="+Inf"}[1m])) * 100'
    )
    assert all(TRAEFIK.leaf_pattern(Role.CANARY) in q for q in TRAEFIK.builtin_queries.values())


def test_a_canarys_provider_chooses_its_router() -> None:
    for provider in (None, "traefik", "Traefik"):
        router, warning = router_for(provider)
        assert router is TRAEFIK and warning is None
    router, warning = router_for("istio")
    assert router is TRAEFIK and warning is not None and "'istio' has no router here" in warning


def test_the_canary_spec_carries_its_router_and_warns_on_an_unknown_one() -> None:
    canary = {"metadata": {"name": "podinfo", "namespace": "shop"}, "spec": {"targetRef": {"name": "podinfo"}}}
    assert CanarySpec.from_object(canary).router is TRAEFIK
    istio = CanarySpec.from_object({**canary, "spec": {**canary["spec"], "provider": "istio"}})
    assert istio.router is TRAEFIK and any("spec.provider 'istio'" in w for w in istio.warnings)


def test_a_bundle_names_its_router_and_an_old_one_reads_as_traefik(bundle_for: Callable[[str], Path]) -> None:
    """collect records the router in the manifest; a manifest from before that field reads as Traefik's."""
    b = read_bundle(bundle_for("rollback-error-rate"))
    assert b.record.sources.router == "traefik"
    assert router_named(b.record.sources.router) is TRAEFIK
    old = dict(b.manifest, sources={k: v for k, v in b.manifest["sources"].items() if k != "router"})
    assert manifest_from_json(old).sources.router is None and router_named(None) is TRAEFIK
    assert manifest_to_json(manifest_from_json(old))["sources"] == old["sources"]
