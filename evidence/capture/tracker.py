"""Which rollouts have ended and still need a bundle: terminal-state detection, once per rollout.

A run is keyed by what the Canary status says about it: ``(uid, lastAppliedSpec, phase,
lastTransitionTime)`` for the watcher, ``(namespace, name, checksum, phase)`` for a post-rollout
webhook.  ``offer`` returns True the first time a terminal key is seen; keys of finished
captures are kept in ``state.json`` beside the journal (written atomically), so a restart never
captures the same run twice; its ``last_seen`` (the watcher's clock at each heartbeat and at
stop) tells the next start since when nobody watched.  Across processes the store's conditional create is what makes a
second bundle impossible; the tracker only saves the work.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evidence.canary import normalise_canary

TERMINAL = ("Succeeded", "Failed")


def run_key(canary: dict[str, Any]) -> tuple[str, str, str, str | None] | None:
    """Return the run key of a Canary in a terminal phase, else None."""
    view, _ = normalise_canary(canary)
    status = view.get("status") or {}
    phase = status.get("phase")
    if phase not in TERMINAL:
        return None
    meta = view.get("metadata") or {}
    return (
        f"{meta.get('namespace')}/{meta.get('name')}",
        str(meta.get("uid") or ""),
        str(status.get("lastAppliedSpec") or ""),
        f"{phase}@{status.get('lastTransitionTime') or ''}",
    )


class Tracker:
    """Terminal runs seen and captured; persisted in ``state_path``."""

    def __init__(self, state_path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = state_path
        self.clock = clock  # Unix time of ``last_seen`` (the watcher's clock, for replays and tests)
        self._lock = threading.Lock()
        self.done: dict[str, str] = {}
        self.last_seen: float | None = None
        try:
            state = json.loads(self.path.read_text(encoding="utf-8"))
            self.done = {str(k): str(v) for k, v in (state.get("done") or {}).items()}
            self.last_seen = float(state["last_seen"]) if state.get("last_seen") else None
        except (OSError, ValueError, TypeError, AttributeError):
            pass
        self._offered: set[str] = set()

    @staticmethod
    def text(key: tuple[Any, ...]) -> str:
        return "|".join(str(k) for k in key)

    def offer(self, key: tuple[Any, ...]) -> bool:
        """Return True if ``key`` is a run not yet offered nor captured."""
        k = self.text(key)
        with self._lock:
            if k in self.done or k in self._offered:
                return False
            self._offered.add(k)
            return True

    def finish(self, keys: list[str], location: str) -> None:
        """Record the keys as captured into ``location``; persist."""
        with self._lock:
            for k in keys:
                self.done[k] = location
            self._save()

    def release(self, keys: list[str]) -> None:
        """Forget keys whose capture failed, so the next offer of them is accepted."""
        with self._lock:
            self._offered.difference_update(keys)

    def heartbeat(self) -> None:
        with self._lock:
            self._save()

    def _save(self) -> None:
        body = json.dumps({"done": self.done, "last_seen": self.clock()}, indent=1, sort_keys=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(body, encoding="utf-8")
        os.replace(tmp, self.path)
