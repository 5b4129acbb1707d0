"""``arima``: a per-channel ARIMA(p, d, q), estimated for every channel in one batch."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats

from ..base import Forecaster
from ..evengrid import at_horizon, resample_even
from ..registry import register_forecaster
from ..validate import check_choice, check_int
from .css_refine import REFINE_STEPS
from .hannan_rissanen import fit_batched, required_history
from .statsmodels_backend import fit_statsmodels

BACKENDS = ("batched", "statsmodels")
TRENDS = (None, "n", "c")


@register_forecaster("arima")
class ArimaForecaster(Forecaster):
    """Fit an ARIMA(p, d, q) to each channel's history and forecast it to the target.

    **What it assumes about γ.** Channels are independent; each |γ| series, differenced ``d``
    times, is a stationary ARMA(p, q) process with Gaussian innovations whose coefficients do
    not change over the history. With the default d = 1 and no drift, the model is on γ's
    *increments*: an AR(1) on increments is an exponential approach to a plateau, so the
    forecast continues the current movement and then levels off at
    ``γ_T + Δγ_T·φ/(1 − φ)`` — the shape of a channel that L1 drives towards zero and that
    then settles, or of one that has found its level. An AR root near 1 on increments means a
    near-straight line and extrapolates like ``linear``; a root near 0 reduces to ``naive``.

    **Trend.** ``trend="c"`` adds an intercept to the differenced series: with d ≥ 1 that is a
    *drift*, a constant increment per record that never dies out, so the forecast keeps moving
    linearly for the whole horizon (and hundreds of records ahead, a small average decline
    adds up to a large, usually wrong, drop). That is why the default (``trend=None``) is no
    drift for d ≥ 1 and a mean for d = 0 (a level process needs one; this follows statsmodels).

    **Time axis.** ARIMA needs evenly spaced observations. The history is resampled onto an
    even grid over its time coordinate (linear interpolation; a no-op for evenly recorded
    steps) and the target lies ``H = (t_target − t_last) / spacing`` grid intervals ahead;
    fractional ``H`` interpolates between the forecasts at ``⌊H⌋`` and ``⌊H⌋ + 1``, and targets
    at or before the last snapshot return the last value. With ``time_axis="lr"`` the
    coordinate is cumulative learning rate: the grid is even in Σ lr, and after an LR drop
    the target is correspondingly fewer grid steps away, so the trend is not over-extrapolated.
    That mapping matters only when d ≥ 1 (a d = 0 forecast reverts to the mean whatever ``H``).

    **Backends.** ``"batched"`` (see :mod:`.hannan_rissanen`): Hannan–Rissanen conditional least
    squares for all channels at once, polished (when q > 0) by ``refine`` batched
    Levenberg–Marquardt steps on the conditional sum of squares; forecasts and MA(∞)
    intervals by companion-matrix powers; under a second for 13,376 channels × 200 records.
    ``"statsmodels"`` (see :mod:`.statsmodels_backend`): exact maximum likelihood per channel,
    slow, for reference.
    Both flag constant channels and forecast them as their last value.

    Args:
        p: AR order of the differenced series (≥ 0).
        d: differencing order, 0, 1 or 2.
        q: MA order (≥ 0).
        trend: ``"n"`` (no intercept), ``"c"`` (intercept: a mean for d = 0, a drift for
            d ≥ 1) or None (``"c"`` when d = 0, else ``"n"``).
        backend: ``"batched"`` or ``"statsmodels"``.
        time_axis: ``"step"`` or ``"lr"`` (cumulative learning rate; needs a clock in ``fit``).
        clip_at_zero: clip forecasts and interval bounds at 0 (|γ| is never negative).
        refine: most Levenberg–Marquardt steps after Hannan–Rissanen (batched backend, q > 0;
            0 keeps the Hannan–Rissanen estimates). Each costs about one pass over the data.
    """

    description = (
        "per-channel ARIMA(p,d,q), batched conditional least squares (or statsmodels), intervals"
    )
    # A long history is resampled to at most 1,024 evenly spaced snapshots: every store we
    # ship (bundled and suite, ≤ 661 snapshots) is fitted exactly as before, while a 10⁵-snapshot
    # run costs a bounded 1,024 × C fit (110 MB of float64 at 13,376 channels).
    _tags = {"time_axis_param": True, "supports_interval": True, "history_grid": 1024}

    def __init__(
        self,
        p: int = 1,
        d: int = 1,
        q: int = 0,
        trend: str | None = None,
        backend: str = "batched",
        time_axis: str = "step",
        clip_at_zero: bool = True,
        refine: int = REFINE_STEPS,
    ) -> None:
        self.p = p
        self.d = d
        self.q = q
        self.trend = trend
        self.backend = backend
        self.time_axis = time_axis
        self.clip_at_zero = clip_at_zero
        self.refine = refine
        check_int("arima", "p", p, 0)
        check_int("arima", "d", d, 0)
        check_choice("arima", "d", d, (0, 1, 2))
        check_int("arima", "q", q, 0)
        check_choice("arima", "trend", trend, TRENDS)
        check_choice("arima", "backend", backend, BACKENDS)
        check_choice("arima", "time_axis", time_axis, ("step", "lr"))
        check_choice("arima", "clip_at_zero", clip_at_zero, (True, False))
        check_int("arima", "refine", refine, 0)
        self.set_tags(
            needs_clock=time_axis == "lr",
            vectorized=backend == "batched",
            min_history=required_history(p, d, q, self.constant),
        )

    @property
    def constant(self) -> bool:
        """Whether the differenced series gets an intercept (resolves ``trend=None``)."""
        return self.trend == "c" or (self.trend is None and self.d == 0)

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        return [
            {},
            {"p": 2, "d": 1, "q": 1},
            {"p": 1, "d": 0, "q": 0},
            {"p": 0, "d": 2, "q": 1, "clip_at_zero": False},
            {"p": 1, "d": 1, "trend": "c", "time_axis": "lr"},
            {"p": 1, "d": 1, "q": 1, "refine": 0},
        ]

    def _fit(self, t: np.ndarray, values: np.ndarray) -> None:
        self.grid_, y = resample_even(t, values)
        if self.backend == "batched":
            self.model_ = fit_batched(y, self.p, self.d, self.q, self.constant, self.refine)
        else:
            self.model_ = fit_statsmodels(y, self.p, self.d, self.q, self.constant)
            self.fit_report_ = self.model_.report

    def _mean_and_variance(self, target_t: float) -> tuple[np.ndarray, np.ndarray]:
        mean, variance = at_horizon(self.model_.forecast, self.grid_.horizon(target_t))
        return mean, variance

    def _predict(self, target_t: float) -> np.ndarray:
        mean, _ = self._mean_and_variance(target_t)
        return np.maximum(mean, 0.0) if self.clip_at_zero else mean

    def _predict_interval(self, target_t: float, coverage: float) -> tuple[np.ndarray, np.ndarray]:
        mean, variance = self._mean_and_variance(target_t)
        half = stats.norm.ppf(0.5 + coverage / 2.0) * np.sqrt(variance)
        lower, upper = mean - half, mean + half
        if self.clip_at_zero:
            lower, upper = np.maximum(lower, 0.0), np.maximum(upper, 0.0)
        return lower, upper
