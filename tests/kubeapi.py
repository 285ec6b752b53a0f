"""A loopback Kubernetes API server over a simulator dump, for tests that use the real client.

``KubeApiServer(dump)`` serves the objects of a ``dump/`` folder written by
``fixtures.simulator.write_outputs`` over HTTPS on a free 127.0.0.1 port, the way a
kube-apiserver would: JSON lists with ``kind``/``apiVersion``/``metadata.resourceVersion``,
``limit`` + ``continue`` paging with an opaque token, field and label selectors, ``Status``
errors, bearer-token authentication and a little RBAC.  Flagger's ``flagger.log`` becomes the
log of the pod ``flagger-7c9f8d6b5-x2x4z`` in ``flagger-system``.  ::

    with KubeApiServer(simulated("rollback-error-rate") / "dump") as api:
        source = KubeSource(kubeconfig=str(api.kubeconfig), context="test")
        api.fail("/api/v1/namespaces/shop/events", status=500, times=1)   # then succeeds
        api.hang("/apis/flagger.app/v1beta1/namespaces/shop/canaries/podinfo", seconds=5)
        api.requests   # [(method, path, {query}), ...]
        api.proxy_service("monitoring", "prometheus:9090", prom.url)   # the service proxy, relayed

Contexts of the kubeconfig (all on one cluster, the CA is generated with ``openssl``):
``test`` (full rights), ``no-events`` (may not get or list events in any API group),
``no-logs`` (may not read pods or pods/log), ``bad-token`` (rejected with 401) and
``untrusted`` (the right token, but a CA that did not sign the server's certificate).

Faithful details: lists of built-in kinds (core, apps, events.k8s.io) carry no ``kind`` or
``apiVersion`` on their items, lists of custom resources do; paging walks the objects in key
order and filters them like etcd3's store: a full page gets a continue token whenever more
keys remain, matching or not, so the last page can be empty.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

USER = "system:serviceaccount:ops:evidence"
FLAGGER_NAMESPACE = "flagger-system"
FLAGGER_POD = "flagger-7c9f8d6b5-x2x4z"
FLAGGER_LABELS = {"app.kubernetes.io/name": "flagger", "app.kubernetes.io/instance": "flagger", "pod-template-hash": "7c9f8d6b5"}
NOT_FOUND_PATH = "the server could not find the requested resource"
VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.4",
    "gitCommit": "a78aa47129b8539636eb86a9d00e31b2720fe06b",
    "gitTreeState": "clean",
    "buildDate": "2024-12-10T11:37:48Z",
    "goVersion": "go1.22.9",
    "compiler": "gc",
    "platform": "linux/amd64",
}
REASONS = {
    400: ("BadRequest", "Bad Request"),
    401: ("Unauthorized", "Unauthorized"),
    403: ("Forbidden", "Forbidden"),
    404: ("NotFound", "Not Found"),
    405: ("MethodNotAllowed", "Method Not Allowed"),
    410: ("Expired", "Gone"),
    429: ("TooManyRequests", "Too Many Requests"),
    500: ("InternalError", "Internal Server Error"),
    503: ("ServiceUnavailable", "Service Unavailable"),
    504: ("Timeout", "Gateway Timeout"),
}


@dataclass(frozen=True)
class Resource:
    """A served resource: where it lives in the API and what its objects are called."""

    group: str
    version: str
    plural: str
    kind: str
    builtin: bool  # lists of built-in kinds carry no kind/apiVersion on their items
    fields: tuple[str, ...] = ()  # field selectors beyond metadata.name and metadata.namespace

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural


_EVENT_FIELDS = tuple(
    f"involvedObject.{f}" for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
)
RESOURCES = [
    Resource("", "v1", "events", "Event", True, (*_EVENT_FIELDS, "reason", "reportingComponent", "source", "type")),
    Resource("", "v1", "pods", "Pod", True, ("spec.nodeName", "status.phase")),
    Resource("", "v1", "secrets", "Secret", True, ("type",)),
    Resource("", "v1", "services", "Service", True),
    Resource("", "v1", "configmaps", "ConfigMap", True),
    Resource("apps", "v1", "deployments", "Deployment", True),
    Resource("apps", "v1", "daemonsets", "DaemonSet", True),
    Resource(
        "events.k8s.io",
        "v1",
        "events",
        "Event",
        True,
        (*(f.replace("involvedObject.", "regarding.") for f in _EVENT_FIELDS), "reason", "reportingController", "type"),
    ),
    Resource("flagger.app", "v1beta1", "canaries", "Canary", False),
    Resource("flagger.app", "v1beta1", "metrictemplates", "MetricTemplate", False),
    Resource("flagger.app", "v1beta1", "alertproviders", "AlertProvider", False),
    Resource("traefik.io", "v1alpha1", "traefikservices", "TraefikService", False),
]
_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_KIND = {(r.group, r.kind): r for r in RESOURCES if r.group != "events.k8s.io"}
CORE_EVENTS = _BY_PATH[("", "v1", "events")]
EVENTS_V1 = _BY_PATH[("events.k8s.io", "v1", "events")]
PODS = _BY_PATH[("", "v1", "pods")]


@dataclass(frozen=True)
class Identity:
    """Who a bearer token is and which (API group, resource) it may not read."""

    context: str
    token: str
    user: str
    denied: frozenset[tuple[str, str]] = frozenset()


IDENTITIES = [
    Identity("test", "evidence-test-token-full", USER),
    Identity("no-events", "evidence-test-token-no-events", USER, frozenset({("", "events"), ("events.k8s.io", "events")})),
    Identity("no-logs", "evidence-test-token-no-logs", USER, frozenset({("", "pods"), ("", "pods/log")})),
]
BAD_TOKEN = "evidence-test-token-expired"


@dataclass
class Fault:
    """An injected misbehaviour for requests whose path is exactly ``path``."""

    path: str
    action: str  # "status" | "hang" | "drop"
    status: int = 500
    seconds: float = 0.0
    times: int | None = 1  # None: for ever
    message: str = "injected fault"
    retry_after: int | None = None  # a 429's Retry-After header, in seconds
    continued: bool = False  # only requests with a continue token (a list's later pages)


@dataclass
class Certificates:
    """Files of the generated test PKI."""

    ca: Path
    cert: Path
    key: Path
    other_ca: Path  # a CA that did not sign the server certificate


def make_certificates(folder: Path) -> Certificates:
    """Generate a CA, a server certificate for 127.0.0.1/localhost and an unrelated CA with openssl."""
    folder.mkdir(parents=True, exist_ok=True)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca_ext = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]
    (folder / "server.ext").write_text(
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\n"
        "extendedKeyUsage=serverAuth\n"
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "subjectKeyIdentifier=hash\n"
        "authorityKeyIdentifier=keyid,issuer\n",
        encoding="utf-8",
    )
    sign = ["-set_serial", "4242", "-days", "2", "-extfile", "server.ext"]
    commands = [
        ["req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=evidence-test-ca", *ca_ext],
        ["req", "-x509", *ec, "-keyout", "other-ca.key", "-out", "other-ca.crt", "-days", "2", "-subj", "/CN=other-ca", *ca_ext],
        ["req", "-new", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-out", "server.crt", *sign],
    ]
    for cmd in commands:
        proc = subprocess.run(["openssl", *cmd], cwd=folder, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"openssl {' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return Certificates(folder / "ca.crt", folder / "server.crt", folder / "server.key", folder / "other-ca.crt")


def load_dump(dump: Path) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Return the dump's objects by (API group, plural), recognised by apiVersion and kind."""
    store: dict[tuple[str, str], list[dict[str, Any]]] = {(r.group, r.plural): [] for r in RESOURCES}
    for path in sorted(dump.iterdir()):
        if path.suffix == ".json":
            docs: Iterable[Any] = [json.loads(path.read_text(encoding="utf-8"))]
        elif path.suffix in (".yaml", ".yml"):
            docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        else:
            continue  # flagger.log and anything else is not an object
        for doc in docs:
            if not isinstance(doc, dict):
                continue
            items = doc.get("items") if str(doc.get("kind", "")).endswith("List") else [doc]
            for obj in items or []:
                group = str(obj.get("apiVersion", "")).rpartition("/")[0]
                res = _BY_KIND.get((group, obj.get("kind", "")))
                if res is not None:
                    store[(res.group, res.plural)].append(obj)
    return store


