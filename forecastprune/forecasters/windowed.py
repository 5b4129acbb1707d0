"""A base for forecasters that read both time axes: steps and the run's clock.

:class:`~forecastprune.forecasters.base.Forecaster` hands ``_fit``/``_predict`` one time axis.
``auto`` and the learned forecasters want both — an AR model counts snapshot spacings in steps,
a horizon is measured in cumulative learning rate — so this base keeps the steps and the
target step too, and gives subclasses a :class:`~.candidates.Window` of the whole history.
The clock is optional here: with one, ``t`` is cumulative LR; without, ``t`` is the step.
"""

from __future__ import annotations

import numpy as np

from .base import Forecaster, TimeMap
from .candidates import Window


class WindowForecaster(Forecaster):
    """Subclasses implement :meth:`_forecast` on the history window; ``use_clock`` (an
    ``__init__`` parameter of every subclass) says whether to use a clock when one is given."""

    # a long history is resampled to ≤ 1,024 snapshots, as for ARIMA (see predict.py)
    _tags = {
        "uses_clock": True,
        "needs_clock": False,
        "time_axis_param": False,
        "supports_interval": False,
        "history_window": None,
        "history_grid": 1024,
    }
    use_clock: bool = True

    def fit(
        self, steps: np.ndarray, values: np.ndarray, clock: TimeMap | None = None
    ) -> Forecaster:
        # the base hands _fit one time axis; keep the steps as well (after the base's fit,
        # which starts by clearing every fitted attribute)
        super().fit(steps, values, clock)
        self.steps_ = np.asarray(steps, dtype=np.float64)
        return self

    def predict(self, target_step: int | float) -> np.ndarray:
        # likewise for the target: _predict receives it on the clock's axis only
        self.target_step_ = float(target_step)
        return super().predict(target_step)

    def _resolve_clock(self, clock: TimeMap | None) -> TimeMap | None:
        return clock if self.use_clock else None

    def _fit(self, t: np.ndarray, values: np.ndarray) -> None:
        self.t_ = t
        self.values_ = values

    def _predict(self, target_t: float) -> np.ndarray:
        layers = self.layer_of_channel(self.values_.shape[1])
        return self._forecast(
            Window(self.steps_, self.t_, self.values_, self.target_step_, target_t, layers)
        )

    def _forecast(self, window: Window) -> np.ndarray:
        raise NotImplementedError
