"""Collect one rollout: what to fetch for it, from sources passed in, into a bundle.

``collect_rollout(ref, cluster, prometheus, options)`` reads the cluster source, finds the
rollout window (``window``), fetches the router's and Flagger's series (raw samples, in chunks,
concurrently, streamed to parquet) and Flagger's own metric queries at its analysis ticks while
the cluster-side tables are built (``tables``), and writes the bundle atomically (``run``).
"""

from __future__ import annotations

from evidence.collect.run import MAX_ANNOUNCED, announce, collect_rollout, existing_bundle
from evidence.collect.window import (
    DEFAULT_LEAD,
    DEFAULT_MAX_WINDOW,
    DEFAULT_TAIL,
    CollectOptions,
    check_options,
    decide_window,
    rollout_from_weights,
)

__all__ = [
    "DEFAULT_LEAD",
    "DEFAULT_MAX_WINDOW",
    "DEFAULT_TAIL",
    "MAX_ANNOUNCED",
    "CollectOptions",
    "announce",
    "check_options",
    "collect_rollout",
    "decide_window",
    "existing_bundle",
    "rollout_from_weights",
]
