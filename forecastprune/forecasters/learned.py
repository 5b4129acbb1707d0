"""Learned cross-channel forecasters: one regression over all channels instead of one model each.

Both predict each channel's scale-free change ``(γ_target − γ_last) / scale`` from the features
of :mod:`forecastprune.forecasters.features` with a ridge regression
(:mod:`forecastprune.forecasters.ridge`), and turn it back into |γ|:

- ``global_ridge`` fits the regression on *this* run, on backtests inside its history (the same
  ratio-matched origin → target pairs ``auto`` uses), pooling every channel: what moved, and
  how, between earlier points of the run predicts what moves after the cutoff.
- ``learned`` applies a regression fitted on *other* recorded runs
  (``forecastprune fit-forecaster``, :func:`forecastprune.forecasters.training.fit_learned`),
  read from a JSON model file; by default the one fitted on the bundled suite's tuning runs.
"""

from __future__ import annotations

from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .auto import backtest_pairs
from .candidates import Candidate, Window
from .features import FEATURES, change_target, channel_features, from_change
from .registry import register_forecaster
from .ridge import RidgeModel
from .validate import check_bool, check_real
from .windowed import WindowForecaster

#: the model ``learned`` uses when none is named (fitted on the suite's tuning runs)
BUNDLED_MODEL = "learned-suite.json"


def bundled_model_path() -> Path:
    """Where the bundled model lives inside the package."""
    return Path(str(resources.files("forecastprune") / "data" / BUNDLED_MODEL))


def learned_candidate(model: str | None = None) -> Candidate:
    """The learned regression as a candidate of ``auto`` (``model``: None for the bundled)."""
    path = bundled_model_path() if model is None else Path(model)
    return Candidate("learned", partial(_apply, regression=RidgeModel.load(path, FEATURES)))


def _apply(window: Window, regression: RidgeModel) -> np.ndarray:
    return from_change(window, regression.predict(channel_features(window)))


@register_forecaster("learned")
class LearnedForecaster(WindowForecaster):
    """A ridge regression over channel features, fitted on other runs, applied to this one.

    Args:
        model: path of a model JSON written by ``forecastprune fit-forecaster`` (None: the
            bundled model, fitted on the suite's tuning runs).
        use_clock: measure slopes and horizons in cumulative LR when the clock is known (the
            model should have been fitted the same way).
    """

    description = "ridge over channel features, fitted on other runs (fit-forecaster)"
    _tags = {"min_history": 1}

    def __init__(self, model: str | None = None, use_clock: bool = True) -> None:
        self.model = model
        self.use_clock = use_clock
        check_bool("learned", "use_clock", use_clock)
        self._regression = RidgeModel.load(self.model_path, expected=FEATURES)

    @property
    def model_path(self) -> Path:
        return bundled_model_path() if self.model is None else Path(self.model)

    def _forecast(self, window: Window) -> np.ndarray:
        return _apply(window, self._regression)


@register_forecaster("global_ridge")
class GlobalRidgeForecaster(WindowForecaster):
    """A ridge regression over channel features, fitted on backtests inside this run's history.

    Falls back to the last value when the history is too short for a backtest.

    Args:
        alpha: the ridge penalty (per sample, on standardized features).
        use_clock: measure slopes and horizons in cumulative LR when the clock is known.
    """

    description = "ridge over channel features, fitted on in-history backtests of this run"
    _tags = {"min_history": 1}

    def __init__(self, alpha: float = 0.01, use_clock: bool = True) -> None:
        self.alpha = alpha
        self.use_clock = use_clock
        check_real("global_ridge", "alpha", alpha, 0.0, float("inf"), low_open=False)
        check_bool("global_ridge", "use_clock", use_clock)

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        return [{}, {"alpha": 0.0, "use_clock": False}]

    def _forecast(self, window: Window) -> np.ndarray:
        pairs = backtest_pairs(window.t, window.target_t, 3)
        if not pairs:
            self.fitted_on_ = 0
            return window.values[-1].copy()
        heads = [window.head(o, p) for o, p in pairs]
        x = np.vstack([channel_features(h) for h in heads])
        y = np.concatenate([change_target(h, window.values[p]) for h, (_, p) in zip(heads, pairs)])
        self.regression_ = RidgeModel.fit(x, y, FEATURES, self.alpha)
        self.fitted_on_ = len(pairs)
        return from_change(window, self.regression_.predict(channel_features(window)))
