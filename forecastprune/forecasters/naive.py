"""``naive``: the last recorded value — the control every other forecaster must beat."""

from __future__ import annotations

import numpy as np

from .base import Forecaster
from .registry import register_forecaster


@register_forecaster("naive")
class NaiveForecaster(Forecaster):
    """Predict each channel's last recorded |γ|.

    Assumes γ has already settled: whatever sparse training will still do to a channel is
    ignored. Pruning on this forecast is plain network slimming at the cutoff step, which makes
    it the honest baseline — on held-out runs it ranks channels about as well as any smoother,
    so a forecaster is only worth its cost where it beats this one.
    """

    description = "last recorded value (control: plain slimming at the cutoff)"
    _tags = {"min_history": 1, "history_window": 1}

    def __init__(self) -> None:
        pass

    def _fit(self, t: np.ndarray, values: np.ndarray) -> None:
        self.last_ = values[-1].copy()

    def _predict(self, target_t: float) -> np.ndarray:
        return self.last_.copy()
