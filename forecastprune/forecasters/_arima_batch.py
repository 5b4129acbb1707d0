"""ARIMA(p, d, q) estimated for every channel at once, with numpy only.

Estimation is Hannan–Rissanen conditional least squares, batched over channels:

1. difference each series ``d`` times and scale it to unit RMS (so one tiny ridge term means the
   same thing for a channel at γ ≈ 1 and one at γ ≈ 1e-4);
2. when ``q > 0``, fit a long AR(m) by Yule–Walker (a batched Levinson–Durbin recursion) and take
   its residuals as estimates of the innovations;
3. regress the differenced series on its ``p`` lags, the ``q`` lagged innovations and, when asked,
   an intercept: the per-channel normal equations ``XᵀX β = Xᵀy`` are built with ``einsum`` from
   shifted views (no (C, T, k) design tensor) and solved by one batched ``np.linalg.solve``;
4. pull explosive AR / non-invertible MA roots back inside the unit circle, then recompute the
   innovations by the ARMA recursion (a loop over time, vectorized over channels) for the
   residual variance and the forecast's starting state.

Forecasts use the ARIMA as one ARMA(p + d, q) in levels, written as a companion (state-space)
matrix ``M`` over ``[y_t … y_{t-p-d+1}, ε_t … ε_{t-q+1}, 1]``. ``M^H`` and the MA(∞) variance
sum ``Σ_{j<H} M^j g gᵀ M^jᵀ`` (``g`` = where one innovation enters) come from the same
log2(H) matrix squarings, so a forecast 5,000 records ahead costs about what one 10 ahead does.
The psi-weights ψ_j are ``(M^j g)[0]``, so the variance is exactly σ² Σ_{j<H} ψ_j².

Channels whose history is constant are flagged ``degenerate`` and forecast their last value
with zero variance. Channels whose differenced series does not vary (to rounding: a constant,
or an exact line when d = 1) skip the regression instead of fitting noise (or 0/0): their
coefficients are zero, their intercept (when the model has one) is the series' mean, and their
variance is zero, so an exact line with ``trend="c"`` extrapolates exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# A differenced series smaller than this fraction of the level is rounding noise, not dynamics.
_DEGENERATE_RTOL = 1e-9
# Ridge on the standardized normal equations (diagonal ≈ number of rows): keeps constant and
# collinear channels solvable while moving well-posed estimates by ~1e-8 relative.
_RIDGE = 1e-8
# Largest AR / MA root modulus allowed: CLS can land on |root| ≥ 1 for short or trending series,
# and an explosive root turns a far-horizon forecast into ±inf.
_MAX_ROOT = 0.999


def required_history(p: int, d: int, q: int, constant: bool) -> int:
    """Fewest snapshots ARIMA(p, d, q) needs: the lags plus three residual degrees of freedom."""
    first_row = p if q == 0 else max(p, q, 1) + q
    return d + first_row + p + q + int(constant) + 3


def _long_ar_order(n: int, p: int, q: int) -> int:
    """Order of the long AR of Hannan–Rissanen step 1: about log(n)², at most n / 4."""
    return max(p, q, 1, min(int(np.log(n) ** 2), n // 4))


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
        n_channels, p = self.ar.shape
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


def fit_batched(y: np.ndarray, p: int, d: int, q: int, constant: bool) -> BatchedArimaFit:
    """Fit ARIMA(p, d, q) to every column of ``y``.

    Args:
        y: (n, C) evenly spaced values, n >= :func:`required_history`.
        p: AR order.
        d: differencing order.
        q: MA order.
        constant: include an intercept in the differenced series (a drift when d >= 1).

    Returns:
        The fitted coefficients of every channel.
    """
    y = np.asarray(y, dtype=np.float64)
    w = np.diff(y, n=d, axis=0)
    degenerate, still, scale = _degeneracy(y, w, constant)
    ws = w / scale
    eps_long = _long_ar_innovations(ws, p, q, constant) if q else None
    beta = _regress(ws, eps_long, p, q, constant)
    # A differenced series without variation has no dynamics to estimate: it is its mean.
    beta[still] = 0.0
    if constant:
        beta[still, -1] = ws[:, still].mean(axis=0)
    ar = _shrink_roots(beta[:, :p], sign=1.0)
    ma = _shrink_roots(beta[:, p : p + q], sign=-1.0)
    intercept = beta[:, -1] if constant else np.zeros(y.shape[1])
    eps = _arma_innovations(ws, ar, ma, intercept)
    eps[:, still] = 0.0
    dof = np.maximum(ws.shape[0] - p - (p + q + int(constant)), 1)
    sigma2 = np.einsum("tc,tc->c", eps[p:], eps[p:]) / dof * scale**2
    levels = max(p + d, 1)
    return BatchedArimaFit(
        ar=ar,
        ma=ma,
        intercept=intercept * scale,
        sigma2=sigma2,
        degenerate=degenerate,
        y_tail=y[::-1][:levels].copy(),
        eps_tail=(eps[::-1][:q] * scale).copy(),
        d=d,
    )


def _degeneracy(
    y: np.ndarray, w: np.ndarray, constant: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Flag channels with nothing to model; return them and a safe per-channel scale of ``w``.

    Returns:
        ``degenerate`` (the levels are constant: forecast the last value), ``still`` (the
        differenced series does not vary, to rounding: no regression) and the scale.
    """
    level = np.max(np.abs(y), axis=0)
    spread = np.std(w, axis=0) if constant else np.sqrt(np.mean(w * w, axis=0))
    tolerance = _DEGENERATE_RTOL * level
    degenerate = np.ptp(y, axis=0) <= tolerance
    still = degenerate | (spread <= tolerance)
    return degenerate, still, np.where(still, 1.0, spread)


