"""forecastprune: early channel pruning driven by forecasts of BatchNorm γ trajectories.

The heavy parts (torch models, sktime) are imported lazily so ``import forecastprune`` is cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import ForecastPruneError
from .store.layout import ChannelLayout

__version__ = "0.1.0"

#: public name -> module that defines it (imported on first attribute access)
_LAZY = {
    "GammaTrajectoryStore": "forecastprune.store",
    "GammaRecorder": "forecastprune.record.recorder",
    "BNSparsity": "forecastprune.record.sparsity",
    "Forecaster": "forecastprune.forecasters",
    "register_forecaster": "forecastprune.forecasters",
    "get_forecaster": "forecastprune.forecasters",
    "list_forecasters": "forecastprune.forecasters",
    "load_plugins": "forecastprune.forecasters",
    "EarlyPruner": "forecastprune.pipeline",
}

__all__ = ["ChannelLayout", "ForecastPruneError", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'forecastprune' has no attribute {name!r}")
