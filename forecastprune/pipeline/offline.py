"""Prune a model once from a recorded store: predict, threshold, cut (what ``prune`` runs).

The same three steps the training pipeline takes at its prune point, started from a store on
disk instead of a live run: the prediction path (:func:`forecastprune.predict.predict_store`),
the shared :class:`~forecastprune.engine.spec.PruneSpec`, and the surgery on a copy of the model.
With a :class:`~forecastprune.engine.block_rule.BlockSpec` the same prediction also picks the
residual blocks to remove whole (depth pruning), after the channel cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import nn

from ..engine.block_rule import BlockDecision, BlockSpec, select_blocks
from ..engine.block_surgery import prune_blocks
from ..engine.blocks import plan_blocks
from ..engine.coupling import ChannelPlan, check_layout, plan_channels
from ..engine.spec import PruneSpec
from ..engine.surgery import prune_model
from ..engine.threshold import PruneDecision, select_channels
from ..isolation import run_isolated
from ..predict import Prediction, predict_store


@dataclass(frozen=True)
class OfflinePrune:
    """What :func:`prune_from_store` did.

    Attributes:
        model: the pruned copy (the input model is untouched).
        plan: the channel plan the cut followed.
        decision: the engine's decision.
        prediction: the forecast the decision was made on.
        blocks: the residual blocks removed (when a block spec was given), else None.
    """

    model: nn.Module
    plan: ChannelPlan
    decision: PruneDecision
    prediction: Prediction
    blocks: BlockDecision | None = None


def prune_from_store(
    model: nn.Module,
    store: Any,
    forecaster: Any,
    *,
    cutoff: float | str,
    spec: PruneSpec,
    example_inputs: torch.Tensor,
    isolate: bool = False,
    timeout: float | None = None,
    blocks: BlockSpec | None = None,
) -> OfflinePrune:
    """Forecast final |γ| from a store's history up to ``cutoff`` and prune a copy of ``model``.

    Args:
        model: the model the store was recorded on (its BN layers must match the layout).
        store: an open :class:`~forecastprune.store.GammaTrajectoryStore`.
        forecaster: a registry spec or an instance.
        cutoff: a fraction of the run in (0, 1] or ``"step:N"``.
        spec: how channels are chosen (ratio or threshold, coupling policy, floors).
        example_inputs: an input batch to trace the model with.
        isolate: forecast in a worker process that is stopped at ``timeout``
            (:func:`forecastprune.isolation.run_isolated`; what the CLI does). Off by default:
            a library caller's process may hold state (CUDA, threads) a fork should not copy.
        timeout: seconds for the forecast when isolated (None: no limit).
        blocks: also remove the residual blocks this spec picks from the same prediction
            (planned on ``model``, scored by the mean or max predicted |γ| of each block's
            scoring BN); None: channels only.

    Raises:
        LayoutError: when the model's BN layers differ from the store's (names, widths, and for
            a recorder's store also their order and the model fingerprint).
        ForecastPruneError: on a bad cutoff or forecaster, or policy ``none``.
    """
    check_layout(model, store.layout, store.fingerprint)
    forecast = partial(predict_store, store, forecaster, cutoff, coverage=spec.coverage)
    prediction = (
        run_isolated(forecast, timeout=timeout, what=f"forecaster {forecaster!r}")
        if isolate
        else forecast()
    )
    plan = plan_channels(model, example_inputs, store.layout, spec.coupling_policy())
    decision = select_channels(prediction.scores, plan, spec, upper=prediction.upper)
    pruned = prune_model(model, decision, example_inputs, plan)
    removed = None
    if blocks is not None:
        block_plan = plan_blocks(model, example_inputs, store.layout)
        removed = select_blocks(block_plan, prediction.scores, store.layout, blocks)
        pruned = prune_blocks(pruned, removed, example_inputs)
    return OfflinePrune(pruned, plan, decision, prediction, removed)
