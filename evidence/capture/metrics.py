"""The watcher's own metrics, in the Prometheus text exposition format (``GET /metrics``).

Names: ``evidence_captures_total{outcome}`` (stored, duplicate, retrying: an attempt failed and
another is due; failed: the last attempt failed), ``evidence_capture_duration_seconds``
(histogram), ``evidence_last_capture_timestamp_seconds``, ``evidence_journal_bytes``,
``evidence_journal_events_total``, ``evidence_webhook_requests_total{code}``,
``evidence_watch_restarts_total{resource}``, ``evidence_notifications_total{outcome}``.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable

BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
NAMES = (
    "evidence_captures_total",
    "evidence_capture_duration_seconds",
    "evidence_last_capture_timestamp_seconds",
    "evidence_journal_bytes",
    "evidence_journal_events_total",
    "evidence_webhook_requests_total",
    "evidence_watch_restarts_total",
    "evidence_notifications_total",
)


class Metrics:
    """Counters, one histogram and gauges; thread-safe; ``render()`` gives the text format."""

    def __init__(self, journal_bytes: Callable[[], int] = lambda: 0, journal_events: Callable[[], int] = lambda: 0) -> None:
        self._lock = threading.Lock()
        self.captures: dict[str, int] = defaultdict(int)
        self.webhooks: dict[str, int] = defaultdict(int)
        self.restarts: dict[str, int] = defaultdict(int)
        self.notifications: dict[str, int] = defaultdict(int)
        self.durations: list[float] = []
        self.last_capture = 0.0
        self.journal_bytes = journal_bytes
        self.journal_events = journal_events

    def capture(self, outcome: str, seconds: float, at: float) -> None:
        with self._lock:
            self.captures[outcome] += 1
            self.durations.append(seconds)
            if outcome == "stored":
                self.last_capture = at

    def webhook(self, code: int) -> None:
        with self._lock:
            self.webhooks[str(code)] += 1

    def restart(self, resource: str) -> None:
        with self._lock:
            self.restarts[resource] += 1

    def notification(self, outcome: str) -> None:
        with self._lock:
            self.notifications[outcome] += 1

    def render(self) -> bytes:
        """Return the exposition text."""
        with self._lock:
            out: list[str] = []

            def family(name: str, kind: str, help_: str) -> None:
                out.append(f"# HELP {name} {help_}")
                out.append(f"# TYPE {name} {kind}")

            family("evidence_captures_total", "counter", "Capture attempts by outcome (stored, duplicate, retrying, failed).")
            for k in sorted(set(self.captures) | {"stored", "duplicate", "retrying", "failed"}):
                out.append(f'evidence_captures_total{{outcome="{k}"}} {self.captures.get(k, 0)}')
            family("evidence_capture_duration_seconds", "histogram", "Time from the start of a capture to its end.")
            for b in BUCKETS:
                out.append(f'evidence_capture_duration_seconds_bucket{{le="{b}"}} {sum(d <= b for d in self.durations)}')
            out.append(f'evidence_capture_duration_seconds_bucket{{le="+Inf"}} {len(self.durations)}')
            out.append(f"evidence_capture_duration_seconds_sum {sum(self.durations)}")
            out.append(f"evidence_capture_duration_seconds_count {len(self.durations)}")
            family("evidence_last_capture_timestamp_seconds", "gauge", "Unix time of the last stored bundle.")
            out.append(f"evidence_last_capture_timestamp_seconds {self.last_capture}")
            family("evidence_journal_bytes", "gauge", "Bytes in the active journal files.")
            out.append(f"evidence_journal_bytes {self.journal_bytes()}")
            family("evidence_journal_events_total", "counter", "Records appended to the journal since start.")
            out.append(f"evidence_journal_events_total {self.journal_events()}")
            family("evidence_webhook_requests_total", "counter", "Webhook requests by answered status code.")
            for k in sorted(self.webhooks):
                out.append(f'evidence_webhook_requests_total{{code="{k}"}} {self.webhooks[k]}')
            family("evidence_watch_restarts_total", "counter", "Watch streams started again (timeouts, drops, 410 re-lists).")
            for k in sorted(self.restarts):
                out.append(f'evidence_watch_restarts_total{{resource="{k}"}} {self.restarts[k]}')
            family("evidence_notifications_total", "counter", "Chat notifications by outcome (sent, failed).")
            for k in sorted(self.notifications):
                out.append(f'evidence_notifications_total{{outcome="{k}"}} {self.notifications[k]}')
        return ("\n".join(out) + "\n").encode()
