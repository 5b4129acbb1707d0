"""``ema``: the exponentially weighted moving average."""

from __future__ import annotations

import math

import numpy as np

from ..errors import ForecasterError
from .base import Forecaster
from .registry import register_forecaster
from .validate import check_real

#: span used when neither ``alpha`` nor ``span`` is given
DEFAULT_SPAN = 10.0
#: relative weight below which old snapshots are dropped from the average
NEGLIGIBLE = 1e-14


#: the largest span accepted: far beyond any run's length, and 2 / (span + 1) stays a number
MAX_SPAN = 1e12
#: the history window of a smoothing so small that every snapshot counts
MAX_WINDOW = 2**62


def ema_window(alpha: float) -> int:
    """Snapshots that carry more than :data:`NEGLIGIBLE` weight at smoothing ``alpha``."""
    if alpha >= 1.0:
        return 1
    steps = math.log(NEGLIGIBLE) / math.log1p(-alpha) if alpha > 1e-300 else math.inf
    return max(1, math.ceil(steps)) if steps < MAX_WINDOW else MAX_WINDOW  # tiny α: all rows


@register_forecaster("ema")
class EMAForecaster(Forecaster):
    """Predict each channel's exponentially weighted mean of its |γ| history.

    The recursion is ``s_0 = x_0``, ``s_i = α·x_i + (1 − α)·s_{i−1}``; the prediction is the
    last ``s``. Like ``sma`` it assumes γ settles around a level, but it trusts recent snapshots
    more, so it follows a level that is still drifting with less lag than a flat window. Being a
    convex combination, it never leaves the range of the history.

    Args:
        alpha: smoothing factor in (0, 1]; 1 is ``naive``.
        span: the pandas-style alternative, ``alpha = 2 / (span + 1)``, span ≥ 1.
            Give at most one of the two; with neither, span = 10.
    """

    description = "exponentially weighted mean (alpha or span; default span=10)"

    def __init__(self, alpha: float | None = None, span: float | None = None) -> None:
        self.alpha = alpha
        self.span = span
        if alpha is not None and span is not None:
            raise ForecasterError(
                f"ema takes alpha or span, not both; got alpha={alpha!r}, span={span!r}"
            )
        # Snapshots older than N carry weight (1 − α)^N ≤ 1e-14 of the newest: reading only the
        # last N changes nothing at float precision (α = 1, naive, reads one row).
        self.set_tags(history_window=ema_window(self._smoothing()))

    @classmethod
    def get_test_params(cls) -> list[dict[str, float]]:
        return [{}, {"alpha": 1.0}, {"span": 3}, {"alpha": 0.05}]

    def _smoothing(self) -> float:
        if self.alpha is not None:
            return check_real("ema", "alpha", self.alpha, 0.0, 1.0)
        span = DEFAULT_SPAN if self.span is None else self.span
        span = check_real("ema", "span", span, 1.0, MAX_SPAN, low_open=False)
        return 2.0 / (span + 1.0)

    def _fit(self, t: np.ndarray, values: np.ndarray) -> None:
        self.level_ = ema_level(values, self._smoothing())

    def _predict(self, target_t: float) -> np.ndarray:
        return self.level_.copy()


def ema_level(values: np.ndarray, alpha: float) -> np.ndarray:
    """The exponentially weighted mean of (T, C) ``values`` at smoothing ``alpha``, started at
    the first row: the level ``ema`` forecasts (and ``auto``'s ema candidate).

    The recursion unrolled: weight α(1−α)^(T−1−i) on x_i and (1−α)^(T−1) on x_0; one
    matrix-vector product over all channels instead of a loop over snapshots.
    """
    age = np.arange(values.shape[0] - 1, -1, -1, dtype=np.float64)
    weights = alpha * (1.0 - alpha) ** age
    weights[0] = (1.0 - alpha) ** age[0]
    return weights @ values
