"""Depth pruning: residual blocks found from the traced forward and removed exactly.

Each architecture family of the issue: torchvision ResNet (BasicBlock, Bottleneck), Darknet-53
(the zoo's, timm's darknet53 and cspdarknet53), ultralytics C3 (YOLOv5u), C2f (YOLOv8), C3k2
(YOLO11) and YOLOv3u's top-level bottlenecks. Exact = equal to the model whose removed blocks'
scoring BN has γ = β = 0, to 1e-5 relative, every output tensor, eval and train mode.
"""

from __future__ import annotations

import pytest
import torch

from _blocks import remove_exactly
from _models import randomize_bn
from forecastprune.integrations._torchvision_ops import ensure_torchvision_ops

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


def test_resnet50_bottlenecks_go_exactly():
    model = randomize_bn(models.resnet50(num_classes=10))
    plan, pruned = remove_exactly(model, X64, XB, every=2)
    assert len(plan.blocks) == 12 and all(b.bn.endswith(".bn3") for b in plan.blocks)
    assert [n for n, _ in pruned.layer3.named_children()] == ["0", "1", "3", "5"]  # names stay


@pytest.mark.parametrize("name", ["darknet53", "cspdarknet53"])
def test_timm_darknet_residuals_go_exactly(name):
    timm = pytest.importorskip("timm", reason="timm is in the test extra")
    model = randomize_bn(timm.create_model(name, pretrained=False, num_classes=10))
    plan, pruned = remove_exactly(model, X64, XB, every=3)
    assert len(plan.blocks) == 23 and all(b.bn.endswith("conv2.bn") for b in plan.blocks)


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
