"""``linear``: a least-squares line over the recent window, extrapolated (optionally damped)."""

from __future__ import annotations

import numpy as np
from scipy import stats

from .base import Forecaster
from .registry import register_forecaster
from .validate import check_bool, check_choice, check_int, check_real


@register_forecaster("linear")
class LinearForecaster(Forecaster):
    """Fit ``γ ≈ a + b·t`` to each channel's last ``window`` snapshots and extrapolate.

    Assumes each |γ| drifts at a steady rate over the window and keeps that rate until the
    target — true early in sparse training, when the L1 pull moves weak channels towards zero at
    a near-constant rate, and increasingly false as channels settle. Two guards follow from that:

    * ``clip_at_zero``: |γ| cannot go below zero, so neither can its forecast or its interval.
    * ``damped=φ`` in (0, 1] shrinks the trend over the horizon the way a damped Holt trend
      does. With Δ the mean spacing of the window's time coordinates and ``m = h/Δ`` the horizon
      in snapshot intervals, the forecast is::

          ŷ(t_T + h) = ℓ + b·Δ·(φ + φ² + … + φ^m) = ℓ + b·Δ·φ·(1 − φ^m)/(1 − φ)

      where ℓ = a + b·t_T is the fitted line at the last snapshot. φ = 1 (or None) is the plain
      line ``ℓ + b·h``; φ < 1 caps the trend's total contribution at ``b·Δ·φ/(1 − φ)``.
      Equivalently, the damped forecast is the line evaluated at an *effective* horizon.

    Prediction intervals are the OLS ones at that effective horizon: ``ŷ ± t_{n−2}·s·√(1 + 1/n +
    (x* − x̄)²/Sxx)`` with ``s²`` the residual variance. Since every channel shares the time
    axis, the fit is one weighted sum over the window for all channels at once.

    Args:
        window: number of most recent snapshots fitted (≥ 3, so residuals have a degree of
            freedom); also the minimum history.
        clip_at_zero: clip forecasts and interval bounds at 0.
        damped: trend damping φ in (0, 1], or None for none.
        time_axis: ``"step"`` or ``"lr"`` (cumulative learning rate; needs a clock in ``fit``).
    """

    description = "least-squares line over the window, extrapolated (damped, clipped at 0)"
    _tags = {"time_axis_param": True, "supports_interval": True}

    def __init__(
        self,
        window: int = 10,
        clip_at_zero: bool = True,
        damped: float | None = None,
        time_axis: str = "step",
    ) -> None:
        self.window = window
        self.clip_at_zero = clip_at_zero
        self.damped = damped
        self.time_axis = time_axis
        check_int("linear", "window", window, 3)
        check_bool("linear", "clip_at_zero", clip_at_zero)
        if damped is not None:
            check_real("linear", "damped", damped, 0.0, 1.0)
        check_choice("linear", "time_axis", time_axis, ("step", "lr"))
        self.set_tags(
            needs_clock=time_axis == "lr", min_history=int(window), history_window=int(window)
        )

    @classmethod
    def get_test_params(cls) -> list[dict[str, object]]:
        return [
            {},
            {"window": 3, "clip_at_zero": False},
            {"window": 6, "damped": 0.8},
            {"window": 5, "time_axis": "lr"},
        ]

    def _fit(self, t: np.ndarray, values: np.ndarray) -> None:
        x = t[-self.window :]
        y = values[-self.window :]
        n = x.shape[0]
        # Centre the time axis: raw steps reach 1e5, and centring keeps Sxx well conditioned.
        self.x_mean_ = float(x.mean())
        dx = x - self.x_mean_
        self.sxx_ = float(dx @ dx)
        self.slope_ = (dx @ y) / self.sxx_
        self.intercept_ = y.mean(axis=0)  # the line's value at x_mean_
        residuals = y - self.intercept_ - np.outer(dx, self.slope_)
        self.sigma_ = np.sqrt(np.einsum("tc,tc->c", residuals, residuals) / (n - 2))
        self.n_ = n
        self.t_last_ = float(x[-1])
        self.spacing_ = float((x[-1] - x[0]) / (n - 1))

    def _effective_time(self, target_t: float) -> float:
        """The time at which the undamped line gives the (damped) forecast."""
        horizon = target_t - self.t_last_
        phi = self.damped
        if phi is None or phi == 1.0 or horizon <= 0.0 or self.spacing_ <= 0.0:
            return target_t
        intervals = horizon / self.spacing_
        return self.t_last_ + self.spacing_ * phi * (1.0 - phi**intervals) / (1.0 - phi)

    def _line(self, x: float) -> np.ndarray:
        return self.intercept_ + self.slope_ * (x - self.x_mean_)

    def _predict(self, target_t: float) -> np.ndarray:
        prediction = self._line(self._effective_time(target_t))
        return np.maximum(prediction, 0.0) if self.clip_at_zero else prediction

    def _predict_interval(self, target_t: float, coverage: float) -> tuple[np.ndarray, np.ndarray]:
        x = self._effective_time(target_t)
        centre = self._line(x)
        quantile = stats.t.ppf(0.5 + coverage / 2.0, df=self.n_ - 2)
        scale = np.sqrt(1.0 + 1.0 / self.n_ + (x - self.x_mean_) ** 2 / self.sxx_)
        half = quantile * self.sigma_ * scale
        lower, upper = centre - half, centre + half
        if self.clip_at_zero:
            lower, upper = np.maximum(lower, 0.0), np.maximum(upper, 0.0)
        return lower, upper
