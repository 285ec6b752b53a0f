"""Canary names as kubectl and Flagger write them (evidence.names), and how the CLI applies them."""

from __future__ import annotations

import pytest

from evidence.errors import UsageError
from evidence.model import CanaryRef
from evidence.names import parse_canary


@pytest.mark.parametrize(
    ("text", "namespace", "default", "expected"),
    [
        ("podinfo", "shop", None, ("shop", "podinfo")),
        ("podinfo", None, "shop", ("shop", "podinfo")),
        ("podinfo", None, None, ("default", "podinfo")),
        ("shop/podinfo", None, "other", ("shop", "podinfo")),
        ("shop/podinfo", "shop", None, ("shop", "podinfo")),
        ("canary/podinfo", None, "shop", ("shop", "podinfo")),
        ("canaries/podinfo", "payments", None, ("payments", "podinfo")),
        ("canary.flagger.app/podinfo", "shop", None, ("shop", "podinfo")),
        ("Canaries.Flagger.App/api", None, "payments", ("payments", "api")),
        ("podinfo.shop", None, "other", ("shop", "podinfo")),
        ("podinfo.shop", "shop", None, ("shop", "podinfo")),
        ("canary/podinfo.shop", None, None, ("shop", "podinfo")),
        ("my.app", "shop", None, ("shop", "my.app")),  # with -n, a dotted name is the name
        ("  podinfo  ", "shop", None, ("shop", "podinfo")),
    ],
)
def test_kubectl_and_flagger_forms(text: str, namespace: str | None, default: str | None, expected: tuple[str, str]) -> None:
    assert parse_canary(text, namespace, default) == CanaryRef(*expected)


@pytest.mark.parametrize(
    ("text", "namespace", "message"),
    [
        ("shop/podinfo", "other", "namespace 'shop' but -n says 'other'"),
        ("podinfo", "Shop", "-n/--namespace 'Shop' is not a Kubernetes namespace name"),
        ("shop/", None, "write NAME -n NAMESPACE"),
        ("/podinfo", None, "write NAME -n NAMESPACE"),
        ("a/b/c", None, "write NAME -n NAMESPACE"),
        ("", None, "write NAME -n NAMESPACE"),
        ("shop\n/podinfo", None, "write NAME -n NAMESPACE"),
        ("PodInfo", "shop", "name 'PodInfo' is not a Kubernetes name"),
        ("podinfo.", None, "namespace '' is not a Kubernetes namespace name"),
        ("my_ns/podinfo", None, "namespace 'my_ns' is not a Kubernetes namespace name"),
        ("x" * 254, "shop", "is not a Kubernetes name"),
    ],
)
def test_bad_names_say_how_to_write_one(text: str, namespace: str | None, message: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_canary(text, namespace)
    assert message in str(info.value)
