"""ARIMA(p, d, q) estimated for every channel at once, with numpy only: the batched backend.

Estimation is Hannan–Rissanen conditional least squares, batched over channels:

1. difference each series ``d`` times and scale it to unit RMS (so one tiny ridge term means the
   same thing for a channel at γ ≈ 1 and one at γ ≈ 1e-4);
2. when ``q > 0``, fit a long AR(m) by Yule–Walker (a batched Levinson–Durbin recursion) and take
   its residuals as estimates of the innovations;
3. regress the differenced series on its ``p`` lags, the ``q`` lagged innovations and, when asked,
   an intercept: the per-channel normal equations ``XᵀX β = Xᵀy`` are built with ``einsum`` from
   shifted views (no (C, T, k) design tensor) and solved by one batched ``np.linalg.solve``;
4. pull explosive AR / non-invertible MA roots back inside the unit circle (:mod:`.roots`);
5. when ``q > 0``, polish every channel's coefficients by a few batched Levenberg–Marquardt
   steps on the conditional sum of squares (:mod:`.css_refine`): step 3 regresses on
   *estimated* innovations, which biases θ badly when the MA root is near the unit circle;
6. recompute the innovations by the ARMA recursion (a loop over time, vectorized over
   channels) for the residual variance and the forecast's starting state, which
   :class:`~.companion.BatchedArimaFit` forecasts from.

Statsmodels fits the *exact* Gaussian likelihood (Kalman filter, stationary start) instead of
the conditional sum of squares; the two differ most for near-cancelling AR/MA roots, which are
common on γ increments, so the estimates agree closely but not exactly.

Channels whose history is constant are flagged ``degenerate`` and forecast their last value
with zero variance. Channels whose differenced series does not vary (to rounding: a constant,
or an exact line when d = 1) skip the regression instead of fitting noise (or 0/0): their
coefficients are zero, their intercept (when the model has one) is the series' mean, and their
variance is zero, so an exact line with ``trend="c"`` extrapolates exactly.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .companion import BatchedArimaFit
from .css_refine import REFINE_STEPS, refine_css
from .roots import shrink_beta

# A differenced series smaller than this fraction of the level is rounding noise, not dynamics.
_DEGENERATE_RTOL = 1e-9
# Ridge on the standardized normal equations (diagonal ≈ number of rows): keeps constant and
# collinear channels solvable while moving well-posed estimates by ~1e-8 relative.
_RIDGE = 1e-8


def required_history(p: int, d: int, q: int, constant: bool) -> int:
    """Fewest snapshots ARIMA(p, d, q) needs: the lags plus three residual degrees of freedom."""
    first_row = p if q == 0 else max(p, q, 1) + q
    return d + first_row + p + q + int(constant) + 3


def _long_ar_order(n: int, p: int, q: int) -> int:
    """Order of the long AR of Hannan–Rissanen step 1: about log(n)², at most n / 4."""
    return max(p, q, 1, min(int(np.log(n) ** 2), n // 4))


def fit_batched(
    y: np.ndarray, p: int, d: int, q: int, constant: bool, refine: int = REFINE_STEPS
) -> BatchedArimaFit:
    """Fit ARIMA(p, d, q) to every column of ``y``.

    Args:
        y: (n, C) evenly spaced values, n >= :func:`required_history`.
        p: AR order.
        d: differencing order.
        q: MA order.
        constant: include an intercept in the differenced series (a drift when d >= 1).
        refine: most Levenberg–Marquardt steps on the conditional sum of squares after
            Hannan–Rissanen (only when q > 0; 0 keeps the Hannan–Rissanen estimates).

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
    beta = shrink_beta(beta, p, q)
    if q and refine:
        beta = refine_css(ws, beta, p, q, constant, refine, frozen=still)
    ar, ma = beta[:, :p], beta[:, p : p + q]
    intercept = beta[:, -1] if constant else np.zeros(y.shape[1])
    eps = arma_innovations(ws, ar, ma, intercept)
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
    acov = np.stack(
        [np.einsum("ct,ct->c", xt[:, k:], xt[:, : n - k]) / n for k in range(order + 1)]
    )
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


def _regress(ws: np.ndarray, eps: np.ndarray | None, p: int, q: int, constant: bool) -> np.ndarray:
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


def arma_innovations(
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