def flagger_pod(namespace: str = FLAGGER_NAMESPACE, restarts: int = 0, labels: dict[str, str] | None = None) -> dict[str, Any]:
    """Return the Pod that Flagger's log belongs to (in ``namespace``, its container restarted ``restarts`` times)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": FLAGGER_POD,
            "namespace": namespace,
            "labels": dict(FLAGGER_LABELS if labels is None else labels),
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, FLAGGER_POD)),
            "creationTimestamp": "2026-11-01T00:00:00Z",
        },
        "spec": {
            "serviceAccountName": "flagger",
            "containers": [{"name": "flagger", "image": "ghcr.io/fluxcd/flagger:1.44.0"}],
        },
        "status": {"phase": "Running", "containerStatuses": [{"name": "flagger", "ready": True, "restartCount": restarts}]},
    }


def flagger_deployment(namespace: str, pod_labels: dict[str, str], labels: dict[str, str]) -> dict[str, Any]:
    """Return a Deployment of Flagger whose pods carry ``pod_labels`` (its selector) and which is labelled ``labels``."""
    selector = {k: v for k, v in pod_labels.items() if k != "pod-template-hash"}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "canary-controller", "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": selector},
                "spec": {"containers": [{"name": "controller", "image": "ghcr.io/fluxcd/flagger:1.44.0@sha256:" + "0" * 64}]},
            },
        },
    }


def to_events_v1(ev: dict[str, Any]) -> dict[str, Any]:
    """Convert a core/v1 Event to its events.k8s.io/v1 form, as the API server does."""
    out: dict[str, Any] = {"kind": "Event", "apiVersion": "events.k8s.io/v1", "metadata": copy.deepcopy(ev.get("metadata", {}))}
    out["eventTime"] = ev.get("eventTime")
    if ev.get("series"):
        out["series"] = ev["series"]
    source = ev.get("source") or {}
    controller = ev.get("reportingComponent") or ""
    if controller:
        out["reportingController"] = controller
    if ev.get("reportingInstance"):
        out["reportingInstance"] = ev["reportingInstance"]
    if ev.get("action"):
        out["action"] = ev["action"]
    for src, dst in (
        ("reason", "reason"),
        ("involvedObject", "regarding"),
        ("related", "related"),
        ("message", "note"),
        ("type", "type"),
    ):
        if ev.get(src) not in (None, "", {}):
            out[dst] = copy.deepcopy(ev[src])
    if source:
        out["deprecatedSource"] = dict(source)
    for src, dst in (
        ("firstTimestamp", "deprecatedFirstTimestamp"),
        ("lastTimestamp", "deprecatedLastTimestamp"),
        ("count", "deprecatedCount"),
    ):
        if ev.get(src):
            out[dst] = ev[src]
    return out


def _field(obj: dict[str, Any], res: Resource, name: str) -> str:
    """Return the value of field selector ``name`` on a stored object (core form for events)."""
    if res is EVENTS_V1:
        name = {"reportingController": "reportingComponent"}.get(name, name.replace("regarding.", "involvedObject."))
    if res is CORE_EVENTS and name == "source":
        return str((obj.get("source") or {}).get("component", ""))
    value: Any = obj
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return "" if value is None else str(value)


class SelectorError(ValueError):
    """A field or label selector the server cannot understand."""


def parse_field_selector(text: str, res: Resource) -> list[tuple[str, str, bool]]:
    """Parse ``a=b,c!=d`` into (field, value, equal) terms; reject fields the resource lacks."""
    terms = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        m = re.fullmatch(r"([A-Za-z0-9_.\-/]+)\s*(==|!=|=)\s*(.*)", part)
        if not m:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        name, op, value = m.groups()
        if name not in ("metadata.name", "metadata.namespace", *res.fields):
            raise SelectorError(f"field label not supported: {name}")
        terms.append((name, value, op != "!="))
    return terms


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector: ``op`` is in, notin, exists or !exists (= and != are in/notin)."""

    key: str
    op: str
    values: frozenset[str] = frozenset()

    def __call__(self, labels: dict[str, str]) -> bool:
        if self.op == "exists":
            return self.key in labels
        if self.op == "!exists":
            return self.key not in labels
        return (labels.get(self.key) in self.values) == (self.op == "in")


