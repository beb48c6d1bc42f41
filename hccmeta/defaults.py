"""Defaults shared by every layer (the one default seed)."""

from __future__ import annotations

__all__ = ["DEFAULT_SEED"]

#: The default seed of every sampler and of the exact engine's draws: the API
#: (:func:`hccmeta.pool`, :func:`hccmeta.run_analysis`, the model fits, the sensitivity
#: analyses) and every command (``run``, ``pool``, ``sensitivity``, ``report``).
DEFAULT_SEED = 20261122
