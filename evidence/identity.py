"""Which rollout a bundle is of: one id per rollout, so the same rollout collected twice is one bundle.

A rollout is named by the cluster, the canary's namespace and name, when the rollout started
(to the second: Kubernetes Events carry seconds, Flagger's log and webhook milliseconds, so
the same start read from different sources agrees only to the second) and Flagger's
``status.lastAppliedSpec`` (the hash of the target's pod template that the rollout rolled
out).  An explicit window without a rollout start is named by the window instead.

The bundle id is the first 32 hex digits of the rollout id: collecting the same rollout again
gives the same id, so a store can refuse a second copy (or keep it as a successor).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json

UNKNOWN_CLUSTER = "unknown"


def rollout_id(
    cluster: str,
    namespace: str,
    canary: str,
    rollout_start: dt.datetime | None,
    last_applied_spec: str | None,
    window: tuple[dt.datetime, dt.datetime] | None = None,
) -> str:
    """Return the rollout's id: the sha256 (hex) of its canonical description."""

    def second(t: dt.datetime) -> str:
        return t.astimezone(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")

    key: dict[str, str | None] = {
        "cluster": cluster,
        "namespace": namespace,
        "canary": canary,
        "rollout_start": second(rollout_start) if rollout_start is not None else None,
        "last_applied_spec": last_applied_spec or None,
    }
    if rollout_start is None and window is not None:
        key["window"] = f"{second(window[0])}/{second(window[1])}"
    text = json.dumps(key, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def bundle_id_for(rid: str) -> str:
    """Return the bundle id of a rollout id."""
    return rid[:32]
