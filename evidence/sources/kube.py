"""The live Kubernetes API as a cluster source: a Canary, what it refers to, its events and Flagger's logs.

Objects come back exactly as the API server sent them, as plain dicts with ``apiVersion`` and
``kind`` on every item, like ``kubectl get -o json``.  Secrets are never read, not even the
ones an AlertProvider names.  Connection errors and 5xx answers are retried a few times;
a timeout is not (it already took the whole budget).  Every failure becomes a ``KubeError``
that names the server and what to do; a missing canary is a ``NotFoundError``.
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import yaml

from evidence.errors import KubeError, NotFoundError
from evidence.flagger import DEFAULT_FLAGGER_NAMESPACE
from evidence.model import CanaryRef
from evidence.sources import ClusterData

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

    from evidence.sources.prometheus import PrometheusAuth

DEFAULT_KUBECONFIG = "~/.kube/config"
DEFAULT_PAGE_SIZE = 250
#: The longest wait a 429's Retry-After is honoured for, in seconds; and how often an expired list restarts.
MAX_RETRY_AFTER = 30.0
MAX_LIST_RESTARTS = 3
#: The labels Flagger's pods carry: its Helm chart's, then its kustomize manifests'.
FLAGGER_SELECTORS = ("app.kubernetes.io/name=flagger", "app=flagger")
SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


@dataclass(frozen=True)
class _Call:
    """One API request, described for error messages and RBAC hints."""

    verb: str  # get | list
    resource: str  # plural, or plural/subresource
    group: str
    namespace: str
    name: str | None = None

    def describe(self) -> str:
        what = self.resource if not self.group else f"{self.resource}.{self.group}"
        target = f" {self.namespace}/{self.name}" if self.name else f" in namespace {self.namespace}"
        return f"{self.verb} {what}{target}"


class _Missing(Exception):
    """A 404 answer: no such object, or (``served`` False) no such resource on this server.

    Never leaves this module: each caller turns it into a warning, a NotFoundError or a KubeError.
    """

    def __init__(self, call: _Call, served: bool) -> None:
        what = "not found" if served else "is not served by the API server"
        super().__init__(f"{call.resource}.{call.group} {what}" if call.group else f"{call.resource} {what}")
        self.call = call
        self.served = served


class KubeSource:
    """Read a canary and its evidence from a Kubernetes API server, the way kubectl would find it."""

    def __init__(
        self,
        kubeconfig: str | None = None,
        context: str | None = None,
        flagger_namespace: str | None = None,
        flagger_selector: str = FLAGGER_SELECTORS[0],
        request_timeout: float = 30.0,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        attempts: int = 3,
        backoff: float = 0.2,
    ) -> None:
        if request_timeout <= 0:
            raise KubeError(f"request timeout must be positive, got {request_timeout}")
        # None: Flagger's pods are looked for in every namespace (its tutorial installs it in `traefik`).
        self.flagger_namespace = flagger_namespace or DEFAULT_FLAGGER_NAMESPACE
        self.flagger_namespace_given = flagger_namespace is not None
        self.flagger_selector = flagger_selector
        self.request_timeout = float(request_timeout)
        # kubernetes < 36 drops a float _request_timeout (it takes an int, the total, or a (connect,
        # read) pair): a whole number of seconds goes as an int, a fraction as the pair.
        self._timeout: int | tuple[float, float] = (
            int(request_timeout) if float(request_timeout).is_integer() else (float(request_timeout), float(request_timeout))
        )
        self.page_size = max(1, int(page_size))
        self.attempts = max(1, int(attempts))
        self.backoff = backoff
        self.context = context
        self.kubeconfig: str | None = None  # the file(s) used, os.pathsep-joined; None in a pod
        self.cluster_name: str | None = None  # the kubeconfig context's cluster; None in a pod
        self.default_namespace: str | None = None  # the context's namespace, or the pod's service account's
        self._client = self._connect(kubeconfig, context)
        self.server = _public_url(str(self._client.configuration.host))

    # -- the ClusterSource protocol -----------------------------------------------------------

    def describe(self) -> str:
        """Return ``cluster <server URL>``, never credentials."""
        return f"cluster {self.server}"

    def read(self, ref: CanaryRef) -> ClusterData:
        """Return the canary, its templates, providers, TraefikService, workloads, events and Flagger's log."""
        data = self.read_objects(ref)
        data.events = self._core_events(ref) + self._events_v1(ref, data.warnings)
        data.log_lines = self._flagger_log(data.warnings)
        return data

    def read_objects(self, ref: CanaryRef) -> ClusterData:
        """Return the canary and the objects it refers to, without its events and Flagger's log."""
        warnings: list[str] = []
        ns = ref.namespace
        from evidence.canary import CanarySpec, normalise_canary

        canary = self._get_canary(ref)
        cspec = CanarySpec.from_object(canary, ref)
        spec = normalise_canary(canary)[0]["spec"]

        templates = []
        for tns, tname in cspec.template_refs():
            call = _Call("get", "metrictemplates", "flagger.app", tns, tname)
            obj = self._optional(call, "MetricTemplate", warnings, partial(self._custom_get, version="v1beta1"))
            templates += [obj] if obj else []
        providers = []
        for pns, pname in _refs(list(cspec.alerts), "providerRef", ns):
            call = _Call("get", "alertproviders", "flagger.app", pns, pname)
            obj = self._optional(call, "AlertProvider", warnings, partial(self._custom_get, version="v1beta1"))
            providers += [obj] if obj else []

        target = spec.get("targetRef") or {}
        target_name = str(target.get("name") or ref.name)
        apex = str((spec.get("service") or {}).get("name") or target_name)
        call = _Call("get", "traefikservices", "traefik.io", ns, apex)
        traefik = self._optional(call, "TraefikService", warnings, partial(self._custom_get, version="v1alpha1"))

        workloads = []
        kind = str(target.get("kind") or "Deployment")
        if kind in ("Deployment", "DaemonSet"):
            for name in (target_name, f"{target_name}-primary"):
                wcall = _Call("get", kind.lower() + "s", "apps", ns, name)
                obj = self._optional(wcall, kind, warnings, partial(self._get_workload, kind=kind))
                workloads += [obj] if obj else []
        else:
            warnings.append(f"canary {ref} targets a {kind}; only Deployments and DaemonSets are read")
        return ClusterData(
            source_kind="cluster",
            source=self.server,
            cluster=self.cluster_name,
            canary=canary,
            metric_templates=templates,
            alert_providers=providers,
            traefik_services=[traefik] if traefik else [],
            workloads=workloads,
            warnings=warnings,
        )

    def service_proxy_auth(self) -> PrometheusAuth:
        """Return the kubeconfig's credentials for the API server's service proxy (the same as for the API)."""
        from evidence.sources.prometheus import PrometheusAuth

        cfg = self._client.configuration
        # auth_settings() runs the client's refresh hook (exec plugins) and names the header whatever the client's version.
        header = next(
            (str(a.get("value") or "") for a in cfg.auth_settings().values() if str(a.get("key")).lower() == "authorization"),
            "",
        )
        token = header[len("Bearer ") :] if header.startswith("Bearer ") else None
        cert = (str(cfg.cert_file), str(cfg.key_file)) if cfg.cert_file and cfg.key_file else None
        return PrometheusAuth(
            bearer_token=token,
            ca_file=str(cfg.ssl_ca_cert) if cfg.ssl_ca_cert else None,
            insecure_skip_verify=not cfg.verify_ssl,
            client_cert=cert,
        )

    def list_canaries(self, namespace: str | None) -> list[dict[str, Any]]:
        """Return the Canaries in ``namespace`` (None: in every namespace), like ``kubectl get canaries -o json``."""
        from kubernetes import client

        api = client.CustomObjectsApi(self._client)
        call = _Call("list", "canaries", "flagger.app", namespace or "(all namespaces)")

        def page(token: str | None) -> Any:
            common: dict[str, Any] = {
                "limit": self.page_size,
                "_preload_content": False,
                "_request_timeout": self._timeout,
            }
            if token:
                common["_continue"] = token
            if namespace is None:
                return api.list_cluster_custom_object("flagger.app", "v1beta1", "canaries", **common)
            return api.list_namespaced_custom_object("flagger.app", "v1beta1", namespace, "canaries", **common)

        try:
            return self._list(call, page, "flagger.app/v1beta1", "Canary")
        except _Missing as exc:
            if not exc.served:
                raise NotFoundError(
                    f"the API server {self.server} does not serve canaries.flagger.app/v1beta1; is Flagger installed?"
                ) from None
            raise KubeError(f"the API server {self.server} answered 404 to {call.describe()}: {exc}") from None

    # -- preflight (issue 14): Flagger's own Deployment, in any namespace ------------------------

    def find_flagger(self, selector: str | None = None) -> list[dict[str, Any]]:
        """Return the Deployments labelled like Flagger in any namespace (else in ``flagger_namespace``).

        A role that may not list Deployments cluster-wide still finds Flagger in its namespace;
        a KubeError says what could not be read.
        """
        from kubernetes import client

        api = client.AppsV1Api(self._client)
        selector = selector or self.flagger_selector

        everywhere = self._pager(api.list_deployment_for_all_namespaces, selector=selector)
        namespaced = self._pager(api.list_namespaced_deployment, self.flagger_namespace, selector=selector)

        try:
            return self._list(_Call("list", "deployments", "apps", "(all namespaces)"), everywhere, "apps/v1", "Deployment")
        except _Forbidden:
            call = _Call("list", "deployments", "apps", self.flagger_namespace)
            try:
                return self._list(call, namespaced, "apps/v1", "Deployment")
            except _Missing as exc:
                raise KubeError(f"the API server {self.server} answered 404 to {call.describe()}: {exc}") from None
        except _Missing as exc:
            raise KubeError(f"the API server {self.server} answered 404 to list deployments.apps: {exc}") from None

    # -- capture (issue 13): the watcher's list-then-watch calls and its Lease ------------------

    def list_call(
        self, resource: str, namespace: str | None, label_selector: str | None = None
    ) -> tuple[Callable[..., Any], dict[str, Any], str]:
        """Return a list function, its arguments and the items' apiVersion, for a list-then-watch.

        ``resource``: ``canaries`` (flagger.app/v1beta1, ``label_selector`` applies), ``events``
        (core/v1) or ``events.k8s.io`` (events.k8s.io/v1), the Events about Canaries only;
        ``namespace`` None is every namespace.  The function also takes ``watch``,
        ``resource_version`` and ``allow_watch_bookmarks`` (``kubernetes.watch.Watch.stream``).
        """
        from kubernetes import client

        kw: dict[str, Any] = {}
        if resource == "canaries":
            custom = client.CustomObjectsApi(self._client)
            if label_selector:
                kw["label_selector"] = label_selector
            kw.update(group="flagger.app", version="v1beta1", plural="canaries")
            if namespace:
                return custom.list_namespaced_custom_object, dict(kw, namespace=namespace), "flagger.app/v1beta1"
            return custom.list_cluster_custom_object, kw, "flagger.app/v1beta1"
        if resource == "events":
            core = client.CoreV1Api(self._client)
            kw["field_selector"] = "involvedObject.kind=Canary"
            if namespace:
                return core.list_namespaced_event, dict(kw, namespace=namespace), "v1"
            return core.list_event_for_all_namespaces, kw, "v1"
        if resource != "events.k8s.io":
            raise ValueError(f"no list-then-watch for {resource!r}: canaries, events or events.k8s.io")
        ev = client.EventsV1Api(self._client)
        kw["field_selector"] = "regarding.kind=Canary"
        if namespace:
            return ev.list_namespaced_event, dict(kw, namespace=namespace), "events.k8s.io/v1"
        return ev.list_event_for_all_namespaces, kw, "events.k8s.io/v1"

    def lease_api(self) -> Any:
        """Return the coordination.k8s.io/v1 API on this connection (the watcher's leader election)."""
        from kubernetes import client

        return client.CoordinationV1Api(self._client)

    # -- life cycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> KubeSource:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- configuration ------------------------------------------------------------------------

    def _connect(self, kubeconfig: str | None, context: str | None) -> ApiClient:
        """Find the kubeconfig like kubectl does and build a client of our own (no global config)."""
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException

        cfg = client.Configuration()
        # urllib3 would retry each request on its own (3 times, timeouts included); we retry instead.
        cfg.retries = 0
        paths = _kubeconfig_paths(kubeconfig)
        if paths is None:
            try:
                config.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
            except ConfigException as exc:
                raise KubeError(
                    f"no kubeconfig found and the in-cluster service account is unusable ({exc}); pass --kubeconfig or set KUBECONFIG"
                ) from None
            try:
                self.default_namespace = Path(SERVICE_ACCOUNT_NAMESPACE).read_text(encoding="utf-8").strip() or None
            except OSError:
                self.default_namespace = None
            return client.ApiClient(configuration=cfg)
        joined = os.pathsep.join(str(p) for p in paths)
        where = f"kubeconfig {joined}"
        self.cluster_name, self.default_namespace = _check_context(paths, context, where)
        try:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=joined, context=context, client_configuration=cfg, persist_config=False
            )
        except (ConfigException, OSError, ValueError, KeyError) as exc:
            ctx = f", context {context!r}" if context else ""
            raise KubeError(f"{where}{ctx} is unusable: {exc}; check it with `kubectl config view`") from None
        self.kubeconfig = joined
        return client.ApiClient(configuration=cfg)

    # -- requests -----------------------------------------------------------------------------

    def _get_canary(self, ref: CanaryRef) -> dict[str, Any]:
        call = _Call("get", "canaries", "flagger.app", ref.namespace, ref.name)
        try:
            return self._custom_get(call, "v1beta1")
        except _Missing as exc:
            if not exc.served:
                raise NotFoundError(
                    f"the API server {self.server} does not serve canaries.flagger.app/v1beta1; is Flagger installed?"
                ) from None
            raise NotFoundError(
                f"canary {ref} not found on {self.server}; `kubectl get canaries -n {ref.namespace}` lists them"
            ) from None

    def _custom_get(self, call: _Call, version: str) -> dict[str, Any]:
        from kubernetes import client

        api = client.CustomObjectsApi(self._client)
        assert call.name is not None
        name = call.name
        return self._json(
            call,
            lambda: api.get_namespaced_custom_object(
                call.group,
                version,
                call.namespace,
                call.resource,
                name,
                _preload_content=False,
                _request_timeout=self._timeout,
            ),
        )

    def _get_workload(self, call: _Call, kind: str) -> dict[str, Any]:
        from kubernetes import client

        api = client.AppsV1Api(self._client)
        assert call.name is not None
        read = api.read_namespaced_deployment if kind == "Deployment" else api.read_namespaced_daemon_set
        name = call.name
        return self._json(call, lambda: read(name, call.namespace, _preload_content=False, _request_timeout=self._timeout))

    def _events(self, ref: CanaryRef, group: str) -> list[dict[str, Any]]:
        """List the canary's Events from core/v1 (``group`` "") or events.k8s.io/v1, page by page."""
        from kubernetes import client

        if group:
            api: Any = client.EventsV1Api(self._client)
            selector, api_version = f"regarding.kind=Canary,regarding.name={ref.name}", "events.k8s.io/v1"
        else:
            api = client.CoreV1Api(self._client)
            selector, api_version = f"involvedObject.kind=Canary,involvedObject.name={ref.name}", "v1"
        call = _Call("list", "events", group, ref.namespace)

        def page(token: str | None) -> Any:
            return api.list_namespaced_event(
                ref.namespace,
                field_selector=selector,
                limit=self.page_size,
                _continue=token,
                _preload_content=False,
                _request_timeout=self._timeout,
            )

        return self._list(call, page, api_version, "Event")

    def _core_events(self, ref: CanaryRef) -> list[dict[str, Any]]:
        try:
            return self._events(ref, "")
        except _Missing as exc:
            call = _Call("list", "events", "", ref.namespace)
            raise KubeError(f"the API server {self.server} answered 404 to {call.describe()}: {exc}") from None

    def _events_v1(self, ref: CanaryRef, warnings: list[str]) -> list[dict[str, Any]]:
        try:
            return self._events(ref, "events.k8s.io")
        except _Missing:
            return []  # an old API server without events.k8s.io/v1: the core events say the same
        except _Forbidden as exc:
            # Roles often grant core events only; events.k8s.io is a view of the same objects.
            warnings.append(f"events.k8s.io/v1 events not read ({exc}); the core/v1 events were read")
            return []

    def _flagger_pods(self) -> tuple[list[dict[str, Any]], str]:
        """Return Flagger's pods and where they were looked for.

        First through Flagger's Deployment (found by its labels or by the ``flagger`` image, in
        every namespace, or only in ``--flagger-namespace``): its pods by its own
        ``spec.selector``, whatever labels an install gives them.  Then by the pod labels: a
        ``--flagger-selector`` of the user's, else the ones Flagger's manifests set (Helm
        ``app.kubernetes.io/name``, kustomize ``app``), falling back to ``flagger-system`` when
        pods may not be listed cluster-wide.
        """
        looked: list[str] = []
        if self.flagger_selector == FLAGGER_SELECTORS[0]:  # not a selector of the user's: ask the Deployment
            for dep in self._flagger_deployments():
                meta = dep.get("metadata") or {}
                ns, name = str(meta.get("namespace") or self.flagger_namespace), str(meta.get("name"))
                selector = _selector_text((dep.get("spec") or {}).get("selector"))
                if not selector:
                    continue
                pods = self._pods_by(ns, selector)
                where = f"namespace {ns} by Deployment {name}'s selector {selector!r}"
                if pods:
                    return pods, where
                looked.append(where)
        pods, where = self._flagger_pods_by_labels()
        return pods, "; ".join([*looked, where])

    def _flagger_deployments(self) -> list[dict[str, Any]]:
        """Return Flagger's Deployments: everywhere (else in ``flagger_namespace``), [] when they may not be listed."""
        from kubernetes import client

        api = client.AppsV1Api(self._client)
        calls = [
            (
                _Call("list", "deployments", "apps", self.flagger_namespace),
                self._pager(api.list_namespaced_deployment, self.flagger_namespace, selector=""),
            )
        ]
        if not self.flagger_namespace_given:
            everywhere = self._pager(api.list_deployment_for_all_namespaces, selector="")
            calls.insert(0, (_Call("list", "deployments", "apps", "(all namespaces)"), everywhere))
        for call, page in calls:
            try:
                deps = self._list(call, page, "apps/v1", "Deployment")
            except (KubeError, _Missing):
                continue  # not allowed or not answered here: the pod labels are tried next
            return sorted(
                (d for d in deps if _is_flagger(d)),
                key=lambda d: (str(d["metadata"].get("namespace")), str(d["metadata"].get("name"))),
            )
        return []

    def _pods_by(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        from kubernetes import client

        api = client.CoreV1Api(self._client)
        page = self._pager(api.list_namespaced_pod, namespace, selector=selector)
        try:
            return self._list(_Call("list", "pods", "", namespace), page, "v1", "Pod")
        except (KubeError, _Missing):
            return []  # the pod labels are tried next; a log that is never read is a warning

    def _flagger_pods_by_labels(self) -> tuple[list[dict[str, Any]], str]:
        """Return Flagger's pods found by their labels, and where they were looked for."""
        from kubernetes import client

        api = client.CoreV1Api(self._client)
        selectors = [self.flagger_selector, *(s for s in FLAGGER_SELECTORS if s != self.flagger_selector)]

        def namespaced(selector: str) -> Callable[[str | None], Any]:
            return self._pager(api.list_namespaced_pod, self.flagger_namespace, selector=selector)

        def everywhere(selector: str) -> Callable[[str | None], Any]:
            return self._pager(api.list_pod_for_all_namespaces, selector=selector)

        ns_call = _Call("list", "pods", "", self.flagger_namespace)
        if self.flagger_namespace_given:
            return self._list(ns_call, namespaced(self.flagger_selector), "v1", "Pod"), (
                f"namespace {self.flagger_namespace} by {self.flagger_selector!r}"
            )
        try:
            for selector in selectors:
                pods = self._list(_Call("list", "pods", "", "(all namespaces)"), everywhere(selector), "v1", "Pod")
                if pods:
                    return pods, f"any namespace by {selector!r}"
            return [], "any namespace by " + " or ".join(repr(s) for s in selectors)
        except _Forbidden:
            # A role that may not list pods cluster-wide still finds Flagger in its usual namespace.
            return self._list(ns_call, namespaced(self.flagger_selector), "v1", "Pod"), (
                f"namespace {self.flagger_namespace} by {self.flagger_selector!r} (pods may not be listed in all namespaces)"
            )

    def _pager(self, fn: Callable[..., Any], *args: Any, selector: str) -> Callable[[str | None], Any]:
        """Return a page function for ``_list``: ``fn(*args)`` by a label selector, one page per continue token."""

        def page(token: str | None) -> Any:
            return fn(
                *args,
                label_selector=selector,
                limit=self.page_size,
                _continue=token,
                _preload_content=False,
                _request_timeout=self._timeout,
            )

        return page

    def _flagger_log(self, warnings: list[str]) -> list[str]:
        from kubernetes import client

        api = client.CoreV1Api(self._client)
        try:
            pods, where = self._flagger_pods()
        except (KubeError, _Missing) as exc:
            warnings.append(f"Flagger's log not read: {exc}")
            return []
        if not pods:
            warnings.append(
                f"Flagger's log not read: no pod found in {where}; pass --flagger-namespace (and --flagger-selector) "
                "with where Flagger runs"
            )
            return []
        lines: list[str] = []
        for pod in sorted(pods, key=lambda p: (str(p["metadata"].get("namespace")), str(p["metadata"]["name"]))):
            name, ns = str(pod["metadata"]["name"]), str(pod["metadata"].get("namespace") or self.flagger_namespace)
            containers = [str(c.get("name")) for c in (pod.get("spec") or {}).get("containers") or []]
            container = "flagger" if "flagger" in containers else (containers[0] if containers else None)
            statuses = (pod.get("status") or {}).get("containerStatuses") or []
            restarted = any(st.get("name") == container and int(st.get("restartCount") or 0) > 0 for st in statuses)
            lcall = _Call("get", "pods/log", "", ns, name)
            # After a restart the previous container's log holds what came before it: read it first.
            for previous in (True, False) if restarted else (False,):
                try:
                    read = partial(
                        api.read_namespaced_pod_log, name, ns, container=container, previous=previous, _preload_content=False
                    )
                    data = self._send(lcall, partial(read, _request_timeout=self._timeout))
                except (KubeError, _Missing) as exc:
                    which = "previous container's log" if previous else "log"
                    warnings.append(f"Flagger's {which} of pod {ns}/{name} not read: {exc}")
                    continue
                lines += [line for line in data.decode("utf-8", "replace").splitlines() if line.strip()]
        return lines

    def _list(self, call: _Call, page: Callable[[str | None], Any], api_version: str, kind: str) -> list[dict[str, Any]]:
        """Follow ``continue`` tokens to the end; set apiVersion and kind on each item like kubectl."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        seen: set[str] = set()
        restarts = 0
        while True:
            try:
                body = self._json(call, partial(page, token))
            except _Expired:
                # The continue token expired (etcd compacted it) between pages: start the list again,
                # as client-go's pager does; a list that keeps expiring is an error.
                if token is None or restarts >= MAX_LIST_RESTARTS:
                    raise
                restarts += 1
                items, token, seen = [], None, set()
                continue
            for item in body.get("items") or []:
                rest = {k: v for k, v in item.items() if k not in ("apiVersion", "kind")}
                items.append({"apiVersion": item.get("apiVersion") or api_version, "kind": item.get("kind") or kind, **rest})
            token = (body.get("metadata") or {}).get("continue") or None
            if token is None:
                return items
            if token in seen:
                raise KubeError(f"the API server {self.server} repeated a continue token while paging {call.describe()}")
            seen.add(token)

    def _json(self, call: _Call, fetch: Callable[[], Any]) -> dict[str, Any]:
        data = self._send(call, fetch)
        try:
            body = json.loads(data)
        except ValueError:
            raise KubeError(
                f"the API server {self.server} answered {call.describe()} with something that is not JSON: {data[:200]!r}"
            ) from None
        if not isinstance(body, dict):
            raise KubeError(
                f"the API server {self.server} answered {call.describe()} with a JSON {type(body).__name__}, not an object"
            )
        return body

    def _send(self, call: _Call, fetch: Callable[[], Any]) -> bytes:
        """Run one request; retry connection errors and 5xx; translate every failure."""
        import urllib3
        from kubernetes.client.exceptions import ApiException

        for attempt in range(1, self.attempts + 1):
            retry = attempt < self.attempts
            try:
                resp = fetch()
                try:
                    return bytes(resp.data)
                finally:
                    resp.release_conn()
            except ApiException as exc:
                status = int(exc.status or 0)
                if status == 0:  # the client's own wrapping of a TLS error
                    raise KubeError(self._tls_message(call, str(exc.reason))) from None
                if status >= 500 and retry:
                    time.sleep(self.backoff * 2 ** (attempt - 1))
                    continue
                if status == 429 and retry:
                    # API priority and fairness: wait as long as the server asks (bounded), then try again.
                    time.sleep(min(MAX_RETRY_AFTER, _retry_after(exc, self.backoff * 2 ** (attempt - 1))))
                    continue
                raise self._api_error(call, status, exc, attempt) from None
            except urllib3.exceptions.HTTPError as exc:
                reason = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason else exc
                # NewConnectionError (refused, unresolvable) subclasses ConnectTimeoutError in urllib3 2.
                timeout = isinstance(reason, urllib3.exceptions.TimeoutError)
                if timeout and not isinstance(reason, urllib3.exceptions.NewConnectionError):
                    raise KubeError(
                        f"the API server {self.server} did not answer {call.describe()} within {self.request_timeout:g}s; "
                        "check that it is reachable, or raise the request timeout"
                    ) from None
                if isinstance(reason, urllib3.exceptions.SSLError):
                    raise KubeError(self._tls_message(call, str(reason))) from None
                if retry:
                    time.sleep(self.backoff * 2 ** (attempt - 1))
                    continue
                raise KubeError(
                    f"cannot reach the API server {self.server} ({_short(reason)}) after {attempt} attempts; "
                    "check that the cluster is up and the server URL in your kubeconfig is right"
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _tls_message(self, call: _Call, detail: str) -> str:
        return (
            f"TLS with the API server {self.server} failed ({_short(detail)}) on {call.describe()}; "
            "check certificate-authority(-data) and the server URL in your kubeconfig"
        )

    def _api_error(self, call: _Call, status: int, exc: Any, attempts: int) -> Exception:
        """Turn an API error answer into the exception to raise."""
        body: dict[str, Any] = {}
        try:
            parsed = json.loads(exc.body or "")
            body = parsed if isinstance(parsed, dict) else {}
        except ValueError:
            pass
        message = str(body.get("message") or (exc.body or "").strip()[:300] or exc.reason)
        if status == 401:
            ctx = f" (context {self.context})" if self.context else ""
            return KubeError(
                f"the API server {self.server} rejected the credentials (401 Unauthorized){ctx}; refresh the token in your kubeconfig"
            )
        if status == 403:
            group = f'(API group "{call.group}")'
            return _Forbidden(
                f"forbidden (403): needs RBAC permission to {call.verb} {call.resource} {group} in namespace {call.namespace}: {message}"
            )
        if status == 404:
            details = body.get("details") or {}
            # A missing object's Status names it; an unknown resource's has empty details.
            return _Missing(call, served=bool(details.get("name")))
        if status == 410:
            return _Expired(f"the API server {self.server} answered 410 {exc.reason} to {call.describe()}: {message}")
        if status >= 500:
            return KubeError(
                f"the API server {self.server} failed to {call.describe()} with {status} {exc.reason} after {attempts} attempts: "
                f"{message}; try again later or check the API server's health"
            )
        return KubeError(f"the API server {self.server} answered {status} {exc.reason} to {call.describe()}: {message}")

    def _optional(
        self, call: _Call, kind: str, warnings: list[str], fetch: Callable[[_Call], dict[str, Any]]
    ) -> dict[str, Any] | None:
        """Return the object, or None with a warning when it does not exist or may not be read.

        A narrowly scoped role (say, no ``get deployments``) must not cost the perishable
        evidence: a 403 on an optional object is a warning in the manifest, not a failure.
        """
        try:
            return fetch(call)
        except _Forbidden as exc:
            warnings.append(f"{kind} {call.namespace}/{call.name} not read: {exc}")
            return None
        except _Missing as exc:
            if not exc.served:
                warnings.append(
                    f"{kind} {call.namespace}/{call.name} not read: the API server does not serve {call.resource}.{call.group}"
                )
            else:
                warnings.append(f"{kind} {call.namespace}/{call.name} not found")
            return None


class _Forbidden(KubeError):
    """A 403 answer; a KubeError that optional reads may downgrade to a warning."""


class _Expired(KubeError):
    """A 410 answer: a list's continue token expired; ``_list`` starts the list again."""


def _is_flagger(dep: dict[str, Any]) -> bool:
    """Tell Flagger's Deployment: labelled like Flagger's manifests, or running the ``flagger`` image (not the loadtester)."""
    labels = (dep.get("metadata") or {}).get("labels") or {}
    if any(labels.get(k) == v for k, _, v in (s.partition("=") for s in FLAGGER_SELECTORS)):
        return True
    pod_spec = (((dep.get("spec") or {}).get("template") or {}).get("spec")) or {}
    for c in pod_spec.get("containers") or []:
        image = str(c.get("image") or "").split("@", 1)[0]
        repo = image.rsplit("/", 1)[-1].split(":", 1)[0]
        if repo == "flagger":
            return True
    return False


def _selector_text(selector: Any) -> str:
    """Return a LabelSelector object (``matchLabels``, ``matchExpressions``) as a label selector string."""
    if not isinstance(selector, dict):
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for e in selector.get("matchExpressions") or []:
        key, op, values = str(e.get("key")), str(e.get("operator")), ",".join(str(v) for v in e.get("values") or [])
        parts.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key}.get(op, f"!{key}"))
    return ",".join(parts)


