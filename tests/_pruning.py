"""Shared checks for pruning tests: zero the chosen channels, cut, compare whole outputs."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from forecastprune.engine.coupling import ChannelPlan, plan_channels
from forecastprune.engine.flow import output_signature, tensors_in
from forecastprune.engine.spec import PruneSpec
from forecastprune.engine.surgery import prune_model
from forecastprune.engine.threshold import PruneDecision, select_channels


def decide(
    model: nn.Module, x: torch.Tensor, policy: str, ratio: float = 0.5, seed: int = 0
) -> tuple[ChannelPlan, PruneDecision]:
    """Plan under ``policy`` and prune ``ratio`` of the prunable channels by random scores."""
    plan = plan_channels(model, x, policy=policy)
    scores = np.random.default_rng(seed).random(plan.layout.total)
    decision = select_channels(scores, plan, PruneSpec(ratio=ratio))
    return plan, decision


def zeroed(model: nn.Module, keep: dict[str, np.ndarray]) -> nn.Module:
    """A copy with γ = β = 0 on every channel ``keep`` drops: what the cut must reproduce."""
    masked = copy.deepcopy(model)
    with torch.no_grad():
        for name, mask in keep.items():
            bn = masked.get_submodule(name)
            bn.weight[torch.as_tensor(~mask)] = 0.0
            bn.bias[torch.as_tensor(~mask)] = 0.0
    return masked


@torch.no_grad()
def assert_same_outputs(a: nn.Module, b: nn.Module, x: torch.Tensor, rel: float = 1e-5) -> None:
    """Same output structure (every tensor of tuples/lists/dicts), values equal to ``rel``."""
    out_a, out_b = a(x), b(x)
    assert output_signature(out_a) == output_signature(out_b)
    for ta, tb in zip(tensors_in(out_a), tensors_in(out_b), strict=True):
        scale = float(ta.abs().max()) if ta.numel() else 0.0
        torch.testing.assert_close(tb, ta, rtol=rel, atol=rel * max(scale, 1e-12))


def prune_exactly(
    model: nn.Module, x: torch.Tensor, policy: str, ratio: float = 0.5
) -> tuple[ChannelPlan, PruneDecision, nn.Module]:
    """Plan, select, zero, cut; check the cut model equals the zeroed one and is smaller."""
    plan, decision = decide(model, x, policy, ratio)
    assert decision.n_pruned > 0, plan.reasons
    reference = zeroed(model, decision.keep)
    pruned = prune_model(reference, decision, x, plan)
    assert pruned.training == model.training
    reference.eval()
    pruned_eval = copy.deepcopy(pruned).eval()
    assert_same_outputs(reference, pruned_eval, x)
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in model.parameters())
    for name, mask in decision.keep.items():
        assert pruned.get_submodule(name).num_features == int(mask.sum())
    return plan, decision, pruned
