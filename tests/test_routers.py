"""The traffic seam: Traefik's names live in ``evidence.routers.traefik`` and nowhere else in the code."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from evidence.flagger import render_query
from evidence.model import Role
from evidence.routers import ROUTERS, TRAEFIK
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
