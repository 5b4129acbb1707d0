"""Where the ranking changes after a cutoff: channels that cross the cut, by distance from it.

A forecaster can only beat ``naive`` (prune by the |γ| at the cutoff) on the channels whose side
of the cut changes between the cutoff and the end of training. These functions measure that set
and ask whether a channel's history says in advance that it will cross:

- :func:`side_changes` — how many channels cross, each way, and naive's IoU;
- :func:`cut_distance` — each channel's signed rank distance from the cut, as a share of the
  channels, in the threshold engine's own order (lowest score first, ties by lowest index);
- :func:`tied_across_cut` — channels whose side only the tie-break decides;
- :func:`bin_changers` — channels and crossers per distance bin;
- :func:`toward_cut` — a feature signed so that a high value pushes a channel across the cut;
- :func:`auc` — the rank-based (Mann–Whitney) area under the ROC curve of one feature,
  optionally within strata (runs, sides of the cut) only.

Pure numpy and scipy; no forecaster, store or torch involved.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from forecastprune.core import metrics

#: default distance bins, as shares of the channels: 0–2 %, 2–5 %, 5–10 %, 10–20 %, > 20 %
BIN_EDGES = (0.0, 0.02, 0.05, 0.10, 0.20, math.inf)


@dataclass(frozen=True)
class SideChanges:
    """How the pruned set at a cutoff differs from the pruned set at the end.

    Attributes:
        channels: channels compared.
        pruned_end: channels the final |γ| prunes.
        down: kept at the cutoff, pruned at the end.
        up: pruned at the cutoff, kept at the end.
        iou: IoU of the two pruned sets (naive's score).
    """

    channels: int
    pruned_end: int
    down: int
    up: int
    iou: float

    @property
    def changed(self) -> int:
        """Channels on the other side of the cut at the end."""
        return self.down + self.up

    @property
    def share_of_channels(self) -> float:
        return self.changed / self.channels if self.channels else math.nan

    @property
    def share_of_pruned(self) -> float:
        """The end's pruned channels that the cutoff kept (1 − naive's recall)."""
        return self.down / self.pruned_end if self.pruned_end else math.nan


def side_changes(pruned_now: np.ndarray, pruned_end: np.ndarray) -> SideChanges:
    """Compare the pruned set at a cutoff with the pruned set at the end.

    Raises:
        ValueError: when the masks differ in shape.
    """
    now, end = np.asarray(pruned_now, dtype=bool), np.asarray(pruned_end, dtype=bool)
    if now.shape != end.shape:
        raise ValueError(f"masks must have the same shape; got {now.shape} and {end.shape}")
    return SideChanges(
        channels=int(now.size),
        pruned_end=int(end.sum()),
        down=int(np.count_nonzero(~now & end)),
        up=int(np.count_nonzero(now & ~end)),
        iou=metrics.iou(now, end),
    )


def engine_rank(scores: np.ndarray) -> np.ndarray:
    """(C,) position of every channel in the engine's pruning order (0 = pruned first).

    The threshold engine orders lone channels by ``(score, index)``; the same order here keeps
    "below the cut" identical to "pruned" under a plain global ratio.
    """
    scores = np.asarray(scores, dtype=np.float64)
    order = np.lexsort((np.arange(scores.size), scores))
    rank = np.empty(scores.size, dtype=np.int64)
    rank[order] = np.arange(scores.size)
    return rank


def cut_distance(scores: np.ndarray, n_pruned: int) -> np.ndarray:
    """Signed rank distance of every channel from the cut that prunes the ``n_pruned`` lowest.

    The cut lies between ranks ``n_pruned − 1`` and ``n_pruned``; a channel's distance is
    ``(rank + ½ − n_pruned) / C``: negative below the cut (pruned), positive above it, and the
    two channels beside the cut are ``±½ / C`` from it.

    Raises:
        ValueError: when ``n_pruned`` lies outside ``[0, C]``.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if not 0 <= n_pruned <= scores.size:
        raise ValueError(f"n_pruned must lie in [0, {scores.size}]; got {n_pruned}")
    return (engine_rank(scores) + 0.5 - n_pruned) / max(scores.size, 1)


