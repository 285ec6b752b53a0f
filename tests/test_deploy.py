"""deploy/: the manifests validate against the Kubernetes 1.37 schemas, and RBAC grants every call the code makes.

Schemas: ``kubernetes-validate`` (strict: unknown fields fail) for built-in kinds.  Custom
resources it has no schema for (Flux's Kustomization) get a structural check.  Overlays are
merged onto the base the way Kustomize's strategic merge does for these patches (lists of
named items merge by name) and the result is validated.  The container arguments are parsed by
the real ``evidence watch`` command.  The RBAC test runs the watcher and a capture against the
loopback API server and checks each request it made against the ClusterRole and the Role.
"""

from __future__ import annotations

import copy
import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from evidence.capture.watch import Watcher, WatchOptions
from evidence.cli.watch import watch as watch_command
from evidence.sources.prometheus import PrometheusSource
from fixtures.prom import PrometheusServer

from .kubeapi import FLAGGER_NAMESPACE, KubeApiServer

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
K8S = "1.37.0"


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def base_objects() -> list[dict[str, Any]]:
    """Return the base's objects, with the kustomization's ``images:`` applied as Kustomize does."""
    k = docs(DEPLOY / "base" / "kustomization.yaml")[0]
    objs = [o for r in k["resources"] for o in docs(DEPLOY / "base" / r)]
    images = {i["name"]: i for i in k.get("images") or []}
    for o in objs:
        for c in (o.get("spec", {}).get("template", {}).get("spec", {}).get("containers")) or []:
            name, _, tag = c["image"].partition(":")
            if name in images:
                c["image"] = f"{images[name].get('newName', name)}:{images[name].get('newTag', tag)}"
    return objs


