"""``expdecay``: fit γ(t) = a·exp(−b·t) + c to every channel at once — a forecastprune plugin.

Under an L1 pull a BatchNorm scale does not drift at a constant rate: it moves fast while the
penalty dominates its gradient and slows as it approaches the level the task gradient defends
(possibly zero). An exponential approach to an asymptote ``c`` captures that shape; ``a < 0``
covers channels that grow towards their level instead.

The fit is separable: for a fixed rate ``b`` the model is linear in ``(a, c)``. We try a
geometric grid of rates, solve all channels' least-squares problems for each rate with one thin
QR of the shared design matrix, and keep each channel's best rate. No per-channel Python loop:
the cost is one ``(K, 2, T) @ (T, C)`` product for K rates.
"""

from __future__ import annotations

import numpy as np

from forecastprune.errors import ForecasterError
from forecastprune.forecasters import Forecaster
from forecastprune.forecasters.validate import check_bool, check_choice, check_int

#: rates tried, in units of 1 / (time span of the fitted window)
RATE_GRID = np.geomspace(0.5, 50.0, 32)


class ExpDecayForecaster(Forecaster):
    """Per-channel exponential approach to an asymptote, extrapolated to the target.

    Args:
        window: most recent snapshots fitted (≥ 4), or None for the whole history.
        clip_at_zero: clip forecasts at 0 (they are forecasts of |γ|).
        time_axis: ``"step"`` or ``"lr"`` (cumulative learning rate; needs a clock).
    """

    description = "exponential approach a*exp(-b*t)+c per channel (plugin example)"
    _tags = {"time_axis_param": True}

    def __init__(
        self, window: int | None = None, clip_at_zero: bool = True, time_axis: str = "step"
    ) -> None:
        self.window = window
        self.clip_at_zero = clip_at_zero
        self.time_axis = time_axis
        if window is not None:
            check_int("expdecay", "window", window, 4)
        check_bool("expdecay", "clip_at_zero", clip_at_zero)
        check_choice("expdecay", "time_axis", time_axis, ("step", "lr"))
        self.set_tags(
            needs_clock=time_axis == "lr",
            min_history=4 if window is None else int(window),
            history_window=None if window is None else int(window),  # None: all of it
        )

    @classmethod
    def get_test_params(cls) -> list[dict[str, object]]:
        return [{}, {"window": 8, "time_axis": "lr"}]

    def _fit(self, t: np.ndarray, values: np.ndarray) -> None:
        if self.window is not None:
            t, values = t[-self.window :], values[-self.window :]
        self.origin_ = float(t[0])
        self.span_ = float(t[-1] - t[0])
        if self.span_ <= 0.0:
            raise ForecasterError("expdecay needs a history spanning a positive time range")
        tau = (t - self.origin_) / self.span_
        design = np.stack(
            [np.ones((RATE_GRID.size, tau.size)), np.exp(-np.outer(RATE_GRID, tau))], axis=-1
        )  # (K, T, 2)
        q, r = np.linalg.qr(design)  # (K, T, 2), (K, 2, 2)
        projected = np.einsum("ktp,tc->kpc", q, values)  # (K, 2, C)
        # Residual sum of squares = |y|² − |Qᵀy|², so the best rate maximizes |Qᵀy|².
        best = np.argmax(np.einsum("kpc,kpc->kc", projected, projected), axis=0)  # (C,)
        channels = np.arange(values.shape[1])
        coef = np.linalg.solve(r[best], projected[best, :, channels][..., None])[..., 0]
        self.level_, self.amplitude_ = coef[:, 0], coef[:, 1]
        self.rate_ = RATE_GRID[best]

    def _predict(self, target_t: float) -> np.ndarray:
        tau = (target_t - self.origin_) / self.span_
        prediction = self.level_ + self.amplitude_ * np.exp(-self.rate_ * tau)
        return np.maximum(prediction, 0.0) if self.clip_at_zero else prediction
