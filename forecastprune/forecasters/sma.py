"""``sma``: the simple moving average of the seed write-up."""

from __future__ import annotations

import numpy as np

from .base import Forecaster
from .registry import register_forecaster
from .validate import check_int


@register_forecaster("sma")
class SMAForecaster(Forecaster):
    """Predict each channel's mean |γ| over the last ``window`` snapshots.

    Assumes γ hovers around a level that recent snapshots already show, with the noise of
    mini-batch updates on top; averaging removes that noise but, like ``naive``, assumes the
    level will not move further before the end of training (the seed write-up's assumption,
    with channels treated as independent).

    Args:
        window: number of most recent snapshots averaged; also the minimum history.
    """

    description = "mean of the last `window` values (the seed's method)"

    def __init__(self, window: int = 5) -> None:
        self.window = window
        check_int("sma", "window", window, 1)
        self.set_tags(min_history=int(window), history_window=int(window))

    @classmethod
    def get_test_params(cls) -> list[dict[str, int]]:
        return [{}, {"window": 1}, {"window": 12}]

    def _fit(self, t: np.ndarray, values: np.ndarray) -> None:
        self.level_ = values[-self.window :].mean(axis=0)

    def _predict(self, target_t: float) -> np.ndarray:
        return self.level_.copy()