def _refs(entries: Any, key: str, namespace: str) -> list[tuple[str, str]]:
    """Return the distinct (namespace, name) of ``entries[].<key>`` references, in order."""
    out: list[tuple[str, str]] = []
    for entry in entries or []:
        ref = entry.get(key) if isinstance(entry, dict) else None
        if isinstance(ref, dict) and ref.get("name"):
            pair = (str(ref.get("namespace") or namespace), str(ref["name"]))
            if pair not in out:
                out.append(pair)
    return out


def _kubeconfig_paths(kubeconfig: str | None) -> list[Path] | None:
    """Return the kubeconfig files to use like kubectl, or None to use the in-cluster service account."""
    if kubeconfig:
        path = Path(kubeconfig).expanduser()
        if not path.is_file():
            raise KubeError(f"--kubeconfig {kubeconfig}: no such file")
        return [path]
    env = os.environ.get("KUBECONFIG", "")
    if env.strip():
        named = [Path(p).expanduser() for p in env.split(os.pathsep) if p.strip()]
        found = [p for p in named if p.is_file()]
        if not found:
            raise KubeError(f"KUBECONFIG={env} names no existing file; fix KUBECONFIG or pass --kubeconfig")
        return found
    default = Path(DEFAULT_KUBECONFIG).expanduser()
    if default.is_file():
        return [default]
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return None
    raise KubeError(
        f"no kubeconfig found: {default} does not exist and KUBECONFIG is not set; pass --kubeconfig or set KUBECONFIG"
    )