def parse_label_selector(text: str) -> list[Requirement]:
    """Parse a label selector (=, ==, !=, in, notin, exists, !exists) into requirements."""
    reqs: list[Requirement] = []
    for part in filter(None, (p.strip() for p in re.split(r",(?![^()]*\))", text))):
        if m := re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)", part):
            reqs.append(Requirement(m.group(1), m.group(2), frozenset(v.strip() for v in m.group(3).split(","))))
        elif m := re.fullmatch(r"([\w./-]+)\s*(==|!=|=)\s*([\w.-]*)", part):
            reqs.append(Requirement(m.group(1), "notin" if m.group(2) == "!=" else "in", frozenset({m.group(3)})))
        elif m := re.fullmatch(r"(!?)([\w./-]+)", part):
            reqs.append(Requirement(m.group(2), "!exists" if m.group(1) else "exists"))
        else:
            raise SelectorError(f"unable to parse requirement: {part!r}")
    return reqs


def go_bool(value: str | None) -> bool:
    """Read a boolean query parameter as the API server does (Go's strconv.ParseBool: older clients send ``True``)."""
    return value in ("1", "t", "T", "TRUE", "true", "True")


def status_body(code: int, message: str, details: dict[str, Any] | None = None, reason: str | None = None) -> dict[str, Any]:
    """Return a ``Status`` object as the API server writes it for an error."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or REASONS.get(code, ("", ""))[0],
    }
    if details is not None:
        body["details"] = details
    body["code"] = code
    return body


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    api: KubeApiServer
    context: ssl.SSLContext

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        # The handshake happens in the handler's thread, so a stuck client cannot stall accept().
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out or reject the certificate are part of the tests


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes; no 40 ms delayed-ACK stalls
    server_version = "kube-apiserver-loopback"
    timeout = 10.0
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.server.api._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.api._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.api._handle(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET  # answered 405 after authentication

    def send(self, code: int, body: bytes, content_type: str = "application/json", headers: dict[str, str] | None = None) -> None:
        """Write one response with a Content-Length (keep-alive needs it)."""
        try:
            self.send_response(code)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-cache, private")
            self.send_header("Audit-Id", str(uuid.uuid4()))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
        except OSError:
            self.close_connection = True  # the client gave up (timeouts are part of the tests)


@dataclass
class _Request:
    method: str
    path: str
    query: dict[str, str]
    identity: Identity


class KubeApiServer:
    """A kube-apiserver look-alike over a simulator dump; HTTPS on 127.0.0.1, a context manager."""

    def __init__(
        self,
        dump: Path,
        workdir: Path | None = None,
        certificates: Certificates | None = None,
        *,
        flagger_namespace: str = FLAGGER_NAMESPACE,
        flagger_restarted: bool = False,
        flagger_pod_labels: dict[str, str] | None = None,
        flagger_deployment_labels: dict[str, str] | None = None,
    ) -> None:
        """Serve ``dump``; Flagger's pod runs in ``flagger_namespace``; ``flagger_restarted``: its container
        restarted halfway through the log, so the first half is only in the previous container's log.

        ``flagger_pod_labels`` replaces the pod's Helm labels; ``flagger_deployment_labels`` adds
        Flagger's Deployment (so labelled, selecting the pod by its labels)."""
        self.dump = Path(dump)
        self.flagger_restarted = flagger_restarted
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="kubeapi-")
            workdir = Path(self._tmp.name)
        self.workdir = workdir
        self.certificates = certificates
        self.kubeconfig = workdir / "kubeconfig"
        self.url = ""
        self.port = 0
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.faults: list[Fault] = []
        self.proxies: dict[tuple[str, str], str] = {}
        self.log_lines = self._read_log()
        self._pristine = load_dump(self.dump)
        self._pristine[("", "pods")].append(flagger_pod(flagger_namespace, 1 if flagger_restarted else 0, flagger_pod_labels))
        if flagger_deployment_labels is not None:
            pod_labels = FLAGGER_LABELS if flagger_pod_labels is None else flagger_pod_labels
            dep = flagger_deployment(flagger_namespace, pod_labels, flagger_deployment_labels)
            self._pristine.setdefault(("apps", "deployments"), []).append(dep)
        self._fill_metadata(self._pristine)
        self.store = copy.deepcopy(self._pristine)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._watch_init()

    # -- life cycle -------------------------------------------------------------------------

    def start(self) -> KubeApiServer:
        """Generate the PKI if needed, listen on a free port, write the kubeconfig."""
        if self.certificates is None:
            self.certificates = make_certificates(self.workdir / "pki")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certificates.cert, self.certificates.key)
        httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        httpd.api = self
        httpd.context = context
        self._httpd = httpd
        self.port = int(httpd.server_address[1])
        self.url = f"https://127.0.0.1:{self.port}"
        self._stopping.clear()
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True, name="kubeapi")
        self._thread.start()
        self.write_kubeconfig(self.kubeconfig)
        return self

    def stop(self) -> None:
        """Stop serving, end open connections and hanging requests, and wait for the thread."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None
        self._thread = None

    def close(self) -> None:
        """Stop and remove the temporary work folder, if this server made it."""
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> KubeApiServer:
        return self.start()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- what tests use ---------------------------------------------------------------------

    def write_kubeconfig(self, path: Path) -> Path:
        """Write a kubeconfig with the contexts test, no-events, no-logs, bad-token and untrusted."""
        assert self.certificates is not None, "start() the server first"
        ca = base64.b64encode(self.certificates.ca.read_bytes()).decode()
        other = base64.b64encode(self.certificates.other_ca.read_bytes()).decode()
        users = [{"name": i.context, "user": {"token": i.token}} for i in IDENTITIES]
        users.append({"name": "bad-token", "user": {"token": BAD_TOKEN}})
        contexts = [
            {"name": u["name"], "context": {"cluster": "loopback", "user": u["name"], "namespace": "shop"}} for u in users
        ]
        contexts.append({"name": "untrusted", "context": {"cluster": "untrusted", "user": "test"}})
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "preferences": {},
            "clusters": [
                {"name": "loopback", "cluster": {"server": self.url, "certificate-authority-data": ca}},
                {"name": "untrusted", "cluster": {"server": self.url, "certificate-authority-data": other}},
            ],
            "users": users,
            "contexts": contexts,
            "current-context": "test",
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        return path

    def proxy_service(self, namespace: str, service: str, upstream: str) -> None:
        """Serve ``/api/v1/namespaces/NS/services/SERVICE/proxy/…`` from ``upstream`` (SERVICE as NAME:PORT)."""
        with self._lock:
            self.proxies[(namespace, service)] = upstream.rstrip("/")

    def fail(
        self,
        path: str,
        status: int = 500,
        times: int | None = 1,
        message: str = "injected fault",
        *,
        retry_after: int | None = None,
        continued: bool = False,
    ) -> None:
        """Answer the next ``times`` requests for ``path`` (None: all) with a Status of ``status``.

        ``retry_after``: with a ``Retry-After`` header, as API priority and fairness sends with 429;
        ``continued``: only requests carrying a continue token (410 Expired on a compacted one).
        """
        with self._lock:
            self.faults.append(
                Fault(path, "status", status=status, times=times, message=message, retry_after=retry_after, continued=continued)
            )

    def hang(self, path: str, seconds: float = 30.0, times: int | None = None) -> None:
        """Hold requests for ``path`` for ``seconds`` before answering (stop() releases them)."""
        with self._lock:
            self.faults.append(Fault(path, "hang", seconds=seconds, times=times))

    def drop(self, path: str, times: int | None = 1) -> None:
        """Close the connection of requests for ``path`` without an answer."""
        with self._lock:
            self.faults.append(Fault(path, "drop", times=times))

    def remove(self, plural: str, namespace: str, name: str, group: str = "") -> None:
        """Delete a stored object (reset() brings it back)."""
        with self._lock:
            objs = self.store[(group, plural)]
            objs[:] = [o for o in objs if (o["metadata"].get("namespace"), o["metadata"]["name"]) != (namespace, name)]

    def reset(self) -> None:
        """Forget faults, the request log and removals."""
        with self._lock:
            self.faults.clear()
            self.requests.clear()
            self.store = copy.deepcopy(self._pristine)
        self._watch_init()

    def requests_for(self, path: str) -> list[tuple[str, str, dict[str, str]]]:
        """Return the logged requests whose path is ``path`` or lies under it."""
        with self._lock:
            return [r for r in self.requests if r[1] == path or r[1].startswith(path.rstrip("/") + "/")]

    # -- internals --------------------------------------------------------------------------

    def _read_log(self) -> list[str]:
        log = self.dump / "flagger.log"
        if not log.exists():
            return []
        return [line for line in log.read_text(encoding="utf-8").splitlines() if line]

    @staticmethod
    def _fill_metadata(store: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
        """Give every object the uid and resourceVersion a real server always sets."""
        rv = 60000
        for (group, plural), objs in sorted(store.items()):
            for obj in objs:
                meta = obj.setdefault("metadata", {})
                key = f"{group}/{plural}/{meta.get('namespace', '')}/{meta.get('name', '')}"
                meta.setdefault("uid", str(uuid.uuid5(uuid.NAMESPACE_URL, key)))
                if not meta.get("resourceVersion"):
                    rv += 1
                    meta["resourceVersion"] = str(rv)

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _resource_version(self) -> str:
        rvs = [
            int(o["metadata"]["resourceVersion"])
            for objs in self.store.values()
            for o in objs
            if str(o["metadata"].get("resourceVersion", "")).isdigit()
        ]
        return str(max(rvs, default=1))

    def _fault_for(self, path: str, query: dict[str, str]) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.continued and not query.get("continue"):
                    continue
                if fault.path == path and (fault.times is None or fault.times > 0):
                    if fault.times is not None:
                        fault.times -= 1
                    return fault
        return None

    def _handle(self, h: _Handler) -> None:
        parts = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        path = parts.path
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        with self._lock:
            self.requests.append((h.command, path, query))
        fault = self._fault_for(path, query)
        if fault is not None:
            if fault.action == "drop":
                h.close_connection = True
                try:
                    h.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if fault.action == "status":
                if fault.status == 404:
                    return self._status(h, 404, NOT_FOUND_PATH, {})
                if fault.status >= 500:
                    msg = f"Internal error occurred: {fault.message}"
                    return self._status(h, fault.status, msg, {"causes": [{"message": fault.message}]})
                if fault.retry_after is not None:
                    body = json.dumps(status_body(fault.status, fault.message, {"retryAfterSeconds": fault.retry_after}))
                    return h.send(fault.status, body.encode(), headers={"Retry-After": str(fault.retry_after)})
                return self._status(h, fault.status, fault.message, {})
            if self._stopping.wait(fault.seconds):
                h.close_connection = True
                return
        auth = h.headers.get("Authorization", "")
        identity = next((i for i in IDENTITIES if auth == f"Bearer {i.token}"), None)
        if identity is None:
            return self._status(h, 401, "Unauthorized")
        if path.startswith("/apis/coordination.k8s.io/v1/namespaces/"):
            return self._lease(h, path, body)
        if h.command != "GET":
            return self._status(h, 405, "the server does not allow this method on the requested resource", {})
        if path == "/version":
            return h.send(200, json.dumps(VERSION, indent=2).encode())
        self._route(h, _Request(h.command, path, query, identity))

    def _route(self, h: _Handler, req: _Request) -> None:
        seg = req.path.strip("/").split("/")
        if seg[:3] == ["api", "v1", "namespaces"] and len(seg) >= 7 and seg[4] == "services" and seg[6] == "proxy":
            return self._proxy(h, seg[3], seg[5], "/" + "/".join(seg[7:]), req.query)
        if seg[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", seg[2:]
        elif seg[0] == "apis" and len(seg) >= 3:
            group, version, rest = seg[1], seg[2], seg[3:]
        else:
            return self._status(h, 404, NOT_FOUND_PATH, {})
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            return self._status(h, 404, NOT_FOUND_PATH, {})
        res = _BY_PATH.get((group, version, rest[0]))
        name = rest[1] if len(rest) >= 2 else None
        sub = rest[2] if len(rest) == 3 else None
        if res is None or (sub is not None and (res is not PODS or sub != "log")) or (name is not None and namespace is None):
            return self._status(h, 404, NOT_FOUND_PATH, {})
        verb = "get" if name else "watch" if req.query.get("watch") in ("true", "1") else "list"
        resource = f"{res.plural}/{sub}" if sub else res.plural
        if (group, resource) in req.identity.denied:
            where = f' in the namespace "{namespace}"' if namespace else " at the cluster scope"
            subject = f'{res.qualified} "{name}"' if name else res.qualified
            details: dict[str, Any] = {"kind": res.plural}
            if group:
                details["group"] = group
            if name:
                details["name"] = name
            msg = f'{subject} is forbidden: User "{req.identity.user}" cannot {verb} resource "{resource}" in API group "{group}"{where}'
            return self._status(h, 403, msg, details)
        with self._lock:
            # events.k8s.io/v1 is a view of the core events, converted on the way out.
            key = ("", "events") if res is EVENTS_V1 else (res.group, res.plural)
            stored = copy.deepcopy(
                [o for o in self.store[key] if namespace is None or o["metadata"].get("namespace") == namespace]
            )
        if name is not None:
            obj = next((o for o in stored if o["metadata"]["name"] == name), None)
            if obj is None:
                details = {"name": name, "kind": res.plural}
                if group:
                    details["group"] = group
                return self._status(h, 404, f'{res.qualified} "{name}" not found', details)
            if sub == "log":
                return self._pod_log(h, obj, req.query)
            return h.send(200, json.dumps(self._present(res, obj, in_list=False)).encode())
        if verb == "watch":
            return self._watch(h, res, namespace, req.query)
        self._list(h, res, stored, req.query)

    def _proxy(self, h: _Handler, namespace: str, service: str, path: str, query: dict[str, str]) -> None:
        """Relay a GET to the upstream registered for the Service, like the API server's service proxy."""
        import urllib.error
        import urllib.parse
        import urllib.request

        upstream = self.proxies.get((namespace, service))
        if upstream is None:
            return self._status(h, 503, f'no endpoints available for service "{service}"', {"name": service, "kind": "services"})
        url = upstream + path + ("?" + urllib.parse.urlencode(query) if query else "")
        try:
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=30) as answer:
                return h.send(answer.status, answer.read(), answer.headers.get("Content-Type") or "application/json")
        except urllib.error.HTTPError as exc:
            return h.send(exc.code, exc.read(), exc.headers.get("Content-Type") or "application/json")

    def _present(self, res: Resource, obj: dict[str, Any], in_list: bool) -> dict[str, Any]:
        if res is EVENTS_V1:
            obj = to_events_v1(obj)
        else:
            obj = {
                "apiVersion": res.api_version,
                "kind": res.kind,
                **{k: v for k, v in obj.items() if k not in ("apiVersion", "kind")},
            }
        if in_list and res.builtin:
            obj.pop("apiVersion", None)
            obj.pop("kind", None)
        return obj

    def _list(self, h: _Handler, res: Resource, objs: list[dict[str, Any]], query: dict[str, str]) -> None:
        try:
            terms = parse_field_selector(query.get("fieldSelector", ""), res)
            labels = parse_label_selector(query.get("labelSelector", ""))
        except SelectorError as exc:
            return self._status(h, 400, str(exc))
        rv = self._resource_version()
        objs.sort(key=lambda o: f"{o['metadata'].get('namespace', '')}/{o['metadata']['name']}")
        start = ""
        if query.get("continue"):
            try:
                token = json.loads(base64.urlsafe_b64decode(query["continue"].encode()))
                start, rv = str(token["start"]), str(token["rv"])
            except (ValueError, KeyError, TypeError) as exc:
                return self._status(h, 400, f"continue key is not valid: {exc}")
        limit = int(query["limit"]) if query.get("limit", "").isdigit() and int(query["limit"]) > 0 else None

        def matches(o: dict[str, Any]) -> bool:
            lbl = o["metadata"].get("labels") or {}
            return all((_field(o, res, f) == v) == eq for f, v, eq in terms) and all(p(lbl) for p in labels)

        items: list[dict[str, Any]] = []
        cont = None
        remaining = 0
        candidates = [o for o in objs if f"{o['metadata'].get('namespace', '')}/{o['metadata']['name']}" > start]
        for i, o in enumerate(candidates):
            if limit is not None and len(items) == limit:
                # Like etcd3's store: stop once the page is full, more keys remain.
                last = candidates[i - 1]["metadata"]
                cont = {"v": "meta.k8s.io/v1", "rv": int(rv), "start": f"{last.get('namespace', '')}/{last['name']}\x00"}
                remaining = len(candidates) - i
                break
            if matches(o):
                items.append(self._present(res, o, in_list=True))
        meta: dict[str, Any] = {"resourceVersion": rv}
        if cont is not None:
            meta["continue"] = base64.urlsafe_b64encode(json.dumps(cont).encode()).decode()
            if not terms and not labels:
                meta["remainingItemCount"] = remaining
        body = {"kind": f"{res.kind}List", "apiVersion": res.api_version, "metadata": meta, "items": items}
        h.send(200, json.dumps(body).encode())

    def _pod_log(self, h: _Handler, pod: dict[str, Any], query: dict[str, str]) -> None:
        name = pod["metadata"]["name"]
        containers = [c["name"] for c in pod["spec"]["containers"]]
        container = query.get("container") or (containers[0] if len(containers) == 1 else "")
        if not container:
            return self._status(h, 400, f"a container name must be specified for pod {name}, choose one of: {containers}")
        if container not in containers:
            return self._status(h, 400, f"container {container} is not valid for pod {name}")
        lines = self.log_lines if name == FLAGGER_POD else []
        half = len(lines) // 2 if self.flagger_restarted else 0
        if go_bool(query.get("previous")):
            if not half:
                return self._status(h, 400, f'previous terminated container "{container}" in pod "{name}" not found')
            lines = lines[:half]
        else:
            lines = lines[half:]
        if query.get("tailLines", "").isdigit():
            lines = lines[len(lines) - int(query["tailLines"]) :] if int(query["tailLines"]) else []
        text = "".join(line + "\n" for line in lines)
        h.send(200, text.encode(), "text/plain")

    def _status(self, h: _Handler, code: int, message: str, details: dict[str, Any] | None = None) -> None:
        h.send(code, json.dumps(status_body(code, message, details)).encode())

    # -- watch (issue 13): streamed changes, bookmarks, 410 Gone, dropped streams --------------
    #
    # ``put`` stores an object under a new resourceVersion and streams ADDED/MODIFIED to open
    # watches; ``compact()`` forgets the history, so a watch from an older version gets the
    # in-stream ERROR 410 a real server sends; ``bookmark()`` sends a BOOKMARK to watches that
    # asked for them; ``drop_watches()`` cuts every open stream mid-chunk.

    def _watch_init(self) -> None:
        self._history: list[tuple[int, tuple[str, str], str, dict[str, Any]]] = []
        self._compacted = 0
        self._drops = 0
        self._marks = 0
        self._changed = threading.Condition(self._lock)

    def put(self, plural: str, obj: dict[str, Any], group: str = "") -> str:
        """Create or replace an object (by namespace and name) under a new resourceVersion; return it."""
        with self._changed:
            rv = int(self._resource_version()) + 1
            obj = copy.deepcopy(obj)
            meta = obj.setdefault("metadata", {})
            key = f"{group}/{plural}/{meta.get('namespace', '')}/{meta.get('name', '')}"
            meta.setdefault("uid", str(uuid.uuid5(uuid.NAMESPACE_URL, key)))
            meta["resourceVersion"] = str(rv)
            objs = self.store[(group, plural)]
            at = [
                i
                for i, o in enumerate(objs)
                if (o["metadata"].get("namespace"), o["metadata"]["name"]) == (meta.get("namespace"), meta["name"])
            ]
            if at:
                objs[at[0]] = obj
            else:
                objs.append(obj)
            self._history.append((rv, (group, plural), "MODIFIED" if at else "ADDED", copy.deepcopy(obj)))
            self._changed.notify_all()
            return str(rv)

    def compact(self) -> None:
        """Forget the watch history: a watch from any version seen so far is answered 410 Gone."""
        with self._changed:
            self._compacted = int(self._resource_version()) + 1
            self._history.clear()

    def bookmark(self) -> None:
        with self._changed:
            self._marks += 1
            self._changed.notify_all()

    def drop_watches(self) -> None:
        with self._changed:
            self._drops += 1
            self._changed.notify_all()

    def _watch(self, h: _Handler, res: Resource, namespace: str | None, query: dict[str, str]) -> None:
        try:
            terms = parse_field_selector(query.get("fieldSelector", ""), res)
            labels = parse_label_selector(query.get("labelSelector", ""))
        except SelectorError as exc:
            return self._status(h, 400, str(exc))
        key = ("", "events") if res is EVENTS_V1 else (res.group, res.plural)
        with self._lock:
            current = int(self._resource_version())
            compacted, drops, marks = self._compacted, self._drops, self._marks
        asked = query.get("resourceVersion", "")
        cursor = int(asked) if asked.isdigit() and int(asked) > 0 else current
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 1800)
        h.send_response(200)
        h.send_header("Content-Type", "application/json")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()

        def chunk(obj: dict[str, Any]) -> None:
            data = json.dumps(obj).encode() + b"\n"
            h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            h.wfile.flush()

        def matches(o: dict[str, Any]) -> bool:
            if namespace is not None and o["metadata"].get("namespace") != namespace:
                return False
            lbl = o["metadata"].get("labels") or {}
            return all((_field(o, res, f) == v) == eq for f, v, eq in terms) and all(p(lbl) for p in labels)

        try:
            if cursor < compacted:
                chunk(
                    {
                        "type": "ERROR",
                        "object": status_body(410, f"too old resource version: {cursor} ({compacted})", reason="Expired"),
                    }
                )
                h.wfile.write(b"0\r\n\r\n")
                return
            while True:
                with self._changed:
                    while (
                        not self._stopping.is_set()
                        and self._drops == drops
                        and self._marks == marks
                        and not any(e[0] > cursor for e in self._history)
                        and time.monotonic() < deadline
                    ):
                        self._changed.wait(0.05)
                    new = [e for e in self._history if e[0] > cursor]
                    dropped = self._drops != drops or self._stopping.is_set()
                    mark = self._marks != marks
                    marks = self._marks
                    now_rv = int(self._resource_version())
                if dropped:
                    h.close_connection = True
                    h.connection.shutdown(socket.SHUT_RDWR)
                    return
                for rv, k, kind, obj in new:
                    cursor = max(cursor, rv)
                    if k == key and matches(obj):
                        chunk({"type": kind, "object": self._present(res, copy.deepcopy(obj), in_list=False)})
                if mark and go_bool(query.get("allowWatchBookmarks")):
                    chunk(
                        {
                            "type": "BOOKMARK",
                            "object": {
                                "kind": res.kind,
                                "apiVersion": res.api_version,
                                "metadata": {"resourceVersion": str(now_rv)},
                            },
                        }
                    )
                if time.monotonic() >= deadline:
                    h.wfile.write(b"0\r\n\r\n")
                    h.wfile.flush()
                    return
        except OSError:
            h.close_connection = True

    # -- leases (issue 13): get, create, and update with resourceVersion conflicts ----------

    def _lease(self, h: _Handler, path: str, body: bytes) -> None:
        seg = path.strip("/").split("/")  # apis coordination.k8s.io v1 namespaces NS leases [NAME]
        if len(seg) not in (6, 7) or seg[5] != "leases":
            return self._status(h, 404, NOT_FOUND_PATH, {})
        ns, name = seg[4], (seg[6] if len(seg) == 7 else None)
        with self._lock:
            leases = self.store.setdefault(("coordination.k8s.io", "leases"), [])
            found = next((o for o in leases if (o["metadata"]["namespace"], o["metadata"]["name"]) == (ns, name)), None)
            if h.command == "GET" and name is not None:
                if found is None:
                    return self._status(
                        h,
                        404,
                        f'leases.coordination.k8s.io "{name}" not found',
                        {"name": name, "group": "coordination.k8s.io", "kind": "leases"},
                    )
                return h.send(200, json.dumps(found).encode())
            try:
                obj = json.loads(body)
            except ValueError:
                return self._status(h, 400, "the body is not JSON")
            meta = obj.setdefault("metadata", {})
            meta["namespace"] = ns
            rv = str(int(self._resource_version()) + 1)
            if h.command == "POST" and name is None:
                if any(o["metadata"]["name"] == meta.get("name") for o in leases if o["metadata"]["namespace"] == ns):
                    return self._status(
                        h, 409, f'leases.coordination.k8s.io "{meta.get("name")}" already exists', reason="AlreadyExists"
                    )
                meta["resourceVersion"] = rv
                leases.append(obj)
                return h.send(201, json.dumps(obj).encode())
            if h.command == "PUT" and found is not None:
                if meta.get("resourceVersion") != found["metadata"]["resourceVersion"]:
                    msg = f'Operation cannot be fulfilled on leases.coordination.k8s.io "{name}": the object has been modified'
                    return self._status(h, 409, msg, reason="Conflict")
                meta["resourceVersion"] = rv
                leases[leases.index(found)] = obj
                return h.send(200, json.dumps(obj).encode())
        return self._status(h, 405, "the server does not allow this method on the requested resource", {})
