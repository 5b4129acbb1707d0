"""forecastprune: early channel pruning driven by forecasts of BatchNorm γ trajectories.

The heavy parts (torch models, sktime) are imported lazily so ``import forecastprune`` is cheap.
"""

from __future__ import annotations

from ._util import lazy_attributes
from .core.layout import ChannelLayout
from .errors import ForecastPruneError

__version__ = "0.2.0"

#: public name -> module that defines it (imported on first attribute access)
_LAZY = {
    "GammaTrajectoryStore": "store",
    "GammaRecorder": "record.recorder",
    "BNSparsity": "record.sparsity",
    "Forecaster": "forecasters",
    "register_forecaster": "forecasters",
    "get_forecaster": "forecasters",
    "list_forecasters": "forecasters",
    "load_plugins": "forecasters",
    "EarlyPruner": "pipeline",
}

__all__ = ["ChannelLayout", "ForecastPruneError", "__version__", *_LAZY]


__getattr__ = lazy_attributes(__name__, _LAZY)
