"""Admissible ARMA roots: AR stationary, MA invertible, for every channel at once.

Conditional least squares can land on a root of modulus ≥ 1 for short or trending series, and
an explosive root turns a far-horizon forecast into ±inf; both estimation steps (Hannan–Rissanen
and the CSS refinement) pull roots back inside the unit circle with :func:`shrink_beta`.
"""

from __future__ import annotations

import numpy as np

# Largest AR / MA root modulus allowed.
_MAX_ROOT = 0.999


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


def shrink_beta(beta: np.ndarray, p: int, q: int) -> np.ndarray:
    """``beta`` with its AR part made stationary and its MA part invertible (a copy)."""
    beta = beta.copy()
    beta[:, :p] = _shrink_roots(beta[:, :p], sign=1.0)
    beta[:, p : p + q] = _shrink_roots(beta[:, p : p + q], sign=-1.0)
    return beta
