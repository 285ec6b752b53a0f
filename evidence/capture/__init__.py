"""Unattended capture: a journal of Flagger's events, a webhook receiver, a Canary watcher, notifications.

::

    receiver.py ──► journal.py ◄── watch.py ◄── stream.py (list-then-watch: Canaries, Events)
                        │              │ terminal phase / post-rollout webhook / catchup.py (Flagger's metrics)
                        ▼              ▼
             sources/journal.py ──► tracker.py ──► run.py: collect → sign → store → render ──► notify.py
                                       metrics.py counts every step for GET /metrics

``run_watch(options)`` in ``watch.py`` is what ``evidence watch`` calls (``options.py``: the
command line's ``WatchArgs`` checked into ``WatchOptions``); ``lease.py`` elects one capturing replica.
"""
