"""Early-prune training: sparse-train while recording γ, forecast, prune once, train on.

- :class:`EarlyPruner` — two calls in any training loop (``regularize`` after ``backward``,
  ``step`` after ``optimizer.step()``).
- :mod:`~forecastprune.pipeline.timing` — fixed, Early-Bird and automatic prune timing.
- :mod:`~forecastprune.pipeline.methods` — normal / slimming / early-bird / forecast as Trainer
  callbacks; :mod:`~forecastprune.pipeline.run` — one configured run end to end.
- :mod:`~forecastprune.pipeline.compute` — training-compute accounting.
"""

from __future__ import annotations

from .early_pruner import EarlyPruner
from .timing import FixedTiming, MaskStabilityTiming, PruneTiming, auto_timing, early_bird_timing

__all__ = [
    "EarlyPruner",
    "FixedTiming",
    "MaskStabilityTiming",
    "PruneTiming",
    "auto_timing",
    "early_bird_timing",
]
