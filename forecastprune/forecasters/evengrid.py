"""Put a history on an evenly spaced time grid, and map a target time to a horizon on it.

Time-series models (ARIMA, sktime, statsforecast) assume evenly spaced observations and forecast
a whole number of steps ahead. γ histories need not be even: the recorder may change its period,
and on the cumulative-learning-rate axis the spacing shrinks every time the LR drops. Both cases
go through the same resampling: a grid of ``T`` points from the first to the last time with the
mean spacing, each channel linearly interpolated onto it. When the times already are even (the
usual case on the step axis) the grid *is* the history and the values come back unchanged.

A target time then lies ``H = (target_t - t_last) / spacing`` grid intervals ahead; ``H`` may be
fractional, and the callers interpolate linearly between the forecasts at ``floor(H)`` and
``floor(H) + 1``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import ForecasterError

# Relative tolerance under which spacings count as even (float clocks are not exact).
_EVEN_RTOL = 1e-9


@dataclass(frozen=True)
class EvenGrid:
    """An evenly spaced time grid.

    Attributes:
        start: time of the first grid point (the first snapshot).
        spacing: distance between grid points (> 0).
        length: number of grid points.
    """

    start: float
    spacing: float
    length: int

    @property
    def last(self) -> float:
        """Time of the last grid point (the last snapshot)."""
        return self.start + self.spacing * (self.length - 1)

    def horizon(self, target_t: float) -> float:
        """Grid intervals from the last snapshot to ``target_t``, floored at 0.

        Targets at or before the last snapshot map to 0: the forecasters then return the last
        grid value (the latest observation), never an in-sample fit.
        """
        return max(0.0, (target_t - self.last) / self.spacing)


def resample_even(t: np.ndarray, values: np.ndarray) -> tuple[EvenGrid, np.ndarray]:
    """Resample every channel of a history onto an even grid by linear interpolation.

    Args:
        t: (T,) time coordinates, T >= 2.
        values: (T, C) values, one column per channel.

    Returns:
        The grid and the (T, C) float64 values on it (``values`` itself, as float64, when ``t``
        is already evenly spaced).

    Raises:
        ForecasterError: when ``t`` is not strictly increasing (e.g. a cumulative-LR clock over
            steps with a learning rate of zero).
    """
    t = np.asarray(t, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if t.shape[0] < 2:
        raise ForecasterError(f"an even time grid needs at least 2 snapshots; got {t.shape[0]}")
    gaps = np.diff(t)
    if np.any(gaps <= 0):
        raise ForecasterError(
            "the time coordinate must be strictly increasing; got a repeated or decreasing "
            "time (a learning rate of 0 makes cumulative LR stall). Use time_axis='step'"
        )
    grid = EvenGrid(
        start=float(t[0]), spacing=float((t[-1] - t[0]) / (t.shape[0] - 1)), length=int(t.shape[0])
    )
    if np.allclose(gaps, grid.spacing, rtol=_EVEN_RTOL, atol=0.0):
        return grid, values
    points = grid.start + grid.spacing * np.arange(grid.length)
    points[-1] = t[-1]  # pin the end so the last grid value is exactly the last observation
    # One set of interpolation weights serves every channel: no per-channel np.interp loop.
    right = np.clip(np.searchsorted(t, points, side="right"), 1, t.shape[0] - 1)
    left = right - 1
    weight = ((points - t[left]) / (t[right] - t[left]))[:, None]
    return grid, values[left] * (1.0 - weight) + values[right] * weight


#: Forecasts whole horizons: ``horizons`` → arrays of shape (len(horizons), C).
HorizonForecast = Callable[[list[int]], tuple[np.ndarray, ...]]


def at_horizon(forecast: HorizonForecast, horizon: float) -> tuple[np.ndarray, ...]:
    """Evaluate ``forecast`` at a possibly fractional horizon.

    Whole horizons are forecast directly; otherwise the results at ``⌊H⌋`` and ``⌊H⌋ + 1`` are
    interpolated linearly (the grid's values are linear in time between points, too).

    Args:
        forecast: returns, for a list of whole horizons, arrays of shape (len(horizons), C).
        horizon: H >= 0 from :meth:`EvenGrid.horizon`.

    Returns:
        One (C,) array per array ``forecast`` returns.
    """
    whole = math.floor(horizon)
    fraction = horizon - whole
    if fraction == 0.0:
        return tuple(array[0] for array in forecast([whole]))
    return tuple(
        (1.0 - fraction) * array[0] + fraction * array[1] for array in forecast([whole, whole + 1])
    )
