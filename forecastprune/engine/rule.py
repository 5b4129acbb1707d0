"""How predictions become a prune decision: the ratio, the floors and the uncertainty policy.

A :class:`MaskRule` is the one bundle of threshold settings every path shares — ``compare``
judges a forecaster (and the oracle) with it, ``prune`` and :class:`EarlyPruner` cut with it —
so the same scores under the same rule always give the same pruned set. Pure numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import PruningError
from .threshold import GROUP_REDUCES, PruneDecision, select_channels

if TYPE_CHECKING:
    from ..store.layout import ChannelLayout
    from .coupling import ChannelPlan

#: the coupling policies (see :mod:`.coupling`): which channels may go and which go together
POLICIES = ("seed", "grouped")


def check_policy(policy: str, allowed: tuple[str, ...] = POLICIES) -> str:
    """Return ``policy`` if it is one of ``allowed``.

    Raises:
        PruningError: naming the value received and the valid ones.
    """
    if policy not in allowed:
        raise PruningError(f"policy must be one of {', '.join(allowed)}; got {policy!r}")
    return policy


@dataclass(frozen=True)
class MaskRule:
    """How forecasts become masks.

    Args:
        ratio: fraction of the prunable channels to prune.
        min_keep: channels every layer keeps at least.
        group_reduce: a coupled group's score from its members' (``max`` or ``mean``).
        uncertainty: prune only channels whose forecast upper bound is below the cut too
            (needs a forecaster with intervals; ignored otherwise).
        coverage: the central coverage of the forecast intervals.
    """

    ratio: float = 0.5
    min_keep: int = 1
    group_reduce: str = "max"
    uncertainty: bool = False
    coverage: float = 0.9

    def __post_init__(self) -> None:
        if not 0.0 <= self.ratio <= 1.0:
            raise PruningError(
                f"ratio is the fraction of prunable channels to prune and must lie in [0, 1]; "
                f"got {self.ratio}"
            )
        if self.group_reduce not in GROUP_REDUCES:
            raise PruningError(
                f"group_reduce must be one of {GROUP_REDUCES}; got {self.group_reduce!r}"
            )
        if not 0.0 < self.coverage < 1.0:
            raise PruningError(f"coverage must lie strictly between 0 and 1; got {self.coverage}")

    def decide(
        self,
        scores: np.ndarray,
        plan: ChannelPlan | ChannelLayout,
        upper: np.ndarray | None = None,
    ) -> PruneDecision:
        """The engine's decision on ``scores`` under this rule (``upper`` when uncertain)."""
        return select_channels(
            scores, plan, ratio=self.ratio, group_reduce=self.group_reduce,
            min_keep=self.min_keep, upper=upper if self.uncertainty else None,
        )


def ambiguous_share(
    lower: np.ndarray | None, upper: np.ndarray | None, cut: float, prunable: np.ndarray
) -> float | None:
    """Share of prunable channels whose interval [lower, upper] contains the cut.

    None when there are no intervals or no finite cut.
    """
    if lower is None or upper is None or not math.isfinite(cut):
        return None
    straddle = np.asarray(prunable) & (lower <= cut) & (upper >= cut)
    return float(np.count_nonzero(straddle)) / max(1, int(np.count_nonzero(prunable)))
