"""Levenberg–Marquardt refinement of ARMA coefficients on the conditional sum of squares.

Hannan–Rissanen (:mod:`.hannan_rissanen`) regresses on *estimated* innovations, so its MA
coefficients are biased where the MA root is near the unit circle; :func:`refine_css` polishes
every channel's coefficients together, with batched normal equations of the CSS Jacobian.
"""

from __future__ import annotations

import numpy as np

from .roots import shrink_beta

#: Default most Levenberg–Marquardt steps of :func:`refine_css` (it stops earlier once no
#: channel's sum of squares improves by more than ``_CSS_RTOL``).
REFINE_STEPS = 4
_CSS_RTOL = 1e-7


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
        candidate = shrink_beta(current - _damped_step(gram, grad, damping), p, q)
        new_sse, new_gram, new_grad = _css_normal_equations(series, candidate, p, q, constant)
        better = np.isfinite(new_sse) & (new_sse < sse) & ~done
        converged = better & (sse - new_sse <= _CSS_RTOL * sse)
        current[better], gram[better], grad[better] = (
            candidate[better],
            new_gram[better],
            new_grad[better],
        )
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