def tied_across_cut(scores: np.ndarray, n_pruned: int) -> np.ndarray:
    """(C,) bool: channels whose score equals a score on the other side of the cut.

    When the last pruned and the first kept channel score the same, every channel with that
    score sits on a side chosen by the engine's tie-break (lowest index first), not by its
    value; such a block can be large when γ is stored at low precision early in training.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if not 0 < n_pruned < scores.size:
        return np.zeros(scores.shape, dtype=bool)
    ordered = np.sort(scores)
    if ordered[n_pruned - 1] != ordered[n_pruned]:
        return np.zeros(scores.shape, dtype=bool)
    return scores == ordered[n_pruned]


@dataclass(frozen=True)
class BinCounts:
    """Channels and crossers per distance bin.

    Attributes:
        edges: the bin edges (shares of the channels); bin ``i`` is ``[edges[i], edges[i+1])``.
        channels: (B,) channels per bin.
        changed: (B,) crossers per bin.
    """

    edges: tuple[float, ...]
    channels: np.ndarray
    changed: np.ndarray

    def __add__(self, other: BinCounts) -> BinCounts:
        if self.edges != other.edges:
            raise ValueError(f"bins differ: {self.edges} vs {other.edges}")
        return BinCounts(self.edges, self.channels + other.channels, self.changed + other.changed)

    @property
    def share_changed(self) -> np.ndarray:
        """(B,) the crossers' share of each bin's channels (NaN for an empty bin)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.channels > 0, self.changed / np.maximum(self.channels, 1), np.nan)

    @property
    def share_of_changers(self) -> np.ndarray:
        """(B,) each bin's share of all crossers (NaN when nothing crossed)."""
        total = int(self.changed.sum())
        return self.changed / total if total else np.full(self.changed.shape, np.nan)


def bin_changers(
    distance: np.ndarray, changed: np.ndarray, edges: tuple[float, ...] = BIN_EDGES
) -> BinCounts:
    """Count channels and crossers per bin of ``|distance|``.

    Raises:
        ValueError: on unsorted edges, or arrays of different shapes.
    """
    distance, changed = np.abs(np.asarray(distance, np.float64)), np.asarray(changed, bool)
    if distance.shape != changed.shape:
        raise ValueError(f"distance {distance.shape} and changed {changed.shape} differ")
    if len(edges) < 2 or list(edges) != sorted(edges):
        raise ValueError(f"edges must be ≥ 2 increasing values; got {edges}")
    which = np.digitize(distance, edges[1:-1], right=False)  # bin i: edges[i] ≤ |d| < edges[i+1]
    n = len(edges) - 1
    return BinCounts(
        tuple(edges),
        np.bincount(which, minlength=n),
        np.bincount(which, weights=changed, minlength=n).astype(np.int64),
    )


def toward_cut(feature: np.ndarray, below: np.ndarray) -> np.ndarray:
    """A feature that is high when it pushes a channel *up*, signed toward the cut.

    Below the cut a channel crosses by rising, above it by falling, so the feature keeps its
    sign below and flips it above: one AUC then scores both directions of crossing. Score it
    with the side of the cut among the :func:`auc` strata: a level-like feature (|γ|, a layer's
    mean) signed this way is high on one side and low on the other, and without strata its AUC
    would only say which side crosses more often.
    """
    feature = np.asarray(feature, dtype=np.float64)
    return np.where(np.asarray(below, dtype=bool), feature, -feature)


def auc(score: np.ndarray, target: np.ndarray, strata: np.ndarray | None = None) -> float:
    """Area under the ROC curve of ``score`` for the binary ``target`` (ties count ½).

    Computed as the Mann–Whitney statistic from average ranks: 0.5 is no information, 1 a
    perfect ranking of positives above negatives, below 0.5 the opposite direction. With
    ``strata``, a positive is compared only with negatives of its own stratum (e.g. the same
    run and side of the cut), so differences *between* strata — one run's scale, or one side
    crossing more often than the other — cannot pass for information about single channels.

    Args:
        score: (N,) the feature.
        target: (N,) bool, the positives.
        strata: (N,) stratum labels, or None for one stratum.

    Returns:
        The AUC over every (positive, negative) pair that is compared, or NaN when there is
        no such pair.

    Raises:
        ValueError: when the arrays differ in shape.
    """
    score, target = np.asarray(score, dtype=np.float64), np.asarray(target, dtype=bool)
    labels = np.zeros(score.shape, np.int64) if strata is None else np.asarray(strata)
    if not score.shape == target.shape == labels.shape:
        raise ValueError(
            f"score {score.shape}, target {target.shape} and strata "
            f"{labels.shape} must have one shape"
        )
    wins = pairs = 0.0
    for label in np.unique(labels):
        inside = labels == label
        s, y = score[inside], target[inside]
        positives, negatives = int(y.sum()), int((~y).sum())
        if positives and negatives:
            ranks = stats.rankdata(s)
            wins += ranks[y].sum() - positives * (positives + 1) / 2
            pairs += positives * negatives
    return float(wins / pairs) if pairs else math.nan
