"""evidence: prove what happened in a Flagger + Traefik progressive-delivery rollout.

The public API, imported lazily so that ``evidence --help`` stays fast::

    from evidence import CanaryRef, collect_rollout, read_bundle, verify_bundle, evaluate_bundle
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # the real names for type checkers; at run time they load on first use (__getattr__)
    from evidence.bundle import Bundle, read_bundle, verify_bundle
    from evidence.canary import CanarySpec
    from evidence.collect import CollectOptions, collect_rollout
    from evidence.errors import EvidenceError
    from evidence.evaluate import Evaluation, evaluate_bundle
    from evidence.model import Action, CanaryRef, GapKind, Outcome, OutcomeCause, OutcomeSource, Role, Window
    from evidence.policy import default_policy, load_policy
    from evidence.preflight import preflight_to_json, run_preflight
    from evidence.render.evaluation import evaluation_to_json
    from evidence.sources.dump import DumpSource
    from evidence.sources.kube import KubeSource
    from evidence.sources.prometheus import PrometheusAuth, PrometheusSource

_EXPORTS = {
    "Action": "evidence.model",
    "Bundle": "evidence.bundle",
    "CanaryRef": "evidence.model",
    "CanarySpec": "evidence.canary",
    "CollectOptions": "evidence.collect",
    "DumpSource": "evidence.sources.dump",
    "Evaluation": "evidence.evaluate",
    "EvidenceError": "evidence.errors",
    "GapKind": "evidence.model",
    "Outcome": "evidence.model",
    "OutcomeCause": "evidence.model",
    "OutcomeSource": "evidence.model",
    "KubeSource": "evidence.sources.kube",
    "PrometheusAuth": "evidence.sources.prometheus",
    "PrometheusSource": "evidence.sources.prometheus",
    "Role": "evidence.model",
    "Window": "evidence.model",
    "collect_rollout": "evidence.collect",
    "default_policy": "evidence.policy",
    "evaluate_bundle": "evidence.evaluate",
    "evaluation_to_json": "evidence.render.evaluation",
    "load_policy": "evidence.policy",
    "preflight_to_json": "evidence.preflight",
    "read_bundle": "evidence.bundle",
    "run_preflight": "evidence.preflight",
    "verify_bundle": "evidence.bundle",
}

__all__ = [
    "Action",
    "Bundle",
    "CanaryRef",
    "CanarySpec",
    "CollectOptions",
    "DumpSource",
    "Evaluation",
    "EvidenceError",
    "GapKind",
    "KubeSource",
    "Outcome",
    "OutcomeCause",
    "OutcomeSource",
    "PrometheusAuth",
    "PrometheusSource",
    "Role",
    "Window",
    "__version__",
    "collect_rollout",
    "default_policy",
    "evaluate_bundle",
    "evaluation_to_json",
    "load_policy",
    "preflight_to_json",
    "read_bundle",
    "run_preflight",
    "verify_bundle",
]  # literal, so type checkers see the exports; a test keeps it equal to _EXPORTS


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'evidence' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
