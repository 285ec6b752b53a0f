"""``evidence watch``: capture every rollout once, unattended.

Three kinds of threads feed one capture worker:

* the receiver (``receiver.py``) journals Flagger's webhooks and queues a terminal post-rollout;
* a Canary watch per namespace (or one for all), list-then-watch (``stream.py``);
* a watch of Events (core/v1 and events.k8s.io/v1) about Canaries, journalled at once, since
  the API server aggregates and expires them.

A terminal phase (or post-rollout webhook) queues the canary; after ``tail`` the worker collects
(the journal merged in), signs, puts the bundle into the store (conditional create), renders the
reports (into the store beside the bundle, and the local reports folder), logs one JSON line and
hands the decision to the notifiers.  A failed capture is tried again on a timer with backoff,
``attempts`` times in all.  On start the worker first catches up: terminal post-rollout webhooks
journalled but never captured, Canaries already in a terminal phase whose run is not recorded
as captured, and the rollouts Flagger's metrics show ended while the watcher was down
(``catchup.py``), each with a manifest warning naming the evidence already lost.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evidence.capture.catchup import status_warning
from evidence.capture.journal import Journal
from evidence.capture.metrics import Metrics
from evidence.capture.options import WatchOptions
from evidence.capture.tracker import TERMINAL, Tracker, run_key
from evidence.errors import EvidenceError, UsageError
from evidence.model import CanaryRef, rfc3339
from evidence.sources import ClusterSource

__all__ = ["WatchOptions", "Watcher", "run_watch"]

log = logging.getLogger("evidence.capture")
Window = tuple[dt.datetime, dt.datetime]
#: How long captures wait for the first list of Canaries (the catch-up needs it) before going ahead.
LIST_WAIT_S = 60.0


@dataclass
class Pending:
    """A rollout waiting for its capture (or for its next attempt)."""

    ref: CanaryRef
    due: float
    why: str
    keys: list[str]
    warnings: list[str]
    window: Window | None = None  # an explicit window: a rollout the canary's status no longer shows
    attempt: int = 1
    errors: list[str] = field(default_factory=list)
    stored: bool = False  # an earlier attempt created the bundle (then failed): this one reports it stored


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
        self.remote_reports = is_store_url(options.store)  # a folder store's reports stay in the local reports folder
        if options.journal is not None:
            root = options.journal
        elif is_store_url(options.store):
            raise UsageError("an s3:// --store needs --journal DIR: a local folder (e.g. the PVC) for the event journal")
        else:
            root = Path(options.store) / "journal"
        self.journal = Journal(root)
        self.tracker = Tracker(root / "state.json", clock=lambda: options.clock().timestamp())
        self.down_since = self.tracker.last_seen  # when the previous watcher was last alive (None: never ran)
        self.metrics = Metrics(lambda: self.journal.bytes, lambda: self.journal.events)
        self.reports = root.parent / "reports" if options.journal is None else root / "reports"
        self.stopping = threading.Event()
        self._cv = threading.Condition()
        self._pending: dict[tuple[str, str, str], Pending] = {}
        self._threads: list[threading.Thread] = []
        self._lists: list[threading.Event] = []  # one per Canary watch: set once it has listed
        self._canaries: dict[tuple[str, str], dict[str, Any]] = {}  # the Canaries listed on start
        self._caught_up = options.dump is not None  # Flagger's metrics are read once the Canaries are listed
        self._started = time.monotonic()
        self._catch_up_attempt = 0
        self._catch_up_at: float | None = None  # when the catch-up from Flagger's metrics is tried again
        self.receiver: Any = None
        self.results: list[dict[str, Any]] = []
        self._kube: Any = None
        self._watches: list[Any] = []
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
        if self.options.dump is None:
            self._start_kube()
        self._spawn(self._worker, "evidence-capture")
        return self

    def _start_kube(self) -> None:
        from evidence.capture.stream import ListWatch
        from evidence.sources.kube import KubeSource

        o = self.options
        self._kube = KubeSource(kubeconfig=o.kubeconfig, context=o.context, flagger_namespace=o.flagger_namespace)
        if o.lease:
            import os
            import socket

            from evidence.capture.lease import LeaseElector

            me = o.identity or f"{socket.gethostname()}-{os.getpid()}"
            self.elector = LeaseElector(self._kube.lease_api(), o.lease, me, o.lease_duration_s, o.lease_renew_s).start()
        for ns in o.namespaces or (None,):
            for resource in ("canaries", "events", "events.k8s.io"):
                listed = threading.Event() if resource == "canaries" else None
                self._lists += [listed] if listed else []
                lw = ListWatch(
                    self._kube, resource, ns, self._on_canary if listed else self._on_event, self.stopping, self.metrics,
                    selector=o.selector if listed else None, listed=listed, watch_timeout_s=o.watch_timeout_s,
                    read_timeout_s=o.read_timeout_s, backoff_s=o.backoff_s,
                )  # fmt: skip
                self._watches.append(lw)
                self._spawn(lw.run, f"evidence-watch-{resource}-{ns or 'all'}")

    def ready(self) -> bool:
        """Listed, not stopping, and (with a Lease) the leader: the Service sends webhooks to the leader only."""
        leader = self.elector is None or self.elector.is_leader
        return leader and all(e.is_set() for e in self._lists) and not self.stopping.is_set()

    def stop(self) -> None:
        self.stopping.set()
        with self._cv:
            self._cv.notify_all()
        if self.receiver is not None:
            self.receiver.stop()
        if self.elector is not None:
            self.elector.stop()
        for lw in self._watches:
            lw.stop()
        for t in self._threads:
            t.join(timeout=10)
        self.tracker.heartbeat()  # the next start knows since when nobody watched
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

    def _catch_up_metrics(self) -> None:
        """Queue the rollouts Flagger's metrics show ended while no watcher ran (once, after the first lists)."""
        from evidence.canary import normalise_canary
        from evidence.capture.catchup import capture_window, ended_runs, lost_evidence, same_run
        from evidence.errors import PrometheusError

        if self.down_since is None:
            return  # the first start: nothing says when a watcher last ran
        since = dt.datetime.fromtimestamp(self.down_since, dt.UTC)
        now = self.options.clock()
        try:
            runs = ended_runs(self.options.prometheus, since, now, self.options.namespaces)
        except PrometheusError as exc:
            self._catch_up_attempt += 1
            again = self._catch_up_attempt < self.options.attempts
            delay = min(self.options.retry_backoff_s * 2 ** (self._catch_up_attempt - 1), self.options.retry_max_s)
            self._catch_up_at = time.monotonic() + delay if again else None
            log.warning(json.dumps({"msg": "catch-up from Flagger's metrics failed", "error": str(exc)[:300],
                                    "attempt": self._catch_up_attempt, "retry_in_s": round(delay, 3) if again else None}))  # fmt: skip
            return
        self._catch_up_at = None
        for run in runs:
            if not self.tracker.offer(run.key):
                continue
            canary = next((c for (ns, _), c in self._canaries.items() if ns == run.namespace and _target(c) == run.target), None)
            if canary is None:
                log.info(json.dumps({"msg": "ended rollout without a watched Canary", "namespace": run.namespace,
                                     "target": run.target, "ended": rfc3339(run.ended), "phase": run.phase}))  # fmt: skip
                continue
            ref = CanaryRef(run.namespace, str(canary["metadata"]["name"]))
            note = lost_evidence(run, since, now, len(self.journal.records(ref.namespace, ref.name, include_done=False)))
            key = [self.tracker.text(run.key)]
            if same_run(run, normalise_canary(canary)[0].get("status") or {}):
                self.queue(ref, "Flagger's metrics on start-up", key, [note])
            else:
                from evidence.collect import DEFAULT_LEAD, DEFAULT_TAIL

                window = capture_window(run, runs, since, now, DEFAULT_LEAD, max(DEFAULT_TAIL, self.options.tail))
                self.queue(ref, "Flagger's metrics on start-up", key, [note], window=window)

    def queue(
        self, ref: CanaryRef, why: str, keys: list[str], warnings: list[str], delay: float | None = None,
        window: Window | None = None,
    ) -> None:  # fmt: skip
        """Capture ``ref`` after the tail; a canary already queued keeps its earlier due time."""
        due = time.monotonic() + (self.options.tail.total_seconds() if delay is None else delay)
        slot = _slot(ref, window)
        with self._cv:
            p = self._pending.get(slot)
            if p is None:
                self._pending[slot] = Pending(ref, due, why, list(keys), list(warnings), window)
            else:
                p.keys.extend(keys)
                p.warnings.extend(w for w in warnings if w not in p.warnings)
            self._cv.notify_all()

    def _on_canary(self, kind: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        ref = CanaryRef(str(meta.get("namespace")), str(meta.get("name")))
        if kind == "LISTED":
            self._canaries[(ref.namespace, ref.name)] = obj
        key = run_key(obj)
        if key is None or not self.tracker.offer(key):
            return
        warnings = [status_warning(obj, self.down_since)] if kind == "LISTED" else []
        self.queue(ref, f"phase {key[3]}", [self.tracker.text(key)], warnings)

    def _on_event(self, kind: str, obj: dict[str, Any]) -> None:
        if kind in ("DELETED", "BOOKMARK"):
            return
        core = "involvedObject" in obj
        about = obj.get("involvedObject" if core else "regarding") or {}
        if about.get("kind") != "Canary":
            return
        source = "kube:events" if core else "kube:events.k8s.io"
        self.journal.append(source, str(about.get("namespace")), str(about.get("name")), obj)

    # -- the capture worker -------------------------------------------------------------------

    def _worker(self) -> None:
        while not self.stopping.is_set():
            if not self._caught_up and all(e.is_set() for e in self._lists):
                self._caught_up = True
                self._catch_up_metrics()
            elif self._catch_up_at is not None and time.monotonic() >= self._catch_up_at:
                self._catch_up_metrics()
            elif not self._caught_up and time.monotonic() - self._started > LIST_WAIT_S:
                self._caught_up = True  # the API server does not answer: capture what the webhooks queued
                log.warning(json.dumps({"msg": "catch-up from Flagger's metrics skipped: the Canaries could not be listed"}))
            with self._cv:
                now = time.monotonic()
                follower = self.elector is not None and not self.elector.is_leader
                due = [] if follower or not self._caught_up else [p for p in self._pending.values() if p.due <= now]
                if not due:
                    wait = min((p.due for p in self._pending.values()), default=now + 1.0) - now
                    self._cv.wait(timeout=max(0.01, min(wait, 1.0 if self._caught_up else 0.05)))
                    continue
                p = min(due, key=lambda x: x.due)
                del self._pending[next(k for k, v in self._pending.items() if v is p)]
            self.capture(p)

    def cluster_source(self) -> ClusterSource:
        """Return where the Kubernetes objects come from: the API server, or the dump re-read now."""
        if self.options.dump is not None:
            from evidence.sources.dump import DumpSource

            return DumpSource(self.options.dump)  # re-read at each capture
        return self._kube  # type: ignore[no-any-return]

    def capture(self, p: Pending) -> dict[str, Any]:
        """Collect, sign, store, render and notify one rollout; return the JSON log record."""
        from evidence.capture.run import capture_once

        began = time.monotonic()
        rec: dict[str, Any] = {"msg": "capture", "canary": str(p.ref), "trigger": p.why, "attempt": p.attempt}
        try:
            rec.update(capture_once(self, p))
            if rec["outcome"] == "duplicate" and p.stored:
                rec["outcome"] = "stored"  # the bundle of an earlier attempt of this capture: counted, notified once
            self.tracker.finish(p.keys, str(rec["location"]))
            if rec["outcome"] == "stored":
                self.notifier.send(dict(rec))
        except (EvidenceError, OSError, ValueError, KeyError, TypeError) as exc:
            # One rollout's failure (a source, the store, a malformed object) must not end the worker.
            error = f"{type(exc).__name__}: {exc}"[:500]
            rec.update(error=error, attempts=self.options.attempts)
            if p.attempt < self.options.attempts and not self.stopping.is_set():
                delay = min(self.options.retry_backoff_s * 2 ** (p.attempt - 1), self.options.retry_max_s)
                rec.update(outcome="retrying", retry_in_s=round(delay, 3))
                self._retry(p, delay, error)
            else:
                rec["outcome"] = "failed"
                self.tracker.release(p.keys)  # a later terminal event or webhook may try again
        seconds = time.monotonic() - began
        rec["seconds"] = round(seconds, 3)
        self.metrics.capture(str(rec["outcome"]), seconds, time.time())
        log.info(json.dumps(rec, ensure_ascii=True))
        self.results.append(rec)
        return rec

    def _retry(self, p: Pending, delay: float, error: str) -> None:
        """Queue the next attempt of a failed capture (its keys stay offered: no second capture meanwhile)."""
        slot = _slot(p.ref, p.window)
        with self._cv:
            again = Pending(p.ref, time.monotonic() + delay, p.why, p.keys, p.warnings, p.window, p.attempt + 1,
                            [*p.errors, error], p.stored)  # fmt: skip
            q = self._pending.setdefault(slot, again)
            if q is not again:  # a new trigger of the canary arrived meanwhile: one capture covers both
                q.keys.extend(k for k in p.keys if k not in q.keys)
                q.warnings.extend(w for w in p.warnings if w not in q.warnings)
                q.attempt, q.stored = max(q.attempt, again.attempt), q.stored or p.stored
            self._cv.notify_all()


def _target(canary: dict[str, Any]) -> str | None:
    """Return the Canary's targetRef name (what Flagger's metrics call ``name``); None for an unreadable object."""
    from evidence.canary import CanarySpec

    try:
        return CanarySpec.from_object(canary).target
    except (EvidenceError, KeyError, TypeError, ValueError, AttributeError):
        return None


def _slot(ref: CanaryRef, window: Window | None) -> tuple[str, str, str]:
    """Return the pending queue's key: one capture per canary, and per explicit window."""
    return (ref.namespace, ref.name, str(rfc3339(window[0])) if window else "")


def run_watch(options: WatchOptions) -> None:
    """Run the watcher until SIGTERM or Ctrl-C."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    Watcher(options).run_forever()
