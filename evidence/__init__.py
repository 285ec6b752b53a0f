"""evidence: prove what happened in a Flagger + Traefik progressive-delivery rollout."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
