"""Coupling discovery: which channels may be pruned, which move together (seed / grouped)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _models import TinyMobileNetV2, TinyResNet, TinyVGG
from torch import nn

from forecastprune.core.layout import ChannelLayout
from forecastprune.engine.coupling import default_layout, plan_channels
from forecastprune.errors import LayoutError, PruningError
from forecastprune.zoo import build_model

X16 = torch.randn(2, 1, 16, 16)
X8 = torch.randn(2, 1, 8, 8)


def _group_layers(plan, group):
    """The (layer, channel) pairs of one group."""
    out = []
    for i in group:
        layer = int(np.searchsorted(plan.layout.offsets, i, "right") - 1)
        out.append((plan.layout.names[layer], int(i - plan.layout.offsets[layer])))
    return sorted(out)


def test_resnet_seed_keeps_only_the_inner_block_layers():
    plan = plan_channels(TinyResNet(), X16, policy="seed")
    assert plan.prunable_layers == ("layer1.0.bn1", "layer1.1.bn1", "layer2.0.bn1", "layer2.1.bn1")
    assert plan.groups == []
    assert "layer1.0.bn2" in plan.reasons and "seed rule" in plan.reasons["layer1.0.bn2"]


def test_resnet_grouped_ties_the_residual_stream_channel_by_channel():
    plan = plan_channels(TinyResNet(), X16, policy="grouped")
    assert plan.prunable.all()
    stream = [g for g in plan.groups if ("bn1", 3) in _group_layers(plan, g)]
    assert len(stream) == 1
    assert _group_layers(plan, stream[0]) == [("bn1", 3), ("layer1.0.bn2", 3), ("layer1.1.bn2", 3)]
    stage2 = [g for g in plan.groups if ("layer2.0.downsample.1", 5) in _group_layers(plan, g)]
    assert _group_layers(plan, stage2[0]) == [
        ("layer2.0.bn2", 5),
        ("layer2.0.downsample.1", 5),
        ("layer2.1.bn2", 5),
    ]
    # groups are disjoint and cover only coupled channels
    flat = np.concatenate(plan.groups)
    assert len(flat) == len(set(flat.tolist()))


def test_mobilenet_depthwise_couples_expand_and_depthwise_bns():
    model = TinyMobileNetV2()
    seed = plan_channels(model, X16, policy="seed")
    assert "features.4.conv.1" not in seed.prunable_layers
    assert "depthwise" in seed.reasons["features.4.conv.1"]
    grouped = plan_channels(model, X16, policy="grouped")
    pairs = [_group_layers(grouped, g) for g in grouped.groups]
    assert [("features.4.conv.1", 7), ("features.4.conv.4", 7)] in pairs


def test_plain_vgg_is_fully_prunable_without_groups():
    for policy in ("seed", "grouped"):
        plan = plan_channels(TinyVGG(), X16, policy=policy)
        assert plan.prunable.all() and plan.groups == []


def test_darknet_seed_excludes_shortcuts_and_the_route_lateral():
    model = build_model("darknet")
    seed = plan_channels(model, X8, policy="seed")
    assert seed.prunable_layers == (
        "stem.bn",
        "stage1.0.cv1.bn",
        "stage2.0.cv1.bn",
        "stage2.1.cv1.bn",
        "fuse.bn",
        "head.bn",
    )
    assert "route" in seed.reasons["lateral.bn"]
    grouped = plan_channels(model, X8, policy="grouped")
    # the concat only feeds the next conv's inputs: lateral is prunable alone under grouped
    assert "lateral.bn" in grouped.prunable_layers
    assert not any("lateral.bn" in dict(_group_layers(grouped, g)) for g in grouped.groups)


def test_default_layout_is_every_affine_bn_in_module_order():
    model = build_model("resnet")
    names = [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert default_layout(model).names == tuple(names)


def test_a_bn_feeding_the_model_output_is_not_prunable():
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 3, 1), nn.BatchNorm2d(3)
    )
    plan = plan_channels(model, X8, policy="grouped")
    assert plan.prunable_layers == ("1",)
    assert "output" in plan.reasons["4"]


def test_coupling_with_a_bn_outside_the_layout_blocks_the_group():
    model = TinyResNet()
    layout = ChannelLayout.from_pairs([("bn1", 8), ("layer1.0.bn1", 8), ("layer1.0.bn2", 8)])
    plan = plan_channels(model, X16, layout=layout, policy="grouped")
    assert plan.prunable_layers == ("layer1.0.bn1",)
    assert "not in the layout" in plan.reasons["bn1"]


def test_planning_leaves_the_model_untouched():
    model = TinyResNet().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plan_channels(model, X16, policy="grouped")
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_bad_policy_layout_or_inputs_are_clear_errors():
    model = TinyVGG()
    with pytest.raises(PruningError, match="a cut needs policy seed or grouped"):
        plan_channels(model, X16, policy="greedy")
    with pytest.raises(LayoutError, match=r"'features.0' .* not an affine BatchNorm"):
        plan_channels(model, X16, layout=ChannelLayout.from_pairs([("features.0", 8)]))
    with pytest.raises(LayoutError, match="has 8 channels in the model but 9"):
        plan_channels(model, X16, layout=ChannelLayout.from_pairs([("features.1", 9)]))
    with pytest.raises(PruningError, match="tracing the model"):
        plan_channels(model, torch.randn(2, 3, 16, 16))