def _check_context(paths: list[Path], context: str | None, where: str) -> tuple[str | None, str | None]:
    """Raise KubeError unless the kubeconfig has ``context`` (or a current-context); return its cluster name and namespace."""
    names: list[str] = []
    clusters: dict[str, str] = {}
    namespaces: dict[str, str] = {}
    current = ""
    for path in paths:
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise KubeError(f"kubeconfig {path} is unreadable: {exc}") from None
        if not isinstance(doc, dict):
            raise KubeError(f"kubeconfig {path} is not a kubeconfig (no mapping at the top)")
        for entry in doc.get("contexts") or []:
            if isinstance(entry, dict) and entry.get("name") and entry["name"] not in names:
                names.append(str(entry["name"]))
                ctx = entry.get("context")
                if isinstance(ctx, dict) and ctx.get("cluster"):
                    clusters[str(entry["name"])] = str(ctx["cluster"])
                if isinstance(ctx, dict) and ctx.get("namespace"):
                    namespaces[str(entry["name"])] = str(ctx["namespace"])
        current = current or str(doc.get("current-context") or "")
    available = ", ".join(names) if names else "none"
    if context is not None and context not in names:
        raise KubeError(
            f"{where} has no context {context!r}; available contexts: {available} (see `kubectl config get-contexts`)"
        )
    if context is None and not current:
        raise KubeError(f"{where} sets no current-context; pass --context, one of: {available}")
    if context is None and current not in names:
        raise KubeError(f"{where}: current-context {current!r} is not defined; pass --context, one of: {available}")
    chosen = context if context is not None else current
    return clusters.get(chosen), namespaces.get(chosen)


def _retry_after(exc: Any, default: float) -> float:
    """Return the seconds a 429's ``Retry-After`` header asks for (``default`` when absent or not a number)."""
    headers = getattr(exc, "headers", None) or {}
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return max(0.0, float(value)) if value is not None else default
    except ValueError:
        return default


def _public_url(url: str) -> str:
    """Return ``url`` without any user:password part."""
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", "")).rstrip("/")


def _short(detail: Any) -> str:
    """Return the useful end of a urllib3 error text, e.g. ``[Errno 111] Connection refused``."""
    text = str(detail)
    marker = "Failed to establish a new connection: "
    if marker in text:
        text = text.split(marker, 1)[1]
    return text.strip()[:300]
