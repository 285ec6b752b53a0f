"""The pure analysis core: the bundle's tables in, dataclasses out.

``counters`` (window arithmetic) · ``traffic`` (weights, when the canary takes traffic) ·
``criteria`` (the abort criteria over time) · ``timeline`` (Flagger's decisions and outcome) ·
``blast`` (blast radius) · ``lag`` (detection lag) · ``replay`` (what-if replays) ·
``findings`` (rollout limits and the Finding value).
"""

from __future__ import annotations

from evidence.analysis.blast import BlastRadius, ShareCheck, blast_radius
from evidence.analysis.counters import CounterTable, histogram_quantile, prepare_counters
from evidence.analysis.criteria import CriterionResult, Span, evaluate_criteria
from evidence.analysis.findings import Finding, check_rollout_limits
from evidence.analysis.lag import DetectionLag, detection_lag
from evidence.analysis.replay import Replay, ReplayTick, analysis_ticks, replay_flagger, replay_policy
from evidence.analysis.timeline import Halt, Timeline, TimelineEntry, WeightStep, build_timeline, rollout_span

__all__ = [
    "BlastRadius",
    "CounterTable",
    "CriterionResult",
    "DetectionLag",
    "Finding",
    "Halt",
    "Replay",
    "ReplayTick",
    "ShareCheck",
    "Span",
    "Timeline",
    "TimelineEntry",
    "WeightStep",
    "analysis_ticks",
    "blast_radius",
    "build_timeline",
    "check_rollout_limits",
    "detection_lag",
    "evaluate_criteria",
    "histogram_quantile",
    "prepare_counters",
    "replay_flagger",
    "replay_policy",
    "rollout_span",
]
