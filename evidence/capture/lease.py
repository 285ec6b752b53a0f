"""Leader election with a coordination.k8s.io/v1 Lease, for more than one watcher replica.

``LeaseElector(kube.lease_api(), "evidence/evidence-watch", identity)`` tries every ``renew_s`` to
hold the Lease: it creates it when absent, renews it while it holds it, and takes it over once
the holder has not renewed for ``leaseDurationSeconds``.  Updates carry the Lease's
``resourceVersion``, so of two replicas racing only one wins (the other gets 409 Conflict).
Only the leader captures and reports ready on ``/readyz``, so the Service sends Flagger's
webhooks to the leader alone and its journal has them all.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from typing import Any

from evidence.errors import UsageError
from evidence.model import parse_stored_time

log = logging.getLogger("evidence.capture")


def _micro(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseElector:
    """Holds (or waits for) one Lease; ``is_leader`` says whether this replica holds it now."""

    def __init__(self, api: Any, lease: str, identity: str, duration_s: int = 15, renew_s: float = 5.0) -> None:
        ns, sep, name = lease.partition("/")
        if not sep or not ns or not name:
            raise UsageError(f"EVIDENCE_LEASE {lease!r}: write NAMESPACE/NAME, e.g. evidence/evidence-watch")
        self.api: Any = api  # a CoordinationV1Api (KubeSource.lease_api()); raw JSON in and out (_preload_content=False)
        self.namespace, self.name, self.identity = ns, name, identity
        self.duration_s, self.renew_s = duration_s, renew_s
        self._leader = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="evidence-lease", daemon=True)

    @property
    def is_leader(self) -> bool:
        return self._leader.is_set()

    def start(self) -> LeaseElector:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._leader.clear()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.try_once()
            self._stop.wait(self.renew_s)

    def try_once(self, now: dt.datetime | None = None) -> bool:
        """Create, renew or take over the Lease once; return whether this replica holds it."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        now = now or dt.datetime.now(dt.UTC)
        spec = {"holderIdentity": self.identity, "leaseDurationSeconds": self.duration_s, "renewTime": _micro(now)}
        try:
            try:
                resp = self.api.read_namespaced_lease(self.name, self.namespace, _preload_content=False, _request_timeout=(5, 10))
                current = json.loads(resp.data)
            except ApiException as exc:
                if exc.status != 404:
                    raise
                body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                        "metadata": {"name": self.name, "namespace": self.namespace},
                        "spec": dict(spec, acquireTime=_micro(now), leaseTransitions=0)}  # fmt: skip
                self.api.create_namespaced_lease(self.namespace, body, _preload_content=False, _request_timeout=(5, 10))
                return self._set(True)
            held = current.get("spec") or {}
            renewed = parse_stored_time(held.get("renewTime"))
            expired = renewed is None or now - renewed > dt.timedelta(
                seconds=float(held.get("leaseDurationSeconds") or self.duration_s)
            )
            mine = held.get("holderIdentity") == self.identity
            if not mine and not expired:
                return self._set(False)
            new_spec = dict(held, **spec)
            if not mine:
                new_spec["acquireTime"] = _micro(now)
                new_spec["leaseTransitions"] = int(held.get("leaseTransitions") or 0) + 1
            current["spec"] = new_spec
            self.api.replace_namespaced_lease(
                self.name, self.namespace, current, _preload_content=False, _request_timeout=(5, 10)
            )
            return self._set(True)
        except ApiException as exc:
            if exc.status != 409:
                log.warning(json.dumps({"msg": "lease failed", "lease": f"{self.namespace}/{self.name}", "status": exc.status}))
            return self._set(False)
        except (HTTPError, OSError, ValueError) as exc:
            log.warning(json.dumps({"msg": "lease failed", "lease": f"{self.namespace}/{self.name}", "error": str(exc)[:200]}))
            return self._set(False)

    def _set(self, leader: bool) -> bool:
        if leader != self._leader.is_set():
            log.info(json.dumps({"msg": "lease", "leader": leader, "identity": self.identity}))
        (self._leader.set if leader else self._leader.clear)()
        return leader
