"""Depth pruning: residual blocks found from the traced forward and removed exactly.

Each architecture family of the issue: torchvision ResNet (BasicBlock, Bottleneck), Darknet-53
(the zoo's, timm's darknet53 and cspdarknet53), ultralytics C3 (YOLOv5u), C2f (YOLOv8), C3k2
(YOLO11) and YOLOv3u's top-level bottlenecks. Exact = equal to the model whose removed blocks'
scoring BN has γ = β = 0, to 1e-5 relative, every output tensor, eval and train mode.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from _blocks import remove_exactly
from _models import randomize_bn

from forecastprune._torchvision_ops import ensure_torchvision_ops
from forecastprune.engine.block_surgery import prune_blocks
from forecastprune.engine.blocks import BlockPlan, plan_blocks
from forecastprune.errors import PruningError

ensure_torchvision_ops()
models = pytest.importorskip("torchvision.models", reason="torchvision is optional")

X64 = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
XB = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def test_resnet18_basic_blocks_go_exactly_and_projections_stay():
    model = randomize_bn(models.resnet18(num_classes=10))
    plan, pruned = remove_exactly(model, X64, XB, every=1)
    assert plan.names == ("layer1.0", "layer1.1", "layer2.1", "layer3.1", "layer4.1")
    assert all(b.mode == "delete" and b.bn.endswith(".bn2") for b in plan.blocks)
    # the projection blocks cannot go, and say why
    assert set(plan.reasons) == {"layer2.0", "layer3.0", "layer4.0"}
    assert "projection" in plan.reasons["layer2.0"]
    assert len(pruned.layer1) == 0 and len(pruned.layer2) == 1


@pytest.mark.slow
def test_resnet50_bottlenecks_go_exactly():
    model = randomize_bn(models.resnet50(num_classes=10))
    plan, pruned = remove_exactly(model, X64, XB, every=2)
    assert len(plan.blocks) == 12 and all(b.bn.endswith(".bn3") for b in plan.blocks)
    assert [n for n, _ in pruned.layer3.named_children()] == ["0", "1", "3", "5"]  # names stay


@pytest.mark.slow
@pytest.mark.parametrize("name", ["darknet53", "cspdarknet53"])
def test_timm_darknet_residuals_go_exactly(name):
    timm = pytest.importorskip("timm", reason="timm is in the test extra")
    model = randomize_bn(timm.create_model(name, pretrained=False, num_classes=10))
    plan, _ = remove_exactly(model, X64, XB, every=3)
    assert len(plan.blocks) == 23 and all(b.bn.endswith("conv2.bn") for b in plan.blocks)


@pytest.mark.slow
def test_zoo_yolov3_darknet53_residuals_go_exactly():
    from forecastprune.zoo import build_model

    plan, _ = remove_exactly(randomize_bn(build_model("yolov3", num_classes=2)), X64, XB, every=3)
    assert len(plan.blocks) == 23 and all(b.mode == "delete" for b in plan.blocks)


def test_zoo_darknet_digits_residuals_go_exactly():
    from forecastprune.zoo import build_model

    model = randomize_bn(build_model("darknet"))
    x = torch.randn(1, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    xb = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    plan, _ = remove_exactly(model, x, xb, every=1)
    assert plan.blocks


class _Residual(torch.nn.Module):
    """x + bn(conv(x)), then ReLU: removable, but its input may be negative."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(c, c, 3, 1, 1, bias=False)
        self.bn = torch.nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.bn(self.conv(x)))


class _Net(torch.nn.Module):
    """A stem without activation, then a residual in a plain attribute and one in a list."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 4, 1)
        self.first = _Residual(4)
        self.rest = torch.nn.ModuleList([_Residual(4), _Residual(4)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(self.stem(x))
        for block in self.rest:
            x = block(x)
        return x


def test_a_relu_after_the_add_stays_when_the_input_can_be_negative():
    model = randomize_bn(_Net())
    plan, pruned = remove_exactly(model, X64, XB, every=1)
    modes = {b.name: b.mode for b in plan.blocks}
    # the stem has no ReLU, so the first block's ReLU is kept; the others read a ReLU's output
    assert modes == {"first": "relu", "rest.0": "identity", "rest.1": "identity"}
    assert isinstance(pruned.first, torch.nn.ReLU)


def test_unknown_block_names_are_refused_with_the_reason():
    model = models.resnet18(num_classes=10)
    plan = plan_blocks(model, X64)
    with pytest.raises(PruningError, match=r"'layer2\.0' is not a removable block \(its shortcut"):
        prune_blocks(model, ["layer2.0"], X64, plan)
    with pytest.raises(PruningError, match="list of block names"):
        prune_blocks(model, "layer1.0", X64, plan)


def test_a_wrong_plan_is_caught_by_the_check():
    """A plan traced on another model must not silently cut the wrong thing."""
    model = randomize_bn(_Net())
    plan = plan_blocks(model, X64)
    wrong = BlockPlan(plan.layout, tuple(replace(b, mode="identity") for b in plan.blocks))
    with pytest.raises(PruningError, match="does not reproduce"):
        prune_blocks(model, ["first"], X64, wrong)
