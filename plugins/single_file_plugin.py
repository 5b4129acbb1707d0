"""A single-file forecastprune plugin: ``median(window=5)``.

Load it with ``forecastprune list --plugins plugins/single_file_plugin.py`` (or
``load_plugins(path)`` in Python, or ``plugins:`` in a config); the decorator does the rest.
"""

from __future__ import annotations

import numpy as np

from forecastprune.forecasters import Forecaster, register_forecaster
from forecastprune.forecasters.validate import check_int


@register_forecaster("median")
class MedianForecaster(Forecaster):
    """Predict each channel's median |γ| over the last ``window`` snapshots.

    Assumes, like ``sma``, that γ has settled around a level; the median ignores the occasional
    spike a noisy mini-batch puts into one snapshot, which a mean would spread over the window.

    Args:
        window: most recent snapshots used; also the minimum history.
    """

    description = "median of the last `window` values (single-file plugin example)"

    def __init__(self, window: int = 5) -> None:
        self.window = window
        check_int("median", "window", window, 1)
        # Capabilities are tags; these two depend on the window, so they are set per instance.
        self.set_tags(min_history=int(window), history_window=int(window))

    def _fit(self, t: np.ndarray, values: np.ndarray) -> None:
        self.level_ = np.median(values[-self.window :], axis=0)

    def _predict(self, target_t: float) -> np.ndarray:
        return self.level_.copy()
