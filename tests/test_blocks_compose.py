"""Depth pruning composed with channel pruning (either order), saved and loaded, and an
optimizer carried over to the model without the blocks."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from _models import randomize_bn
from _pruning import assert_same_outputs, decide, zeroed

from forecastprune.engine.block_surgery import prune_blocks, zero_blocks
from forecastprune.engine.blocks import plan_blocks
from forecastprune.engine.flow import tensors_in
from forecastprune.engine.optim import rebuild_optimizer
from forecastprune.engine.persist import load_pruned, save_pruned
from forecastprune.engine.surgery import prune_model, surgery_record
from forecastprune.zoo import build_model

X = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(0))
KW = {"blocks": [2, 3]}


def _model() -> torch.nn.Module:
    return randomize_bn(build_model("darknet", **KW)).eval()


def _both_zeroed(model, decision, blocks):
    return zero_blocks(zeroed(model, decision.keep), blocks)


@pytest.mark.parametrize("blocks_first", [True, False])
def test_blocks_and_channels_compose_exactly_and_round_trip(tmp_path, blocks_first):
    model = _model()
    bplan = plan_blocks(model, X)
    blocks = bplan.blocks[::2]
    _, decision = decide(model, X, "grouped", ratio=0.3)
    if blocks_first:
        thin = prune_blocks(model, blocks, X, bplan)
        present = {n for n, _ in thin.named_modules()}
        keep = {n: m for n, m in decision.keep.items() if n in present}
        # the decision of the full model is valid on the model without the blocks
        cut = prune_model(zeroed(thin, keep), keep, X)
    else:
        cut = prune_blocks(prune_model(zeroed(model, decision.keep), decision, X), blocks, X)
    reference = _both_zeroed(model, decision, blocks)
    assert_same_outputs(reference, copy.deepcopy(cut).eval(), X)
    record = surgery_record(cut)
    assert record.blocks == tuple(b.name for b in blocks)
    path = save_pruned(cut, tmp_path / "m.pt", builder="darknet", kwargs=KW)
    loaded = load_pruned(path)
    assert_same_outputs(cut.eval(), loaded.eval(), X, rel=0)
    assert sum(p.numel() for p in loaded.parameters()) == sum(p.numel() for p in cut.parameters())
    assert torch.load(path, weights_only=True)["version"] == 2


def test_a_blocks_only_model_round_trips(tmp_path):
    model = _model()
    cut = prune_blocks(model, plan_blocks(model, X).names[:2], X)
    loaded = load_pruned(save_pruned(cut, tmp_path / "m.pt", builder="darknet", kwargs=KW))
    assert_same_outputs(cut.eval(), loaded.eval(), X, rel=0)


def test_the_optimizer_carries_over_including_folded_columns():
    tasks = pytest.importorskip("ultralytics.nn.tasks", reason="ultralytics is optional")
    model = randomize_bn(tasks.DetectionModel("yolov8n.yaml", verbose=False))
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    _loss(model, torch.randn(2, 3, 64, 64)).backward()
    opt.step()
    plan = plan_blocks(model, x)
    new = prune_blocks(model, ["model.2.m.0"], x, plan)
    rebuilt = rebuild_optimizer(opt, new)
    assert len(rebuilt.param_groups[0]["params"]) == len(list(new.parameters()))
    old_conv = model.get_submodule("model.2.cv2.conv").weight
    new_conv = new.get_submodule("model.2.cv2.conv").weight
    buf_old, buf_new = (
        opt.state[old_conv]["momentum_buffer"],
        rebuilt.state[new_conv]["momentum_buffer"],
    )
    kept = np.r_[0:32]  # the slot of the removed bottleneck (32..47) is dropped
    torch.testing.assert_close(buf_new, buf_old[:, kept])
    gone = {id(p) for p in model.get_submodule("model.2.m.0").parameters()}
    assert not gone & {id(p) for g in rebuilt.param_groups for p in g["params"]}
    # one more step runs on the new model
    _loss(new, torch.randn(2, 3, 64, 64)).backward()
    rebuilt.step()


def _loss(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return sum(t.square().mean() for t in tensors_in(model.train()(x)))
