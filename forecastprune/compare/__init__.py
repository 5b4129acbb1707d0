"""Offline replay of a recorded run: how close would a forecast-driven prune have been?

- :mod:`.settings` — :class:`ReplaySettings` (light: the CLI and configs read its defaults);
- :mod:`.replay` — :func:`replay`, every forecaster at every cutoff against the finished run;
- :mod:`.worker` — runs one forecaster in a forked worker with a deadline;
- :mod:`.scoring` — the oracle and the rows: one engine decision per cell, scored;
- :mod:`.metrics` — IoU, tie-aware IoU, rank correlation, the Early-Bird distance;
- :mod:`.report`, :mod:`.plots` — the table, JSON/CSV/HTML and the PNG plots.

Every prediction goes through :func:`forecastprune.predict.predict_history`, the same function
``forecast``, ``prune`` and :class:`~forecastprune.pipeline.EarlyPruner` use.
"""

from __future__ import annotations

from .settings import ReplaySettings

__all__ = ["ReplaySettings"]

# The replay itself is ``forecastprune.compare.replay.replay``: the package does not re-export
# it, since importing the ``replay`` submodule would shadow a function of the same name here.
