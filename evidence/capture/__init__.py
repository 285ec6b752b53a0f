"""Unattended capture: a journal of Flagger's events, a webhook receiver, a Canary watcher, notifications.

::

    receiver.py ──► journal.py ◄── watch.py (Kubernetes Events)
                        │              │ terminal phase / post-rollout webhook
                        ▼              ▼
             sources/journal.py ──► tracker.py ──► collect → sign → store → render → notify.py
                                       metrics.py counts every step for GET /metrics

``run_watch(options)`` in ``watch.py`` is what ``evidence watch`` calls.
"""
