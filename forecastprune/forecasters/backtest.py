"""Where inside a γ history a forecaster can be backtested at the real horizon.

``auto`` chooses among candidates, the learned forecasters check themselves and the
``confidence`` timing rule trusts a forecast by the same rule: fit on the history up to an
*origin*, predict a seen *target*, with the target's horizon-to-history ratio matched to the
real forecast's (as far as the history allows).
"""

from __future__ import annotations

import numpy as np

#: the seen points backtests predict, as fractions of the history's time span
TARGET_FRACTIONS = (1.0, 0.85, 0.7)
#: fewest snapshots a backtest origin may fit on (a trend needs two points and a spare)
MIN_ORIGIN = 3
#: and at least this share of the snapshots up to its target: early in a run the matched
#: horizon ratio leaves the origin a handful of snapshots, too few to tell models apart
MIN_ORIGIN_SHARE = 0.5


def horizon_ratio(t: np.ndarray, target_t: float) -> float:
    """How far ``target_t`` lies past the history's end, in units of the history's span."""
    span = float(t[-1] - t[0])
    return max(float(target_t - t[-1]), 0.0) / span if span > 0.0 else float("inf")


def backtest_pairs(t: np.ndarray, target_t: float, count: int) -> list[tuple[int, int]]:
    """(origin, target) index pairs whose horizon-to-history ratio matches the real one.

    Args:
        t: (T,) time coordinates of the history (steps or cumulative LR).
        target_t: the real target's time coordinate.
        count: how many target points (from :data:`TARGET_FRACTIONS`).

    Returns:
        Distinct pairs with ``MIN_ORIGIN - 1 <= origin < target``; empty when the history is
        too short to backtest.
    """
    span = float(t[-1] - t[0])
    if len(t) < MIN_ORIGIN + 1 or span <= 0.0:
        return []
    ratio = horizon_ratio(t, target_t)
    pairs: list[tuple[int, int]] = []
    for fraction in TARGET_FRACTIONS[:count]:
        target = int(np.searchsorted(t, t[0] + fraction * span, side="right")) - 1
        origin_t = (t[target] + ratio * t[0]) / (1.0 + ratio)
        origin = int(np.searchsorted(t, origin_t, side="right")) - 1
        origin = max(origin, MIN_ORIGIN - 1, int(MIN_ORIGIN_SHARE * target))
        if origin < target and (origin, target) not in pairs:
            pairs.append((origin, target))
    return pairs
