"""What the trajectory suite needed from the zoo and ``record``: a depthwise model, cosine LR."""

from __future__ import annotations

import numpy as np
import torch
from click.testing import CliRunner
from torch import nn

from forecastprune.cli import cli
from forecastprune.core.bn_layers import layout_of, select_bn_layers
from forecastprune.engine.coupling import plan_channels
from forecastprune.engine.spec import PruneSpec
from forecastprune.engine.surgery import prune_model
from forecastprune.engine.threshold import select_channels
from forecastprune.store import GammaTrajectoryStore
from forecastprune.zoo import build_model


def test_mobilenet_is_depthwise_separable_and_prunes_physically():
    model = build_model("mobilenet", gamma_init=0.5)
    depthwise = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert depthwise and all(m.groups == m.in_channels == m.out_channels for m in depthwise)
    x = torch.randn(2, 1, 8, 8)
    assert model(x).shape == (2, 10)
    layout = layout_of(select_bn_layers(model))
    plan = plan_channels(model, x, layout, "grouped")
    # a depthwise BN moves with the BN that feeds it, so groups span two layers
    assert any(len({layout.names[i] for i in _layers(layout, g)}) > 1 for g in plan.groups)
    scores = np.random.default_rng(0).uniform(size=layout.total)
    decision = select_channels(scores, plan, PruneSpec(ratio=0.4))
    smaller = prune_model(model, decision, x, plan)
    assert smaller(x).shape == (2, 10)
    assert sum(p.numel() for p in smaller.parameters()) < sum(p.numel() for p in model.parameters())


def _layers(layout, group):
    bounds = np.cumsum([0, *layout.sizes])
    return [int(np.searchsorted(bounds, i, side="right") - 1) for i in np.asarray(group).ravel()]


def test_record_with_a_cosine_schedule_keeps_it_in_the_metadata(tmp_path):
    out = tmp_path / "run"
    args = [
        "record",
        "--out",
        str(out),
        "--model",
        "mobilenet",
        "--epochs",
        "2",
        "--limit-batches",
        "3",
        "--no-progress",
        "--threads",
        "1",
        "--lr-scheduler",
        "cosine",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    with GammaTrajectoryStore.open(out / "gammas.fpstore") as store:
        assert store.metadata["lr_scheduler"] == "cosine"
        lrs = [lr for _, lr in store.metadata["lr_schedule"]]
        assert lrs[0] == 0.05 and all(np.diff(lrs) < 0)
        recorded = np.asarray(store.lrs)
        assert np.all(np.diff(recorded[np.isfinite(recorded)]) <= 0)
