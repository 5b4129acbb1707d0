"""Mask and ranking metrics: how close a forecast's pruned set is to the finished run's.

Every mask here is a ``(C,)`` bool array of *pruned* channels in layout order. Set metrics follow
one convention for empty denominators: two empty sets agree perfectly (IoU 1, distance 0), and a
ratio with no defined value (precision of an empty prediction) is NaN, which the reports print
as ``n/a`` and write as ``null``.

The collapsed set
    Strong L1 sparsity drives many channels' final |γ| to ~0. The oracle's order *inside* that
    set is noise, so when a ratio's cut falls inside it, plain IoU measures luck. Two tools make
    that visible: :func:`tie_aware_iou`, which lets channels whose final |γ| is below ε count as
    prunable either way, and :func:`separation`, which says how clearly the oracle's cut stands
    out from the values around it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats


def _bool(mask: np.ndarray) -> np.ndarray:
    return np.asarray(mask, dtype=bool)


def iou(pred: np.ndarray, oracle: np.ndarray) -> float:
    """Intersection over union of two pruned sets (1.0 when both are empty)."""
    pred, oracle = _bool(pred), _bool(oracle)
    union = np.count_nonzero(pred | oracle)
    return 1.0 if union == 0 else float(np.count_nonzero(pred & oracle) / union)


def precision_recall(pred: np.ndarray, oracle: np.ndarray) -> tuple[float, float]:
    """Precision and recall of a predicted pruned set against the oracle's.

    Returns:
        ``(precision, recall)``: the share of predicted channels the oracle prunes too (NaN for
        an empty prediction), and the share of the oracle's channels the prediction finds (NaN
        for an empty oracle set).
    """
    pred, oracle = _bool(pred), _bool(oracle)
    hits = np.count_nonzero(pred & oracle)
    n_pred, n_oracle = np.count_nonzero(pred), np.count_nonzero(oracle)
    return (
        float(hits / n_pred) if n_pred else math.nan,
        float(hits / n_oracle) if n_oracle else math.nan,
    )


def mask_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Normalized Hamming distance: the fraction of channels on which two masks disagree.

    This is Early-Bird's mask distance (You et al., ICLR 2020).

    Raises:
        ValueError: when the masks differ in shape (a programming error, not user input).
    """
    a, b = _bool(a), _bool(b)
    if a.shape != b.shape:
        raise ValueError(f"masks must have the same shape; got {a.shape} and {b.shape}")
    return float(np.count_nonzero(a != b)) / a.size if a.size else 0.0


def spearman(pred: np.ndarray, oracle: np.ndarray) -> float:
    """Spearman ρ between predicted and final |γ| (NaN when either side is constant)."""
    pred, oracle = np.asarray(pred, dtype=np.float64), np.asarray(oracle, dtype=np.float64)
    if pred.size < 2 or np.ptp(pred) == 0 or np.ptp(oracle) == 0:
        return math.nan
    with warnings.catch_warnings():  # scipy warns on constant input; handled above
        warnings.simplefilter("ignore")
        return float(stats.spearmanr(pred, oracle).statistic)


def mae(pred: np.ndarray, oracle: np.ndarray) -> float:
    """Mean absolute error of predicted vs final |γ|."""
    return float(np.mean(np.abs(np.asarray(pred, np.float64) - np.asarray(oracle, np.float64))))


def collapsed_set(final_abs: np.ndarray, eps_rel: float = 1e-3) -> np.ndarray:
    """Channels whose final |γ| is below ε = ``eps_rel`` × the largest final |γ|.

    Args:
        final_abs: (C,) final |γ|.
        eps_rel: ε as a fraction of the largest final |γ|.

    Returns:
        (C,) bool mask of the collapsed set.
    """
    final_abs = np.asarray(final_abs, dtype=np.float64)
    return final_abs < eps_rel * float(final_abs.max(initial=0.0))