def merge(base: Any, patch: Any) -> Any:
    """Kustomize's strategic merge for these patches: maps merge, lists of named maps merge by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for k, v in patch.items():
            if v is None:
                out.pop(k, None)  # a null in a strategic merge patch deletes the field
            else:
                out[k] = merge(base[k], v) if k in base and k != "args" else copy.deepcopy(v)
        return out
    if isinstance(base, list) and isinstance(patch, list) and all(isinstance(x, dict) and "name" in x for x in base + patch):
        names = [x["name"] for x in base]
        out_list = [copy.deepcopy(x) for x in base]
        for p in patch:
            if p["name"] in names:
                out_list[names.index(p["name"])] = merge(out_list[names.index(p["name"])], p)
            else:
                out_list.append(copy.deepcopy(p))
        return out_list
    return copy.deepcopy(patch)


def built(overlay: str | None) -> list[dict[str, Any]]:
    objs = base_objects()
    if overlay is None:
        return objs
    k = docs(DEPLOY / "overlays" / overlay / "kustomization.yaml")[0]
    assert k["resources"][0] == "../../base"
    objs += [o for r in k["resources"][1:] for o in docs(DEPLOY / "overlays" / overlay / r)]
    for p in k["patches"]:
        for patch in docs(DEPLOY / "overlays" / overlay / p["path"]):
            hits = [
                i for i, o in enumerate(objs) if (o["kind"], o["metadata"]["name"]) == (patch["kind"], patch["metadata"]["name"])
            ]
            assert len(hits) == 1, f"{p['path']} patches nothing in the base"
            objs[hits[0]] = merge(objs[hits[0]], patch)
    return objs


@pytest.mark.parametrize("overlay", [None, "s3", "signing"])
def test_manifests_validate_against_the_kubernetes_schemas(overlay: str | None) -> None:
    objs = built(overlay)
    kinds = sorted({o["kind"] for o in objs})
    assert set(kinds) >= set(
        [
            "ClusterRole",
            "ClusterRoleBinding",
            "Deployment",
            "Namespace",
            "PersistentVolumeClaim",
            "Role",
            "RoleBinding",
            "Service",
            "ServiceAccount",
        ]
    )
    for o in objs:
        kubernetes_validate.validate(o, K8S, strict=True)


def test_a_wrong_field_fails_validation() -> None:
    # The check can fail: a misspelt field in the Deployment is refused.
    dep = next(o for o in base_objects() if o["kind"] == "Deployment")
    bad = copy.deepcopy(dep)
    bad["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S, strict=True)


@pytest.mark.parametrize("overlay", [None, "s3", "signing"])
def test_the_container_runs_the_real_watch_command_safely(overlay: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    dep = next(o for o in built(overlay) if o["kind"] == "Deployment")
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert c["args"][0] == "watch"
    monkeypatch.delenv("EVIDENCE_PROMETHEUS_URL", raising=False)
    for e in c.get("env") or []:
        if "value" in e:
            monkeypatch.setenv(e["name"], e["value"])
    ctx = watch_command.make_context("watch", list(c["args"][1:]))  # unknown options fail here
    assert ctx.params["listen"] == "0.0.0.0:8080"
    assert pod["securityContext"]["runAsNonRoot"] is True and c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False and c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz" and c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    vols = {v["name"] for v in pod["volumes"]}
    assert {"/data", "/tmp"} <= mounts and {m["name"] for m in c["volumeMounts"]} <= vols
    if ctx.params["store"].startswith("s3://"):
        assert ctx.params["journal"] and ctx.params["journal"].startswith("/data")
    if ctx.params["sign_key"]:
        assert any(ctx.params["sign_key"].startswith(m) for m in mounts)


def test_the_deployment_runs_the_image_the_dockerfile_builds_at_this_version() -> None:
    from evidence import __version__

    (raw,) = [o for o in docs(DEPLOY / "base" / "deployment.yaml") if o["kind"] == "Deployment"]
    (c,) = raw["spec"]["template"]["spec"]["containers"]
    (entry,) = docs(DEPLOY / "base" / "kustomization.yaml")[0]["images"]
    assert c["image"] == entry["name"] == "flagger-evidence" and entry["newTag"] == __version__
    (built_c,) = next(o for o in base_objects() if o["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"]
    assert built_c["image"] == f"flagger-evidence:{__version__}"
    readme = (DEPLOY.parent / "README.md").read_text(encoding="utf-8")
    install = readme[readme.index("In a cluster, five commands") :]
    install = install[install.index("```sh") + 5 : install.index("```", install.index("```sh") + 5)]
    commands = [ln for ln in install.splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(commands) == 5
    image = f"ghcr.io/OWNER/flagger-evidence:{__version__}"
    assert commands[0].startswith(f"docker build --target render -t {image} . && docker push {image}")
    assert f"kustomize edit set image flagger-evidence={image}" in commands[1]
    assert "--target render" in (DEPLOY.parent / "Dockerfile").read_text()


def test_examples_are_well_formed() -> None:
    (flux,) = docs(DEPLOY / "examples" / "flux-kustomization.yaml")
    assert flux["apiVersion"] == "kustomize.toolkit.fluxcd.io/v1" and flux["kind"] == "Kustomization"
    assert (DEPLOY.parent / flux["spec"]["path"]).is_dir() and flux["spec"]["sourceRef"]["kind"] == "GitRepository"
    (ops,) = docs(DEPLOY / "examples" / "canary-webhooks-patch.yaml")
    svc = next(o for o in base_objects() if o["kind"] == "Service")
    host = f"http://{svc['metadata']['name']}.{svc['metadata']['namespace']}.svc"
    hooks = {op["value"]["type"]: op["value"]["url"] for op in ops}
    assert hooks == {"event": f"{host}/flagger/event", "post-rollout": f"{host}/flagger/post-rollout"}


def test_no_rule_grants_secrets_or_writes() -> None:
    for o in base_objects():
        for rule in o.get("rules") or []:
            assert "secrets" not in rule["resources"] and "*" not in rule["resources"]
            assert set(rule["verbs"]) <= {"get", "list", "watch"}


# -- RBAC against the calls the code makes ---------------------------------------------------


def granted(
    verb: str, group: str, resource: str, namespace: str | None, name: str | None = None, overlay: str | None = None
) -> bool:
    for o in built(overlay):
        if o["kind"] not in ("ClusterRole", "Role"):
            continue
        if o["kind"] == "Role" and namespace != o["metadata"]["namespace"]:
            continue
        for rule in o["rules"]:
            named = "resourceNames" not in rule or name in rule["resourceNames"]
            if group in rule["apiGroups"] and resource in rule["resources"] and verb in rule["verbs"] and named:
                return True
    return False


def request_rule(method: str, path: str, query: dict[str, str]) -> tuple[str, str, str, str | None, str | None] | None:
    seg = path.strip("/").split("/")
    if seg == ["version"]:
        return None  # non-resource discovery, granted to every authenticated user
    if seg[:2] == ["api", "v1"]:
        group, rest = "", seg[2:]
    else:
        group, rest = seg[1], seg[3:]
    ns = None
    if rest[:1] == ["namespaces"]:
        ns, rest = rest[1], rest[2:]
    resource = rest[0] + (f"/{rest[2]}" if len(rest) == 3 else "")
    verb = "get" if len(rest) >= 2 else "watch" if query.get("watch") in ("true", "1") else "list"
    verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, verb)
    return verb, group, resource, ns, (rest[1] if len(rest) >= 2 else None)


@pytest.fixture
def api(simulated: Callable[[str], Path], tmp_path: Path) -> Iterator[KubeApiServer]:
    with KubeApiServer(simulated("rollback-error-rate") / "dump", tmp_path / "kubeapi") as s:
        yield s


def test_every_api_call_of_watch_and_capture_is_granted(
    api: KubeApiServer, prometheus_for: Callable[[str], PrometheusServer], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    opts = WatchOptions(
        store=str(tmp_path / "store"),
        prometheus=PrometheusSource(prometheus_for("rollback-error-rate").url),
        kubeconfig=str(api.kubeconfig),
        context="test",
        tail=dt.timedelta(seconds=0),
        clock=lambda: dt.datetime(2026, 11, 20, 10, 30, tzinfo=dt.UTC),
        watch_timeout_s=2,
        backoff_s=0.05,
    )
    w = Watcher(opts).start()
    try:
        deadline = time.monotonic() + 60
        while not w.results and time.monotonic() < deadline:  # the terminal Canary is captured on start-up
            time.sleep(0.05)
    finally:
        w.stop()
    assert [r["outcome"] for r in w.results] == ["stored"]
    calls = {r for r in (request_rule(*req) for req in api.requests) if r is not None}
    assert ("watch", "flagger.app", "canaries", None, None) in calls
    assert ("get", "", "pods/log", FLAGGER_NAMESPACE, "flagger-7c9f8d6b5-x2x4z") in calls
    missing = sorted(c for c in calls if not granted(*c))
    assert missing == [], f"the code calls APIs the ClusterRole/Role does not grant: {missing}"


def test_the_lease_calls_are_granted_by_the_s3_overlay(
    api: KubeApiServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    dep = next(o for o in built("s3") if o["kind"] == "Deployment")
    lease = next(e["value"] for e in dep["spec"]["template"]["spec"]["containers"][0]["env"] if e["name"] == "EVIDENCE_LEASE")
    opts = WatchOptions(store=str(tmp_path / "store"), prometheus=PrometheusSource("http://127.0.0.1:9"), kubeconfig=str(api.kubeconfig),
                        context="test", lease=lease, lease_renew_s=0.05, lease_duration_s=1, identity="a")  # fmt: skip
    a = Watcher(opts).start()
    b = Watcher(replace(opts, identity="b", journal=tmp_path / "jb")).start()
    time.sleep(0.5)
    a.stop()
    time.sleep(1.5)  # b takes over: get, then update of an expired Lease
    b.stop()
    calls = {r for r in (request_rule(*req) for req in api.requests) if r is not None and r[2] == "leases"}
    assert {c[0] for c in calls} == {"get", "create", "update"}
    missing = sorted(c for c in calls if not granted(*c, overlay="s3"))
    assert missing == [] and calls and not any(granted(*c) for c in calls)  # the base grants no Lease


def test_the_rbac_check_can_fail() -> None:
    assert not granted("list", "", "secrets", None)
    assert not granted("update", "coordination.k8s.io", "leases", "evidence", "someone-else", overlay="s3")
    assert not granted("get", "", "pods/log", "shop")  # Flagger's logs only in Flagger's namespace
    assert granted("watch", "events.k8s.io", "events", "shop")