def _long_ar_innovations(ws: np.ndarray, p: int, q: int, constant: bool) -> np.ndarray:
    """Hannan–Rissanen step 1: residuals of a long Yule–Walker AR, zero before its order."""
    n = ws.shape[0]
    order = _long_ar_order(n, p, q)
    x = ws - ws.mean(axis=0) if constant else ws
    # Channel-major, so every sum over time below runs over contiguous memory.
    xt = np.ascontiguousarray(x.T)
    coefficients = _levinson_durbin(xt, order)
    # lags[c, t, k] = x[t + order - 1 - k, c]: lag k + 1 of row t + order (a view, no copy).
    lags = sliding_window_view(xt, order, axis=1)[:, :-1, ::-1]
    eps = np.zeros_like(x)
    eps[order:] = (xt[:, order:] - np.matmul(lags, coefficients[:, :, None])[..., 0]).T
    return eps


def _levinson_durbin(xt: np.ndarray, order: int) -> np.ndarray:
    """(C, order) Yule–Walker AR coefficients of every row of ``xt`` (C, n), by Levinson–Durbin."""
    n_channels, n = xt.shape
    acov = np.stack([np.einsum("ct,ct->c", xt[:, k:], xt[:, : n - k]) / n
                     for k in range(order + 1)])
    phi = np.zeros((n_channels, order))
    error = acov[0].copy()
    for k in range(1, order + 1):
        accumulated = acov[k] - np.einsum("cj,jc->c", phi[:, : k - 1], acov[k - 1 : 0 : -1])
        safe = error > 0
        reflection = np.where(safe, accumulated / np.where(safe, error, 1.0), 0.0)
        if k > 1:
            phi[:, : k - 1] -= reflection[:, None] * phi[:, k - 2 :: -1]
        phi[:, k - 1] = reflection
        error = error * (1.0 - reflection**2)
    return phi


def _regress(
    ws: np.ndarray, eps: np.ndarray | None, p: int, q: int, constant: bool
) -> np.ndarray:
    """Hannan–Rissanen step 2: batched least squares on lags, lagged innovations, intercept."""
    n = ws.shape[0]
    first = p if q == 0 else _long_ar_order(n, p, q) + q
    target = ws[first:]
    columns = [ws[first - i : n - i] for i in range(1, p + 1)]
    columns += [eps[first - j : n - j] for j in range(1, q + 1)] if q else []
    if constant:
        columns.append(np.ones_like(target))
    k = len(columns)
    if k == 0:
        return np.zeros((ws.shape[1], 0))
    gram = np.empty((ws.shape[1], k, k))
    for i in range(k):
        for j in range(i, k):
            gram[:, i, j] = gram[:, j, i] = np.einsum("tc,tc->c", columns[i], columns[j])
    rhs = np.stack([np.einsum("tc,tc->c", column, target) for column in columns], axis=1)
    gram += _RIDGE * target.shape[0] * np.eye(k)
    return np.linalg.solve(gram, rhs[..., None])[..., 0]


def _shrink_roots(coefficients: np.ndarray, sign: float) -> np.ndarray:
    """Scale a lag polynomial so every root of its companion lies within ``_MAX_ROOT``.

    Multiplying the i-th coefficient by ρ^i multiplies every root by ρ, so shape is kept.
    ``sign`` is +1 for AR (1 - Σφ B^i) and -1 for MA (1 + Σθ B^i).
    """
    n_channels, order = coefficients.shape
    if order == 0:
        return coefficients
    companion = np.zeros((n_channels, order, order))
    companion[:, 0, :] = sign * coefficients
    companion[:, np.arange(1, order), np.arange(order - 1)] = 1.0
    radius = np.max(np.abs(np.linalg.eigvals(companion)), axis=1) if order > 1 else np.abs(
        coefficients[:, 0]
    )
    rho = np.minimum(1.0, _MAX_ROOT / np.maximum(radius, 1e-300))
    return coefficients * rho[:, None] ** np.arange(1, order + 1)


def _arma_innovations(
    ws: np.ndarray, ar: np.ndarray, ma: np.ndarray, intercept: np.ndarray
) -> np.ndarray:
    """Conditional innovations of ARMA(p, q) on ``ws``: zero for the first p rows."""
    n = ws.shape[0]
    p, q = ar.shape[1], ma.shape[1]
    residual = ws - intercept
    residual[:p] = 0.0
    for i in range(1, p + 1):
        residual[p:] -= ar[:, i - 1] * ws[p - i : n - i]
    if q == 0:
        return residual
    eps = np.zeros_like(ws)
    for t in range(p, n):  # the MA part feeds back on itself: a loop over time, not channels
        eps[t] = residual[t] - sum(ma[:, j - 1] * eps[t - j] for j in range(1, min(q, t) + 1))
    return eps