def tie_aware_iou(pred: np.ndarray, oracle: np.ndarray, collapsed: np.ndarray) -> float:
    """IoU in which collapsed channels count as prunable either way.

    Inside the collapsed set the oracle's choice is redrawn to agree with the prediction (its
    order there is noise); outside it the oracle's set stands. A prediction still pays for
    every channel it prunes outside the collapsed set that the oracle keeps, and for every
    oracle channel outside it that it keeps.

    Args:
        pred: (C,) predicted pruned set.
        oracle: (C,) the oracle's pruned set.
        collapsed: (C,) channels whose final |γ| is below ε (:func:`collapsed_set`).
    """
    pred, oracle, collapsed = _bool(pred), _bool(oracle), _bool(collapsed)
    return iou(pred, (oracle & ~collapsed) | (pred & collapsed))


@dataclass(frozen=True)
class Separation:
    """How clearly the oracle's cut at one ratio stands out.

    Attributes:
        cut: the final |γ| of the lowest kept prunable channel (the oracle's cut).
        gap: median of the ``window`` kept values just above the cut minus the median of the
            ``window`` pruned values just below it.
        spread: the interquartile range of all prunable final |γ| (the full range when the
            IQR is zero).
        score: ``gap / spread``: near 0 means the cut lies in a flat stretch where the oracle's
            order is fragile; NaN when every value is equal.
        inside_collapsed: True when the cut lies inside the collapsed set (cut < ε), so channels
            on both sides of it are ~0 and plain IoU is near chance.
    """

    cut: float
    gap: float
    spread: float
    score: float
    inside_collapsed: bool


def separation(
    final_abs: np.ndarray,
    prunable: np.ndarray,
    n_pruned: int,
    eps: float,
    window: float = 0.05,
) -> Separation:
    """The oracle's separation at the global cut that prunes its ``n_pruned`` lowest channels.

    The cut is the global rule's, before per-layer floors give channels back: channels a
    floor rescues lie below it and would blur the picture.

    Args:
        final_abs: (C,) final |γ| (under coupling, each channel's group score).
        prunable: (C,) the channels the policy may prune.
        n_pruned: how many of them the global rule prunes (a ratio's requested count).
        eps: the collapsed-set threshold (absolute).
        window: neighbours on each side, as a fraction of the prunable channels (at least 1).

    Returns:
        The :class:`Separation`; with nothing pruned or nothing kept, gap and score are NaN.
    """
    values = np.sort(np.asarray(final_abs, dtype=np.float64)[_bool(prunable)])
    if values.size == 0:
        return Separation(math.nan, math.nan, 0.0, math.nan, False)
    q1, q3 = np.percentile(values, [25, 75])
    spread = float(q3 - q1) if q3 > q1 else float(np.ptp(values))
    below, above = values[:n_pruned], values[n_pruned:]
    cut = float(above[0]) if above.size else math.inf
    if below.size == 0 or above.size == 0:
        return Separation(cut, math.nan, spread, math.nan, False)
    w = max(1, int(window * values.size))
    gap = float(np.median(above[:w]) - np.median(below[-w:]))
    score = gap / spread if spread > 0 else math.nan
    return Separation(cut, gap, spread, score, bool(cut < eps))


def early_bird_step(
    steps: np.ndarray, masks: np.ndarray, window: int = 4, tolerance: float = 0.1
) -> int | None:
    """The first step whose mask is within ``tolerance`` of each of the previous ``window``.

    Args:
        steps: (K,) the steps at which the masks were taken, evenly spaced (e.g. per epoch).
        masks: (K, C) bool pruned sets, one per step.
        window: how many earlier masks the newest is compared with (Early-Bird: 4).
        tolerance: largest normalized Hamming distance allowed (Early-Bird: 0.1).

    Returns:
        The Early-Bird step, or None when the masks never settle.
    """
    masks = _bool(masks)
    for k in range(window, len(steps)):
        if all(mask_distance(masks[k], masks[k - j]) <= tolerance for j in range(1, window + 1)):
            return int(steps[k])
    return None
