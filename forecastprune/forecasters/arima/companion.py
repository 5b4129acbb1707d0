"""Forecasts of a batched ARIMA fit by companion-matrix powers, with MA(∞) variances.

Forecasts use the ARIMA as one ARMA(p + d, q) in levels, written as a companion (state-space)
matrix ``M`` over ``[y_t … y_{t-p-d+1}, ε_t … ε_{t-q+1}, 1]``. ``M^H`` and the MA(∞) variance
sum ``Σ_{j<H} M^j g gᵀ M^jᵀ`` (``g`` = where one innovation enters) come from the same
log2(H) matrix squarings, so a forecast 5,000 records ahead costs about what one 10 ahead does.
The psi-weights ψ_j are ``(M^j g)[0]``, so the variance is exactly σ² Σ_{j<H} ψ_j².
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BatchedArimaFit:
    """Fitted coefficients of every channel, and what forecasting from the end needs.

    Attributes:
        ar: (C, p) AR coefficients φ of the differenced series.
        ma: (C, q) MA coefficients θ.
        intercept: (C,) intercept c of the differenced series (0 without a constant); its mean
            is c / (1 - Σφ).
        sigma2: (C,) innovation variance.
        degenerate: (C,) channels forecast as their last value.
        y_tail: (max(p + d, 1), C) last levels, newest first.
        eps_tail: (q, C) last innovations, newest first.
        d: differencing order.
    """

    ar: np.ndarray
    ma: np.ndarray
    intercept: np.ndarray
    sigma2: np.ndarray
    degenerate: np.ndarray
    y_tail: np.ndarray
    eps_tail: np.ndarray
    d: int

    def forecast(self, horizons: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of every channel at each whole horizon (grid steps ahead, >= 0).

        Returns:
            (means, variances), each (len(horizons), C) float64.
        """
        pairs = [self._forecast_one(int(h)) for h in horizons]
        return np.stack([m for m, _ in pairs]), np.stack([v for _, v in pairs])

    def _forecast_one(self, horizon: int) -> tuple[np.ndarray, np.ndarray]:
        last = self.y_tail[0]
        if horizon <= 0:
            return last.copy(), np.zeros_like(last)
        companion, impulse = self._companion()
        power, gram = power_and_gramian(companion, impulse, horizon)
        state = self._state()
        mean = np.einsum("cj,jc->c", power[:, 0, :], state)
        variance = self.sigma2 * gram[:, 0, 0]
        mean = np.where(self.degenerate, last, mean)
        variance = np.where(self.degenerate, 0.0, np.maximum(variance, 0.0))
        return mean, variance

    def _levels_ar(self) -> np.ndarray:
        """(C, max(p + d, 1)) AR coefficients of φ(B)(1 - B)^d, the model in levels."""
        n_channels = self.ar.shape[0]
        poly = np.concatenate([np.ones((n_channels, 1)), -self.ar], axis=1)
        for _ in range(self.d):  # multiply by (1 - B)
            poly = np.concatenate([poly, np.zeros((n_channels, 1))], axis=1)
            poly[:, 1:] -= poly[:, :-1].copy()
        coefficients = -poly[:, 1:]
        width = self.y_tail.shape[0]
        padded = np.zeros((n_channels, width))
        padded[:, : coefficients.shape[1]] = coefficients
        return padded

    def _companion(self) -> tuple[np.ndarray, np.ndarray]:
        n_channels, q = self.ma.shape
        levels = self.y_tail.shape[0]
        size = levels + q + 1
        companion = np.zeros((n_channels, size, size))
        companion[:, 0, :levels] = self._levels_ar()
        companion[:, 0, levels : levels + q] = self.ma
        companion[:, 0, -1] = self.intercept
        shift = np.arange(1, levels)
        companion[:, shift, shift - 1] = 1.0
        # Row `levels` is the next innovation: zero in expectation. The rows after it shift.
        shift = np.arange(levels + 1, levels + q)
        companion[:, shift, shift - 1] = 1.0
        companion[:, -1, -1] = 1.0
        impulse = np.zeros(size)
        impulse[0] = 1.0
        if q:
            impulse[levels] = 1.0
        return companion, impulse

    def _state(self) -> np.ndarray:
        ones = np.ones((1, self.y_tail.shape[1]))
        return np.concatenate([self.y_tail, self.eps_tail, ones], axis=0)


def power_and_gramian(
    matrix: np.ndarray, impulse: np.ndarray, horizon: int
) -> tuple[np.ndarray, np.ndarray]:
    """``M^H`` and ``Σ_{j<H} M^j g gᵀ M^jᵀ`` for a batch of matrices, by binary powering.

    Uses ``S_{a+b} = S_a + M^a S_b M^aᵀ``, so both come from about 2·log2(H) batched matmuls.

    Args:
        matrix: (C, r, r) transition matrices M.
        impulse: (r,) vector g.
        horizon: H >= 1.

    Returns:
        (M^H (C, r, r), S_H (C, r, r)).
    """
    size = matrix.shape[-1]
    step_power = matrix
    step_gram = np.broadcast_to(np.outer(impulse, impulse), matrix.shape).copy()
    power = np.broadcast_to(np.eye(size), matrix.shape).copy()
    gram = np.zeros_like(matrix)
    remaining = int(horizon)
    while remaining:
        if remaining & 1:
            gram = gram + power @ step_gram @ np.swapaxes(power, -1, -2)
            power = power @ step_power
        remaining >>= 1
        if remaining:
            step_gram = step_gram + step_power @ step_gram @ np.swapaxes(step_power, -1, -2)
            step_power = step_power @ step_power
    return power, gram
