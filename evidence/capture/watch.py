"""``evidence watch``: capture every rollout once, unattended.

Three kinds of threads feed one capture worker:

* the receiver (``receiver.py``) journals Flagger's webhooks and queues a terminal post-rollout;
* a Canary watch per namespace (or one for all) with the list-then-watch pattern: the list's
  ``resourceVersion``, ``allowWatchBookmarks``, a server-side ``timeoutSeconds``, a
  ``(connect, read)`` client timeout, a fresh list on 410 Gone, exponential backoff on API
  errors; one bad object is logged and skipped;
* a watch of Events (core/v1 and events.k8s.io/v1) about Canaries, journalled at once, since
  the API server aggregates and expires them.

A terminal phase (or post-rollout webhook) queues the canary; after ``tail`` the worker collects
(the journal merged in), signs, puts the bundle into the store (conditional create), renders the
reports, logs one JSON line and hands the decision to the notifiers.  On start every Canary
already in a terminal phase whose run is not recorded as captured is captured too, with a
manifest warning naming what evidence may be lost.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from evidence.capture.journal import Journal
from evidence.capture.metrics import Metrics
from evidence.capture.tracker import TERMINAL, Tracker, run_key
from evidence.errors import EvidenceError, UsageError
from evidence.model import CanaryRef, rfc3339
from evidence.sources import ClusterSource
from evidence.sources.prometheus import PrometheusSource

log = logging.getLogger("evidence.capture")
CANARIES = ("flagger.app", "v1beta1", "canaries")


@dataclass(frozen=True)
class WatchOptions:
    """What ``evidence watch`` was asked to do."""

    store: str
    prometheus: PrometheusSource
    listen: str | None = None
    namespaces: tuple[str, ...] = ()  # empty: all namespaces
    selector: str | None = None
    kubeconfig: str | None = None
    context: str | None = None
    dump: Path | None = None
    tail: dt.timedelta = dt.timedelta(minutes=2)
    render: tuple[str, ...] = ()
    sign_key: Path | None = None
    notify: tuple[str, ...] = ()
    notify_format: str | None = None
    token: str | None = None
    journal: Path | None = None
    s3_endpoint: str | None = None
    cluster: str | None = None
    lease: str | None = None  # NAMESPACE/NAME of a coordination.k8s.io Lease: only its holder captures
    identity: str | None = None  # this replica's name in the Lease (default: host name and pid)
    lease_duration_s: int = 15
    lease_renew_s: float = 5.0
    # For tests and replays: the collector's clock, the watch timings.
    clock: Callable[[], dt.datetime] = field(default=lambda: dt.datetime.now(dt.UTC))
    watch_timeout_s: int = 240
    read_timeout_s: float = 90.0
    backoff_s: float = 1.0


@dataclass
class _Pending:
    ref: CanaryRef
    due: float
    why: str
    keys: list[str]
    warnings: list[str]


class Watcher:
    """The running watcher; ``start()`` then ``stop()``; ``run_forever()`` for the CLI."""

    def __init__(self, options: WatchOptions) -> None:
        from evidence.archive.store import is_store_url, open_store

        self.options = options
        if not is_store_url(options.store):
            try:
                Path(options.store).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UsageError(
                    f"--store {options.store}: {exc.strerror or exc}; give a writable folder or s3://BUCKET/PREFIX"
                ) from None
        self.store = open_store(options.store, endpoint=options.s3_endpoint)
        if options.journal is not None:
            root = options.journal
        elif is_store_url(options.store):
            raise UsageError("an s3:// --store needs --journal DIR: a local folder (e.g. the PVC) for the event journal")
        else:
            root = Path(options.store) / "journal"
        self.journal = Journal(root)
        self.tracker = Tracker(root / "state.json")
        self.metrics = Metrics(lambda: self.journal.bytes, lambda: self.journal.events)
        self.reports = root.parent / "reports" if options.journal is None else root / "reports"
        self.stopping = threading.Event()
        self._cv = threading.Condition()
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._threads: list[threading.Thread] = []
        self._listed = threading.Event()
        self.receiver: Any = None
        self.results: list[dict[str, Any]] = []
        self._kube: Any = None
        self._streams: set[Any] = set()  # open kubernetes.watch.Watch objects, stopped by stop()
        self.elector: Any = None
        if options.lease and options.dump is not None:
            raise UsageError("a Lease needs the API server: EVIDENCE_LEASE does not work with --from-dump")
        if options.sign_key is not None:
            from evidence.archive.sign import load_private_key

            load_private_key(options.sign_key)  # a bad key fails at start, not at the first capture
        from evidence.capture.notify import Notifier

        self.notifier = Notifier(options.notify, options.notify_format, self.metrics)

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> Watcher:
        if self.options.listen:
            from evidence.capture.receiver import Receiver

            self.receiver = Receiver(
                self.journal, self.metrics, self.on_webhook, self.options.listen, self.options.token, ready=self.ready
            ).start()
            host = self.options.listen.rpartition(":")[0] or "0.0.0.0"
            log.info(
                json.dumps({"msg": "listening", "address": f"{host}:{self.receiver.port}", "journal": str(self.journal.root)})
            )
        self._catch_up_journal()
        self._spawn(self._worker, "evidence-capture")
        if self.options.dump is None:
            from evidence.sources.kube import DEFAULT_FLAGGER_NAMESPACE, KubeSource

            # The deployed watcher's RBAC grants Flagger's pods in its namespace only (deploy/base/role-flagger.yaml).
            self._kube = KubeSource(
                kubeconfig=self.options.kubeconfig, context=self.options.context, flagger_namespace=DEFAULT_FLAGGER_NAMESPACE
            )
            if self.options.lease:
                import os
                import socket

                from evidence.capture.lease import LeaseElector

                me = self.options.identity or f"{socket.gethostname()}-{os.getpid()}"
                self.elector = LeaseElector(
                    self._kube._client, self.options.lease, me, self.options.lease_duration_s, self.options.lease_renew_s
                ).start()
            spaces: tuple[str | None, ...] = self.options.namespaces or (None,)
            for ns in spaces:
                for what in ("canaries", "core", "events.k8s.io"):
                    handle = self._on_canary if what == "canaries" else self._on_event
                    self._spawn(partial(self._loop, what, ns, handle), f"evidence-watch-{what}-{ns or 'all'}")
        else:
            self._listed.set()
        return self

    def ready(self) -> bool:
        """Listed, not stopping, and (with a Lease) the leader: the Service sends webhooks to the leader only."""
        leader = self.elector is None or self.elector.is_leader
        return leader and self._listed.is_set() and not self.stopping.is_set()

    def stop(self) -> None:
        self.stopping.set()
        with self._cv:
            self._cv.notify_all()
        if self.receiver is not None:
            self.receiver.stop()
        if self.elector is not None:
            self.elector.stop()
        for stream in list(self._streams):
            stream.stop()
        for t in self._threads:
            t.join(timeout=10)
        self.notifier.close()
        self.journal.close()
        if self._kube is not None:
            self._kube.close()

    def run_forever(self) -> None:
        self.start()
        try:
            while not self.stopping.wait(30):
                self.tracker.heartbeat()
        finally:
            self.stop()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    # -- triggers -----------------------------------------------------------------------------

    def on_webhook(self, namespace: str, name: str, phase: str, checksum: str, why: str, warnings: tuple[str, ...] = ()) -> None:
        """A terminal post-rollout webhook arrived (called from a request thread: only queues)."""
        key = ("webhook", f"{namespace}/{name}", checksum, phase)
        if self.tracker.offer(key):
            self.queue(CanaryRef(namespace, name), why, [self.tracker.text(key)], list(warnings))

    def _catch_up_journal(self) -> None:
        """Queue the terminal post-rollout webhooks journalled but never captured (a crash after the 202)."""
        for ns, name in self.journal.canaries():
            for r in self.journal.records(ns, name, include_done=False):
                phase = r.payload.get("phase")
                if r.source == "webhook:post-rollout" and phase in TERMINAL:
                    note = (
                        f"captured on start-up from the journal: the post-rollout webhook ({phase}) was received at "
                        f"{rfc3339(r.received_at)} but not captured before the watcher stopped"
                    )
                    self.on_webhook(ns, name, str(phase), str(r.payload.get("checksum") or ""), "journal on start-up", (note,))

    def queue(self, ref: CanaryRef, why: str, keys: list[str], warnings: list[str], delay: float | None = None) -> None:
        """Capture ``ref`` after the tail; a canary already queued keeps its earlier due time."""
        due = time.monotonic() + (self.options.tail.total_seconds() if delay is None else delay)
        with self._cv:
            p = self._pending.get((ref.namespace, ref.name))
            if p is None:
                self._pending[(ref.namespace, ref.name)] = _Pending(ref, due, why, list(keys), list(warnings))
            else:
                p.keys.extend(keys)
                p.warnings.extend(w for w in warnings if w not in p.warnings)
            self._cv.notify_all()

    def _on_canary(self, kind: str, obj: dict[str, Any]) -> None:
        key = run_key(obj)
        if key is None or not self.tracker.offer(key):
            return
        meta = obj.get("metadata") or {}
        ref = CanaryRef(str(meta.get("namespace")), str(meta.get("name")))
        warnings: list[str] = []
        if kind == "LISTED":
            warnings.append(self._catch_up_warning(obj))
        self.queue(ref, f"phase {key[3]}", [self.tracker.text(key)], [w for w in warnings if w])

    def _catch_up_warning(self, obj: dict[str, Any]) -> str:
        from evidence.canary import normalise_canary

        status = normalise_canary(obj)[0].get("status") or {}
        ended = status.get("lastTransitionTime")
        seen = self.tracker.last_seen
        since = f"since {rfc3339(dt.datetime.fromtimestamp(seen, dt.UTC))}" if seen else "(no earlier run recorded)"
        return (
            f"captured on start-up, after the rollout ended ({ended or 'time unknown'}) while the watcher was not running {since}: "
            "webhook deliveries of that period were not journalled, and Kubernetes Events older than the API server's "
            "--event-ttl (1 h by default) may have expired; the events table may lack them"
        )

    def _on_event(self, kind: str, obj: dict[str, Any]) -> None:
        if kind in ("DELETED", "BOOKMARK"):
            return
        core = "involvedObject" in obj
        about = obj.get("involvedObject" if core else "regarding") or {}
        if about.get("kind") != "Canary":
            return
        source = "kube:events" if core else "kube:events.k8s.io"
        self.journal.append(source, str(about.get("namespace")), str(about.get("name")), obj)

    # -- the watch loop -----------------------------------------------------------------------

    def _calls(self, what: str, namespace: str | None) -> tuple[Callable[..., Any], dict[str, Any], str]:
        from kubernetes import client

        api = self._kube._client
        kw: dict[str, Any] = {}
        if what == "canaries":
            custom = client.CustomObjectsApi(api)
            g, v, p = CANARIES
            if self.options.selector:
                kw["label_selector"] = self.options.selector
            if namespace:
                return (
                    custom.list_namespaced_custom_object,
                    dict(kw, group=g, version=v, namespace=namespace, plural=p),
                    "flagger.app/v1beta1",
                )
            return custom.list_cluster_custom_object, dict(kw, group=g, version=v, plural=p), "flagger.app/v1beta1"
        if what == "core":
            core = client.CoreV1Api(api)
            kw["field_selector"] = "involvedObject.kind=Canary"
            if namespace:
                return core.list_namespaced_event, dict(kw, namespace=namespace), "v1"
            return core.list_event_for_all_namespaces, kw, "v1"
        ev = client.EventsV1Api(api)
        kw["field_selector"] = "regarding.kind=Canary"
        if namespace:
            return ev.list_namespaced_event, dict(kw, namespace=namespace), "events.k8s.io/v1"
        return ev.list_event_for_all_namespaces, kw, "events.k8s.io/v1"

    def _loop(self, what: str, namespace: str | None, handle: Callable[[str, dict[str, Any]], None]) -> None:
        """List, then watch from the list's resourceVersion; re-list on 410; back off on errors."""
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        fn, kw, api_version = self._calls(what, namespace)
        kind = "Canary" if what == "canaries" else "Event"
        rv: str | None = None
        backoff = self.options.backoff_s
        label = what if namespace is None else f"{what}/{namespace}"
        while not self.stopping.is_set():
            try:
                if rv is None:
                    resp = fn(**kw, _preload_content=False, _request_timeout=(10, self.options.read_timeout_s))
                    body = json.loads(resp.data)
                    rv = str(body["metadata"]["resourceVersion"])
                    for item in body.get("items") or []:
                        self._safely(handle, "LISTED", {"apiVersion": api_version, "kind": kind, **item})
                    if what == "canaries":
                        self._listed.set()
                w = watch.Watch()  # type: ignore[no-untyped-call]
                self._streams.add(w)
                for ev in w.stream(  # type: ignore[no-untyped-call]
                    fn,
                    **kw,
                    resource_version=rv,
                    allow_watch_bookmarks=True,
                    timeout_seconds=self.options.watch_timeout_s,
                    _request_timeout=(10, self.options.read_timeout_s),
                ):
                    if self.stopping.is_set():
                        w.stop()  # type: ignore[no-untyped-call]
                        return
                    obj = ev.get("raw_object") or ev.get("object")
                    if ev.get("type") != "BOOKMARK" and isinstance(obj, dict):
                        self._safely(handle, str(ev.get("type")), {"apiVersion": api_version, "kind": kind, **obj})
                self._streams.discard(w)
                rv = w.resource_version or rv
                backoff = self.options.backoff_s
                self.metrics.restart(label)
            except ApiException as exc:
                if self.stopping.is_set():
                    return
                self.metrics.restart(label)
                if exc.status == 410:
                    rv = None  # the remembered version is gone: list again
                    continue
                log.warning(json.dumps({"msg": "watch failed", "resource": label, "status": exc.status, "retry_in_s": backoff}))
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, 30.0)
            except (HTTPError, OSError, ValueError, KeyError) as exc:
                if self.stopping.is_set():
                    return
                self.metrics.restart(label)
                log.warning(
                    json.dumps({"msg": "watch failed", "resource": label, "error": str(exc)[:200], "retry_in_s": backoff})
                )
                self.stopping.wait(backoff)
                backoff = min(backoff * 2, 30.0)

    def _safely(self, handle: Callable[[str, dict[str, Any]], None], kind: str, obj: dict[str, Any]) -> None:
        try:
            handle(kind, obj)
        except (EvidenceError, KeyError, TypeError, ValueError, AttributeError) as exc:
            meta: dict[str, Any] = obj["metadata"] if isinstance(obj.get("metadata"), dict) else {}
            log.warning(json.dumps({"msg": "object skipped", "name": str(meta.get("name")), "error": str(exc)[:200]}))

    # -- the capture worker -------------------------------------------------------------------

    def _worker(self) -> None:
        while not self.stopping.is_set():
            with self._cv:
                now = time.monotonic()
                follower = self.elector is not None and not self.elector.is_leader
                due = [] if follower else [p for p in self._pending.values() if p.due <= now]
                if not due:
                    wait = min((p.due for p in self._pending.values()), default=now + 1.0) - now
                    self._cv.wait(timeout=max(0.01, min(wait, 1.0)))
                    continue
                p = min(due, key=lambda x: x.due)
                del self._pending[(p.ref.namespace, p.ref.name)]
            self.capture(p)

    def _source(self) -> ClusterSource:
        if self.options.dump is not None:
            from evidence.sources.dump import DumpSource

            return DumpSource(self.options.dump)  # re-read at each capture
        return self._kube  # type: ignore[no-any-return]

    def capture(self, p: _Pending) -> dict[str, Any]:
        """Collect, sign, store, render and notify one rollout; return the JSON log record."""
        from evidence.archive.store import collect_into_store
        from evidence.collect import CollectOptions, collect_rollout
        from evidence.sources.journal import JournalSource

        began = time.monotonic()
        started_at = dt.datetime.now(dt.UTC)
        rec: dict[str, Any] = {"msg": "capture", "canary": str(p.ref), "trigger": p.why}
        staged: dict[str, Any] = {}
        try:
            source = JournalSource(self._source(), self.journal, p.warnings)
            options = CollectOptions(out=Path("."), tail=self.options.tail, cluster=self.options.cluster, allow_partial=True)

            def collect(tmp: Path) -> Path:
                path = collect_rollout(
                    p.ref, source, self.options.prometheus, replace(options, out=tmp), clock=self.options.clock
                )
                if self.options.sign_key is not None:
                    from evidence.archive.sign import sign_bundle

                    sign_bundle(path, self.options.sign_key)
                staged.update(self._evaluate_and_render(path, tmp))
                return path

            result = collect_into_store(self.store, collect)
            outcome = "stored" if result.created else "duplicate"
            rec.update(outcome=outcome, location=result.location, **{k: v for k, v in staged.items() if k != "reports_tmp"})
            if result.created and staged.get("reports_tmp"):
                dest = self.reports / str(staged["bundle_id"])
                dest.parent.mkdir(parents=True, exist_ok=True)
                if not dest.exists():
                    shutil.move(str(staged["reports_tmp"]), dest)
                rec["reports"] = sorted(str(x) for x in dest.iterdir())
            self.tracker.finish(p.keys, result.location)
            self.journal.compact(p.ref.namespace, p.ref.name, started_at, str(staged.get("bundle_id") or "unknown"))
            if result.created:
                self.notifier.send(dict(rec))
        except (EvidenceError, OSError, ValueError, KeyError, TypeError) as exc:
            # One rollout's failure (a source, the store, a malformed object) must not end the worker.
            rec.update(outcome="failed", error=f"{type(exc).__name__}: {exc}"[:500])
            self.tracker.release(p.keys)  # a later terminal event or webhook may try again
        finally:
            tmp = staged.get("reports_tmp")
            if tmp and Path(tmp).exists():
                shutil.rmtree(tmp, ignore_errors=True)
        seconds = time.monotonic() - began
        rec["seconds"] = round(seconds, 3)
        self.metrics.capture(str(rec["outcome"]), seconds, time.time())
        log.info(json.dumps(rec, ensure_ascii=True))
        self.results.append(rec)
        return rec

    def _evaluate_and_render(self, bundle: Path, tmp: Path) -> dict[str, Any]:
        from evidence.bundle import open_bundle
        from evidence.capture.notify import decision
        from evidence.evaluate import evaluate_bundle
        from evidence.policy import default_policy

        ev = evaluate_bundle(open_bundle(bundle), default_policy())
        out: dict[str, Any] = decision(ev)
        if self.options.render:
            from evidence.render import render_bundle

            reports = Path(tempfile.mkdtemp(prefix="evidence-reports-"))
            render_bundle(bundle, list(self.options.render), reports)
            out["reports_tmp"] = reports
        return out


