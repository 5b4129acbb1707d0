"""YOLOv3 in the zoo: yolov3.cfg's structure, the seed rule's 42 layers / 13,376 channels, and
50 % pruning under both policies."""

from __future__ import annotations

import _models  # noqa: F401  (one intra-op thread for the tests)
import numpy as np
import pytest
import torch
from torch import nn

from forecastprune.engine.coupling import plan_channels
from forecastprune.engine.spec import PruneSpec
from forecastprune.engine.surgery import prune_model
from forecastprune.engine.threshold import select_channels
from forecastprune.errors import ConfigError
from forecastprune.zoo import build_model, list_models

# the structure does not depend on the input size: trace at the smallest valid one
X32 = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def yolo() -> nn.Module:
    return build_model("yolov3").eval()


@pytest.fixture(scope="module")
def plans(yolo):
    return {policy: plan_channels(yolo, X32, policy=policy) for policy in ("seed", "grouped")}


def test_yolov3_has_the_cfg_structure(yolo):
    assert "yolov3" in list_models()
    convs = [m for m in yolo.modules() if isinstance(m, nn.Conv2d)]
    bns = [m for m in yolo.modules() if isinstance(m, nn.BatchNorm2d)]
    assert (len(convs), len(bns)) == (75, 72)
    # the published parameter count of YOLOv3-416 with 80 classes
    assert sum(p.numel() for p in yolo.parameters()) == 61_949_149
    assert [c.out_channels for c in convs if c.bias is not None] == [255, 255, 255]


@pytest.mark.slow
def test_seed_policy_leaves_the_write_ups_42_layers_and_13376_channels(plans):
    seed = plans["seed"]
    assert len(seed.prunable_layers) == 42
    assert seed.prunable_channels == 13_376
    layers = set(seed.prunable_layers)
    assert "backbone.stem.bn" in layers
    assert "backbone.stage3.blocks.7.cv1.bn" in layers
    assert "scale2.cv6.bn" in layers
    # shortcut-tied and route-feeding CBLs are excluded
    assert not layers & {
        "backbone.stage3.down.bn",
        "backbone.stage3.blocks.0.cv2.bn",
        "lateral1.bn",
        "lateral2.bn",
    }
    assert "route" in seed.reasons["lateral1.bn"]


@pytest.mark.slow
def test_grouped_policy_prunes_every_bn_with_residual_groups(plans):
    grouped = plans["grouped"]
    assert len(grouped.prunable_layers) == 72
    # the stage-5 stream ties its downsample BN and the 4 residual units' second BNs
    assert max(len(g) for g in grouped.groups) == 1 + 8


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["seed", "grouped"])
def test_yolov3_prunes_at_half_of_the_prunable_channels(yolo, plans, policy):
    plan = plans[policy]
    scores = np.random.default_rng(0).random(plan.layout.total)
    decision = select_channels(scores, plan, PruneSpec(ratio=0.5))
    assert abs(decision.n_pruned - plan.prunable_channels / 2) <= 16
    pruned = prune_model(yolo, decision, X32, plan)
    params = sum(p.numel() for p in pruned.parameters())
    assert params < 0.6 * sum(p.numel() for p in yolo.parameters())
    with torch.no_grad():
        shapes = [tuple(y.shape) for y in pruned(X32)]
        assert shapes == [tuple(y.shape) for y in yolo(X32)]
        if policy == "seed":  # one full-size pass: 416×416 works on CPU
            out = pruned(torch.zeros(1, 3, 416, 416))
            assert [tuple(y.shape) for y in out] == [
                (1, 255, 13, 13),
                (1, 255, 26, 26),
                (1, 255, 52, 52),
            ]


def test_builder_options_and_errors():
    small = build_model("yolov3", num_classes=2, in_channels=1, gamma_init=0.5).eval()
    with torch.no_grad():
        assert small(torch.zeros(1, 1, 32, 32))[2].shape == (1, 21, 4, 4)
    assert small.backbone.stem.bn.weight.detach().eq(0.5).all()
    with pytest.raises(ConfigError, match="must be positive"):
        build_model("yolov3", num_classes=0)
