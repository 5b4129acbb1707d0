"""How forecasts become a block decision: each block's score and how many blocks go.

A block is scored by its *scoring BN* (the BN ending its residual branch, see
:mod:`~forecastprune.engine.blocks`): the ``mean`` (default) or ``max`` of that BN's predicted
|γ|. ``mean`` ranks a block by how much its branch still carries on average; ``max`` is the
conservative choice — a block goes only when *every* channel of its branch is near zero. The
lowest-scoring blocks go. Pure numpy, like :mod:`~forecastprune.engine.threshold`, so ``compare``
scores block decisions the way ``prune`` makes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import PruningError

if TYPE_CHECKING:
    from ..core.layout import ChannelLayout
    from .blocks import BlockPlan

#: how a block's score comes from its scoring BN's per-channel scores
BLOCK_REDUCES = ("mean", "max")


@dataclass(frozen=True)
class BlockSpec:
    """How many residual blocks to remove, and how a block is scored.

    Give exactly one of ``count`` and ``ratio``.

    Args:
        count: the number of blocks to remove.
        ratio: the fraction of the removable blocks to remove (rounded to the nearest count).
        reduction: a block's score from its scoring BN's |γ|: ``mean`` or ``max``.
    """

    count: int | None = None
    ratio: float | None = None
    reduction: str = "mean"

    def __post_init__(self) -> None:
        if (self.count is None) == (self.ratio is None):
            raise PruningError(
                f"give exactly one of count and ratio for the blocks to remove; "
                f"got count={self.count!r}, ratio={self.ratio!r}"
            )
        if self.count is not None and (
            isinstance(self.count, bool) or not isinstance(self.count, int) or self.count < 0
        ):
            raise PruningError(
                f"count is the number of blocks to remove, a whole number >= 0; got {self.count!r}"
            )
        if self.ratio is not None and not (
            isinstance(self.ratio, (int, float)) and 0.0 <= self.ratio <= 1.0
        ):
            raise PruningError(
                f"ratio is the fraction of removable blocks to remove and must "
                f"lie in [0, 1]; got {self.ratio!r}"
            )
        if self.reduction not in BLOCK_REDUCES:
            raise PruningError(
                f"reduction must be one of {', '.join(BLOCK_REDUCES)}; got {self.reduction!r}"
            )

    def n_remove(self, available: int) -> int:
        """How many of ``available`` blocks go (a count above it is an error)."""
        if self.count is not None:
            if self.count > available:
                raise PruningError(
                    f"asked to remove {self.count} blocks but the model has only "
                    f"{available} removable ones; pass a count <= {available}"
                )
            return self.count
        return math.floor(self.ratio * available + 0.5)


@dataclass(frozen=True)
class BlockDecision:
    """Which blocks go.

    Attributes:
        removed: names of the blocks to remove, lowest score first.
        scores: block name -> its score, for every scored block.
        spec: the settings the decision was made with.
    """

    removed: tuple[str, ...]
    scores: dict[str, float]
    spec: BlockSpec

    @property
    def n_removed(self) -> int:
        return len(self.removed)


def block_scores(
    plan: BlockPlan, scores: np.ndarray, layout: ChannelLayout, reduction: str = "mean"
) -> dict[str, float]:
    """Each removable block's score from per-channel scores (e.g. predicted |γ|).

    Args:
        plan: the block plan.
        scores: (C,) per-channel scores in ``layout`` order.
        layout: the layout of ``scores`` (a store's); it must hold every scoring BN.
        reduction: ``mean`` or ``max`` of the scoring BN's channels.

    Returns:
        Block name -> score, in plan order.

    Raises:
        PruningError: on a bad reduction, or a scoring BN missing from ``layout``.
        LayoutError: if ``scores`` does not match ``layout``'s width.
    """
    if reduction not in BLOCK_REDUCES:
        raise PruningError(
            f"reduction must be one of {', '.join(BLOCK_REDUCES)}; got {reduction!r}"
        )
    scores = np.abs(np.asarray(scores, dtype=np.float64))
    layout.check_width(scores, "the block scores")
    missing = [b.bn for b in plan.blocks if b.bn not in layout.names]
    if missing:
        raise PruningError(
            f"the scores do not cover the scoring BN(s) {missing[:4]} of the "
            "blocks; record the model's BNs (or plan the blocks with this layout)"
        )
    reduce = np.mean if reduction == "mean" else np.max
    return {b.name: float(reduce(scores[layout.slice(b.bn)])) for b in plan.blocks}


def select_blocks(
    plan: BlockPlan, scores: np.ndarray, layout: ChannelLayout, spec: BlockSpec
) -> BlockDecision:
    """The lowest-scoring blocks under ``spec`` (ties broken by plan order).

    Args:
        plan: the block plan.
        scores: (C,) per-channel scores in ``layout`` order.
        layout: the layout of ``scores``.
        spec: how many blocks go and how they are scored.

    Returns:
        The :class:`BlockDecision`.
    """
    per_block = block_scores(plan, scores, layout, spec.reduction)
    n = spec.n_remove(len(per_block))
    names = list(per_block)
    order = np.argsort(np.array([per_block[k] for k in names]), kind="stable")
    return BlockDecision(tuple(names[i] for i in order[:n]), per_block, spec)


def block_iou(a: tuple[str, ...] | set[str], b: tuple[str, ...] | set[str]) -> float:
    """Intersection over union of two removed-block sets (1.0 when both are empty)."""
    sa, sb = set(a), set(b)
    return 1.0 if not sa | sb else len(sa & sb) / len(sa | sb)