def run_watch(options: WatchOptions) -> None:
    """Run the watcher until SIGTERM or Ctrl-C."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    Watcher(options).run_forever()


def options_from_cli(
    store: str,
    prometheus_url: str,
    listen: str | None,
    namespaces: tuple[str, ...],
    all_namespaces: bool,
    selector: str | None,
    kubeconfig: str | None,
    context: str | None,
    dump: str | None,
    tail: str,
    render_formats: str,
    sign_key: str | None,
    notify: tuple[str, ...],
    notify_format: str | None,
    token_file: str | None,
    journal: str | None,
    s3_endpoint: str | None,
) -> WatchOptions:
    """Check the command line's values and return the options; raise UsageError naming the option."""
    import os

    from evidence.model import parse_user_duration
    from evidence.render import FORMATS
    from evidence.sources.prometheus import read_token_file

    if all_namespaces and namespaces:
        raise UsageError("-A watches every namespace: drop -n, or drop -A to watch only those")
    if dump and (kubeconfig or context):
        raise UsageError("--from-dump reads a folder: drop --kubeconfig/--context, or drop --from-dump to watch the cluster")
    if dump and not listen:
        raise UsageError("--from-dump captures on post-rollout webhooks: add --listen HOST:PORT")
    tail_s = parse_user_duration(tail, "--tail").total_seconds()
    formats = tuple(f.strip() for f in render_formats.split(",") if f.strip())
    for f in formats:
        if f not in FORMATS:
            raise UsageError(f"--render {f!r}: choose from {', '.join(FORMATS)} (comma-separated)")
    return WatchOptions(
        store=store,
        prometheus=PrometheusSource(prometheus_url),
        listen=listen,
        namespaces=tuple(namespaces),
        selector=selector,
        kubeconfig=kubeconfig,
        context=context,
        dump=Path(dump) if dump else None,
        tail=dt.timedelta(seconds=tail_s),
        render=formats,
        sign_key=Path(sign_key) if sign_key else None,
        notify=tuple(notify),
        notify_format=notify_format,
        token=read_token_file(token_file) if token_file else None,
        journal=Path(journal) if journal else None,
        s3_endpoint=s3_endpoint,
        lease=os.environ.get("EVIDENCE_LEASE") or None,
    )
