"""The list-then-watch loop of one resource (Canaries, or Events about them), as the reference's §2.5 lays it out.

List, keep the list's ``resourceVersion``; watch from it with ``allowWatchBookmarks``, a
server-side ``timeoutSeconds`` and a ``(connect, read)`` client timeout (a scalar one would kill
a healthy watch); when the stream ends, watch again from the last version seen; on 410 Gone list
again (the client's own 410 retry reuses the expired version); back off exponentially on API
errors.  One bad object is logged and skipped, never the end of the loop.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from evidence.capture.metrics import Metrics
from evidence.errors import EvidenceError
from evidence.sources.kube import KubeSource

log = logging.getLogger("evidence.capture")
Handler = Callable[[str, dict[str, Any]], None]


@dataclass
class ListWatch:
    """One resource's loop; ``run()`` returns once ``stopping`` is set."""

    kube: KubeSource
    resource: str  # canaries | events | events.k8s.io (KubeSource.list_call)
    namespace: str | None
    handle: Handler
    stopping: threading.Event
    metrics: Metrics
    selector: str | None = None
    listed: threading.Event | None = None  # set after the first complete list
    watch_timeout_s: int = 240
    read_timeout_s: float = 90.0
    backoff_s: float = 1.0
    streams: set[Any] = field(default_factory=set)  # open kubernetes.watch.Watch objects, stopped by stop()

    @property
    def label(self) -> str:
        return self.resource if self.namespace is None else f"{self.resource}/{self.namespace}"

    def stop(self) -> None:
        for stream in list(self.streams):
            stream.stop()

    def run(self) -> None:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        fn, kw, api_version = self.kube.list_call(self.resource, self.namespace, self.selector)
        kind = "Canary" if self.resource == "canaries" else "Event"
        rv: str | None = None
        backoff = self.backoff_s
        while not self.stopping.is_set():
            try:
                if rv is None:
                    rv = self._list(fn, kw, api_version, kind)
                rv = self._watch(fn, kw, api_version, kind, rv)
                if rv is None:
                    return  # stopping
                backoff = self.backoff_s
                self.metrics.restart(self.label)
            except ApiException as exc:
                if self.stopping.is_set():
                    return
                self.metrics.restart(self.label)
                if exc.status == 410:
                    rv = None  # the remembered version is gone: list again
                    continue
                self._wait(backoff, {"status": exc.status})
                backoff = min(backoff * 2, 30.0)
            except (HTTPError, OSError, ValueError, KeyError) as exc:
                if self.stopping.is_set():
                    return
                self.metrics.restart(self.label)
                self._wait(backoff, {"error": str(exc)[:200]})
                backoff = min(backoff * 2, 30.0)

    def _list(self, fn: Callable[..., Any], kw: dict[str, Any], api_version: str, kind: str) -> str:
        resp = fn(**kw, _preload_content=False, _request_timeout=(10, self.read_timeout_s))
        body = json.loads(resp.data)
        rv = str(body["metadata"]["resourceVersion"])
        for item in body.get("items") or []:
            self._safely("LISTED", {"apiVersion": api_version, "kind": kind, **item})
        if self.listed is not None:
            self.listed.set()
        return rv

    def _watch(self, fn: Callable[..., Any], kw: dict[str, Any], api_version: str, kind: str, rv: str) -> str | None:
        """Watch from ``rv`` until the server ends the stream; return the last version seen (None: stopping)."""
        from kubernetes import watch

        w = watch.Watch()  # type: ignore[no-untyped-call]
        self.streams.add(w)
        try:
            for ev in w.stream(  # type: ignore[no-untyped-call]
                fn,
                **kw,
                resource_version=rv,
                allow_watch_bookmarks=True,
                timeout_seconds=self.watch_timeout_s,
                _request_timeout=(10, self.read_timeout_s),
            ):
                if self.stopping.is_set():
                    w.stop()  # type: ignore[no-untyped-call]
                    return None
                obj = ev.get("raw_object") or ev.get("object")
                if ev.get("type") != "BOOKMARK" and isinstance(obj, dict):
                    self._safely(str(ev.get("type")), {"apiVersion": api_version, "kind": kind, **obj})
        finally:
            self.streams.discard(w)
        return str(w.resource_version or rv)

    def _wait(self, backoff: float, why: dict[str, Any]) -> None:
        log.warning(json.dumps({"msg": "watch failed", "resource": self.label, **why, "retry_in_s": backoff}))
        self.stopping.wait(backoff)

    def _safely(self, kind: str, obj: dict[str, Any]) -> None:
        try:
            self.handle(kind, obj)
        except (EvidenceError, KeyError, TypeError, ValueError, AttributeError) as exc:
            meta: dict[str, Any] = obj["metadata"] if isinstance(obj.get("metadata"), dict) else {}
            log.warning(json.dumps({"msg": "object skipped", "name": str(meta.get("name")), "error": str(exc)[:200]}))
