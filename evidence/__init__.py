"""evidence: prove what happened in a Flagger + Traefik progressive-delivery rollout.

The public API, imported lazily so that ``evidence --help`` stays fast::

    from evidence import CanaryRef, collect_rollout, read_bundle, verify_bundle, evaluate_bundle
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "CanaryRef": "evidence.model",
    "CollectOptions": "evidence.collect",
    "DumpSource": "evidence.sources.dump",
    "EvidenceError": "evidence.errors",
    "KubeSource": "evidence.sources.kube",
    "PrometheusAuth": "evidence.sources.prometheus",
    "PrometheusSource": "evidence.sources.prometheus",
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

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'evidence' has no attribute {name!r}")
