"""EarlyPruner removes residual blocks at its prune point, from the same forecast as the
channels, and a resumed run rebuilds the same shallower model."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from forecastprune.engine.block_rule import BlockSpec, select_blocks
from forecastprune.engine.spec import PruneSpec
from forecastprune.engine.surgery import surgery_record
from forecastprune.pipeline import EarlyPruner
from forecastprune.predict import predict_store
from forecastprune.store import GammaTrajectoryStore
from forecastprune.zoo import build_model, load_digits_split


def _setup(tmp_path, name: str):
    torch.manual_seed(0)
    model = build_model("darknet", width=0.5, gamma_init=0.5, blocks=[2, 2])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    split = load_digits_split(seed=0)
    pruner = EarlyPruner(
        model,
        optimizer,
        forecaster="sma",
        spec=PruneSpec(ratio=0.3, policy="grouped"),
        prune_at="step:6",
        total_steps=10,
        example_inputs=split.x_train[:2],
        store_path=tmp_path / name,
        blocks=BlockSpec(count=2),
    )
    return model, optimizer, pruner, split


def _train(pruner, model, optimizer, split, steps):
    for step in range(1, steps + 1):
        x, y = split.x_train[(step % 4) * 32 :][:32], split.y_train[(step % 4) * 32 :][:32]
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        pruner.regularize(step - 1)
        optimizer.step()
        model, optimizer = pruner.step(step)
    return model, optimizer


def test_early_pruner_removes_the_blocks_the_forecast_picks_and_resumes(tmp_path):
    model, optimizer, pruner, split = _setup(tmp_path, "g.fpstore")
    new_model, new_opt = _train(pruner, model, optimizer, split, 8)
    record = surgery_record(new_model)
    assert pruner.pruned_at == 6 and len(record.blocks) == 2
    assert {id(p) for g in new_opt.param_groups for p in g["params"]} == {
        id(p) for p in new_model.parameters()
    }
    # the blocks are the ones the same forecast (sma on the whole recording) picks
    with GammaTrajectoryStore.open(tmp_path / "g.fpstore") as store:
        prediction = predict_store(store, "sma", 1.0, target_step=10)
        expected = select_blocks(
            pruner.block_plan, prediction.scores, store.layout, BlockSpec(count=2)
        ).removed
    assert set(record.blocks) == set(expected) == set(pruner.prune_info["blocks"])
    state = pruner.state_dict()
    _, _, resumed, _ = _setup(tmp_path, "g2.fpstore")
    resumed.load_state_dict(state)
    resumed.model.load_state_dict(new_model.state_dict())
    x = split.x_train[:4]
    np.testing.assert_allclose(resumed.model.eval()(x).detach(), new_model.eval()(x).detach())
