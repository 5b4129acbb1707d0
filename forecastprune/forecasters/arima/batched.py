"""ARIMA(p, d, q) estimated for every channel at once, with numpy only.

Estimation is Hannan–Rissanen conditional least squares, batched over channels:

1. difference each series ``d`` times and scale it to unit RMS (so one tiny ridge term means the
   same thing for a channel at γ ≈ 1 and one at γ ≈ 1e-4);
2. when ``q > 0``, fit a long AR(m) by Yule–Walker (a batched Levinson–Durbin recursion) and take
   its residuals as estimates of the innovations;
3. regress the differenced series on its ``p`` lags, the ``q`` lagged innovations and, when asked,
   an intercept: the per-channel normal equations ``XᵀX β = Xᵀy`` are built with ``einsum`` from
   shifted views (no (C, T, k) design tensor) and solved by one batched ``np.linalg.solve``;
4. pull explosive AR / non-invertible MA roots back inside the unit circle;
5. when ``q > 0``, polish every channel's coefficients by a few batched Levenberg–Marquardt
   steps on the conditional sum of squares (:func:`refine_css`): step 3 regresses on
   *estimated* innovations, which biases θ badly when the MA root is near the unit circle;
6. recompute the innovations by the ARMA recursion (a loop over time, vectorized over
   channels) for the residual variance and the forecast's starting state.

Statsmodels fits the *exact* Gaussian likelihood (Kalman filter, stationary start) instead of
the conditional sum of squares; the two differ most for near-cancelling AR/MA roots, which are
common on γ increments, so the estimates agree closely but not exactly.

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
#: Default most Levenberg–Marquardt steps of :func:`refine_css` (it stops earlier once no
#: channel's sum of squares improves by more than ``_CSS_RTOL``).
REFINE_STEPS = 4
_CSS_RTOL = 1e-7


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
    beta = _shrink_beta(beta, p, q)
    if q and refine:
        beta = refine_css(ws, beta, p, q, constant, refine, frozen=still)
    ar, ma = beta[:, :p], beta[:, p : p + q]
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
    order = coefficients.shape[1]
    if order == 0:
        return coefficients
    radius = _largest_root(sign * coefficients)
    rho = np.minimum(1.0, _MAX_ROOT / np.maximum(radius, 1e-300))
    return coefficients * rho[:, None] ** np.arange(1, order + 1)


def _largest_root(a: np.ndarray) -> np.ndarray:
    """(C,) largest root modulus of ``z^k - a_1 z^(k-1) - … - a_k`` for (C, k) ``a``.

    Orders 1 and 2 in closed form (the common ARIMA orders, and cheap enough to run at every
    refinement step); higher orders through the companion matrix's eigenvalues.
    """
    n_channels, order = a.shape
    if order == 1:
        return np.abs(a[:, 0])
    if order == 2:
        root = np.sqrt((a[:, 0] ** 2 + 4.0 * a[:, 1]).astype(complex))
        return np.maximum(np.abs(a[:, 0] + root), np.abs(a[:, 0] - root)) / 2.0
    companion = np.zeros((n_channels, order, order))
    companion[:, 0, :] = a
    companion[:, np.arange(1, order), np.arange(order - 1)] = 1.0
    return np.max(np.abs(np.linalg.eigvals(companion)), axis=1)


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


def _shrink_beta(beta: np.ndarray, p: int, q: int) -> np.ndarray:
    """``beta`` with its AR part made stationary and its MA part invertible (a copy)."""
    beta = beta.copy()
    beta[:, :p] = _shrink_roots(beta[:, :p], sign=1.0)
    beta[:, p : p + q] = _shrink_roots(beta[:, p : p + q], sign=-1.0)
    return beta


def refine_css(
    ws: np.ndarray,
    beta: np.ndarray,
    p: int,
    q: int,
    constant: bool,
    steps: int,
    frozen: np.ndarray | None = None,
) -> np.ndarray:
    """Minimize every channel's conditional sum of squares by batched Levenberg–Marquardt.

    Hannan–Rissanen regresses on *estimated* innovations, so its MA coefficients are biased
    where the MA root is near the unit circle; this polishes all channels together. Each step
    solves the damped Gauss–Newton system of every channel (one batched k × k solve), keeps the
    roots inside the unit circle, and accepts the step only for channels whose sum of squares
    went down (the others keep their parameters and raise their damping), so the sum of squares
    never increases. Channels drop out once an accepted step gains less than ``_CSS_RTOL`` of
    their sum of squares, so later steps cost only what is still moving.

    Args:
        ws: (n, C) differenced, scaled series.
        beta: (C, k) starting ``[φ_1..φ_p, θ_1..θ_q, c?]`` with admissible roots.
        p: AR order.
        q: MA order.
        constant: whether the last column of ``beta`` is an intercept.
        steps: most steps.
        frozen: (C,) channels to leave unchanged.

    Returns:
        (C, k) refined coefficients.
    """
    beta = beta.copy()
    active = np.flatnonzero(~frozen) if frozen is not None else np.arange(beta.shape[0])
    # np.take keeps time-major memory (fancy indexing would put channels outermost).
    subset = ws if active.size == ws.shape[1] else np.take(ws, active, axis=1)
    series = _css_regressors(subset, p, constant)
    current = beta[active]
    sse, gram, grad = _css_normal_equations(series, current, p, q, constant)
    damping = np.full(active.size, 1e-3)
    done = np.zeros(active.size, dtype=bool)
    for _ in range(steps):
        if done.all():
            break
        candidate = _shrink_beta(current - _damped_step(gram, grad, damping), p, q)
        new_sse, new_gram, new_grad = _css_normal_equations(series, candidate, p, q, constant)
        better = np.isfinite(new_sse) & (new_sse < sse) & ~done
        converged = better & (sse - new_sse <= _CSS_RTOL * sse)
        current[better], gram[better], grad[better] = (
            candidate[better], new_gram[better], new_grad[better])
        sse = np.where(better, new_sse, sse)
        damping = np.where(better, damping / 10.0, damping * 10.0)
        beta[active] = current
        done |= converged | (damping >= 1e8)  # a channel damped this hard has stalled
        if done.mean() > 0.5:  # compacting copies every series: worth it once half are done
            keep = np.flatnonzero(~done)
            active, current, series = active[keep], current[keep], np.take(series, keep, 2)
            sse, gram, grad, damping = sse[keep], gram[keep], grad[keep], damping[keep]
            done = done[keep]
    return beta


def _damped_step(gram: np.ndarray, grad: np.ndarray, damping: np.ndarray) -> np.ndarray:
    """(C, k) Levenberg–Marquardt steps ``(JᵀJ + λ·diag(JᵀJ))⁻¹ Jᵀe`` (Marquardt's scaling)."""
    diagonal = np.einsum("ckk->ck", gram)
    system = gram + (damping[:, None] * diagonal + 1e-12)[:, :, None] * np.eye(gram.shape[-1])
    return np.linalg.solve(system, grad[..., None])[..., 0]


def _css_regressors(ws: np.ndarray, p: int, constant: bool) -> np.ndarray:
    """(n - p, 1 + p + c, C): ``[w_t, w_{t-1} … w_{t-p}, 1?]`` for t ≥ p, the CSS inputs."""
    n, n_channels = ws.shape
    stacked = np.empty((n - p, 1 + p + int(constant), n_channels))
    for i in range(p + 1):
        stacked[:, i] = ws[p - i : n - i]
    if constant:
        stacked[:, -1] = 1.0
    return stacked


def _css_normal_equations(
    regressors: np.ndarray, beta: np.ndarray, p: int, q: int, constant: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum of squares, ``JᵀJ`` and ``Jᵀe`` of the conditional innovations ``e`` at ``beta``.

    ``e_t = w_t - Σφ_i w_{t-i} - c - Σθ_j e_{t-j}`` for t ≥ p (zero before): the AR residual
    through the inverse MA filter ``1 / θ(B)`` from a zero start. That filter is linear, so with
    ``Z`` = the filtered columns of ``regressors`` (:func:`_css_regressors`),
    ``e = Z a`` for ``a = [1, -φ, -c]``, the derivatives for φ and c are ``-Z`` columns, and the
    derivative for ``θ_j`` is ``-F(e)`` delayed by j (the filter is also time-invariant): two
    filter passes give every column of J, and each entry of JᵀJ and Jᵀe is one dot product.

    Args:
        regressors: from :func:`_css_regressors`.
        beta: (C, k) ``[φ, θ, c?]``.
        p: AR order.
        q: MA order.
        constant: whether ``beta`` ends with an intercept.

    Returns:
        ((C,) sum of squares, (C, k, k) JᵀJ, (C, k) Jᵀe).
    """
    rows, _, n_channels = regressors.shape
    k = beta.shape[1]
    ma = beta[:, p : p + q].T
    filtered = _inverse_ma(regressors, ma)
    # Positions in β of the parameters whose derivative is minus filtered column 1, 2, …
    linear = list(range(p)) + list(range(p + q, k))
    eps = filtered[:, 0].copy()
    for column, position in enumerate(linear, start=1):
        eps -= beta[:, position] * filtered[:, column]
    twice = _inverse_ma(eps[:, None, :], ma)[:, 0]
    # Columns of J: -Z_m for the linear parameters, -F(e) delayed by j for θ_j.
    columns = [(position, filtered[:, column], 0) for column, position in enumerate(linear, 1)]
    columns += [(p + j - 1, twice[: rows - j], j) for j in range(1, q + 1)]
    gram = np.empty((n_channels, k, k))
    grad = np.empty((n_channels, k))
    for a, (row, left, lag_left) in enumerate(columns):
        grad[:, row] = -_dot(left, lag_left, eps, 0)
        for col, right, lag_right in columns[a:]:
            gram[:, row, col] = gram[:, col, row] = _dot(left, lag_left, right, lag_right)
    return np.einsum("tc,tc->c", eps, eps), gram, grad


def _dot(left: np.ndarray, lag_left: int, right: np.ndarray, lag_right: int) -> np.ndarray:
    """(C,) ``Σ_t a_t b_t`` of two columns that start ``lag`` rows late (zeros before)."""
    start = max(lag_left, lag_right)
    length = left.shape[0] + lag_left - start
    a = left[start - lag_left : start - lag_left + length]
    b = right[start - lag_right : start - lag_right + length]
    return np.einsum("tc,tc->c", a, b)


def _inverse_ma(x: np.ndarray, ma: np.ndarray) -> np.ndarray:
    """``z_t = x_t - Σ_j θ_j z_{t-j}`` from a zero start: (rows, m, C) ``x``, (q, C) θ.

    The recursion feeds back on itself, so it loops over time (vectorized over the m series
    and the channels), writing each row once.
    """
    z = np.empty_like(x)
    z[0] = x[0]
    scratch = np.empty_like(x[0])
    for t in range(1, x.shape[0]):
        lags = min(ma.shape[0], t)
        np.multiply(ma[0], z[t - 1], out=scratch)
        for j in range(2, lags + 1):
            scratch += ma[j - 1] * z[t - j]
        np.subtract(x[t], scratch, out=z[t])
    return z
