"""Shared checks for block-removal tests: zero the scoring BNs, remove, compare every output."""

from __future__ import annotations

import copy

import torch
from _pruning import assert_same_outputs
from torch import nn

from forecastprune.engine.block_surgery import prune_blocks, zero_blocks
from forecastprune.engine.blocks import BlockPlan, plan_blocks


def remove_exactly(
    model: nn.Module, x: torch.Tensor, x_train: torch.Tensor, every: int = 2, rel: float = 1e-5
) -> tuple[BlockPlan, nn.Module]:
    """Remove every ``every``-th removable block; the copy must equal the zeroed reference in
    eval mode (on ``x``) and in train mode (on the batch ``x_train``), every output tensor.

    Compared in float64: a C2f fold computes ``(W_a + W_b)·x`` where the reference computes
    ``W_a·x + W_b·x``, equal in exact arithmetic; in float32 the rounding difference, passed
    through a deep net's train-mode batch statistics, can reach 1e-5 of the output's scale
    on an unlucky draw, which is not what this check is about."""
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plan = plan_blocks(model, x)
    chosen = plan.blocks[::every]
    assert chosen, plan.reasons
    pruned = prune_blocks(model, chosen, x, plan)
    reference = zero_blocks(model, chosen)
    names = {n for n, _ in pruned.named_modules()}
    assert not any(b.name in names for b in chosen if b.mode != "identity" and b.mode != "relu")
    assert sum(p.numel() for p in pruned.parameters()) == sum(
        p.numel() for p in model.parameters()
    ) - sum(b.params for b in chosen) - sum(
        b.fold.width * _conv_rows(model, b.fold.conv) for b in chosen if b.fold
    )
    for train, inputs in ((False, x), (True, x_train)):
        assert_same_outputs(
            copy.deepcopy(reference).double().train(train),
            copy.deepcopy(pruned).double().train(train),
            inputs.double(),
            rel,
        )
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "the input model changed"
    return plan, pruned


def _conv_rows(model: nn.Module, name: str) -> int:
    conv = model.get_submodule(name)
    return conv.out_channels * conv.weight[0, 0].numel()
