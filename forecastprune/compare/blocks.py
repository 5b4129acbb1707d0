"""Judging block decisions in a replay: which residual blocks each forecast would remove.

Depth pruning (:mod:`~forecastprune.engine.blocks`) scores a block by a reduction of its
scoring BN's |γ|; the replay applies the same :func:`~forecastprune.engine.block_rule.
select_blocks` to every forecaster's prediction and to the final |γ| (the oracle), and reports
the IoU of the two removed-block sets beside the channel metrics. The blocks are planned on the
store's model, rebuilt from its metadata (so the model must be in the zoo).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.block_rule import BlockSpec, block_iou, select_blocks
from ..errors import ConfigError


@dataclass(frozen=True)
class BlockJudge:
    """The oracle's removed blocks and how to score a prediction's.

    Attributes:
        plan: the store model's :class:`~forecastprune.engine.blocks.BlockPlan`.
        layout: the store's layout (the scores' order).
        spec: how many blocks go and how a block is scored.
        oracle: the blocks the final |γ| removes.
    """

    plan: Any
    layout: Any
    spec: BlockSpec
    oracle: tuple[str, ...]

    @classmethod
    def build(
        cls, plan: Any, layout: Any, oracle_scores: np.ndarray, spec: BlockSpec
    ) -> BlockJudge:
        """Decide the oracle's removed set.

        Raises:
            ConfigError: when the model has no removable block.
        """
        if not plan.blocks:
            reasons = "; ".join(f"{k}: {v}" for k, v in list(plan.reasons.items())[:3])
            raise ConfigError(
                "the store's model has no removable residual block, so block "
                f"decisions cannot be compared ({reasons or 'no residual adds'})"
            )
        oracle = select_blocks(plan, oracle_scores, layout, spec).removed
        return cls(plan, layout, spec, oracle)

    def removed(self, scores: np.ndarray) -> tuple[str, ...]:
        """The blocks ``scores`` (e.g. a forecast) removes."""
        return select_blocks(self.plan, scores, self.layout, self.spec).removed

    def iou(self, scores: np.ndarray) -> float:
        """IoU of the blocks ``scores`` removes with the oracle's."""
        return block_iou(self.removed(scores), self.oracle)


def store_block_plan(store: Any) -> Any:
    """The block plan of the store's model (rebuilt from its metadata), scored by its layout.

    Raises:
        ConfigError: if the store's model is unknown or not in the zoo.
    """
    import torch  # only block judging needs the model

    from ..engine.blocks import plan_blocks
    from ..zoo.from_store import example_input_shape, model_from_metadata

    model = model_from_metadata(store.metadata)
    return plan_blocks(model, torch.zeros(example_input_shape(store.metadata)), store.layout)
