"""torchvision's ResNet-18, MobileNetV2 and VGG-11 (BN) adapted to 8×8 and 16×16 inputs.

The usual small-input (CIFAR-style) adaptation: the stem convolution becomes 3×3 with stride 1
on the task's channels, ResNet's max-pool goes, VGG keeps three of its five pools (a 2×2 pool
on a 1×1 map fails) and ends in a global average pool and one linear layer instead of its
4096-wide classifier. Every other layer, block and initialisation is torchvision's own, so the
γ dynamics are those of the nets users train. γ starts at ``gamma_init`` (torchvision: 1.0).

The zoo names them ``tv-resnet18``, ``tv-mobilenet-v2`` and ``tv-vgg11`` (imported only when
one is built), so ``forecastprune.pipeline.recording.record_run`` records them like any zoo
model and every store recorded from one can rebuild its model (``compare``'s and ``prune``'s
policies trace it). torchvision is needed only to build them.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import ConfigError

#: VGG-11's layer widths with the last two pools removed ("M": a 2×2 max-pool)
VGG11_SMALL = (64, "M", 128, "M", 256, 256, "M", 512, 512, 512, 512)


def _torchvision_models() -> Any:
    """``torchvision.models``, importable next to a CPU-only torch (see _torchvision_ops).

    Raises:
        ConfigError: when torchvision is not installed.
    """
    from .._torchvision_ops import ensure_torchvision_ops

    try:
        ensure_torchvision_ops()
        import torchvision.models
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"the zoo's torchvision nets need torchvision ({exc}); pip install torchvision"
        ) from None

    return torchvision.models


def _finish(model: nn.Module, gamma_init: float) -> nn.Module:
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            nn.init.constant_(module.weight, gamma_init)
    return model


def build_tv_resnet18(
    width: float = 1.0, gamma_init: float = 1.0, in_channels: int = 1, num_classes: int = 10
) -> nn.Module:
    """torchvision's ResNet-18 with a 3×3 stride-1 stem and no max-pool.

    Raises:
        ConfigError: on a width other than 1 (torchvision fixes ResNet's widths).
    """
    if width != 1.0:
        raise ConfigError(
            f"tv-resnet18 keeps torchvision's widths; got width={width} (use 1.0, or the "
            "zoo's 'resnet' for a scalable ResNet)"
        )
    model = _torchvision_models().resnet18(num_classes=num_classes)
    model.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
    model.maxpool = nn.Identity()
    return _finish(model, gamma_init)


def build_tv_mobilenet_v2(
    width: float = 1.0, gamma_init: float = 1.0, in_channels: int = 1, num_classes: int = 10
) -> nn.Module:
    """torchvision's MobileNetV2 (``width`` is its ``width_mult``) with a stride-1 stem."""
    model = _torchvision_models().mobilenet_v2(num_classes=num_classes, width_mult=width)
    stem = model.features[0][0]
    model.features[0][0] = nn.Conv2d(in_channels, stem.out_channels, 3, 1, 1, bias=False)
    return _finish(model, gamma_init)


def build_tv_vgg11(
    width: float = 1.0, gamma_init: float = 1.0, in_channels: int = 1, num_classes: int = 10
) -> nn.Module:
    """torchvision's VGG-11 with BN: three pools, a global average pool, one linear layer."""
    vgg = _torchvision_models().vgg
    cfg = [v if v == "M" else max(1, round(int(v) * width)) for v in VGG11_SMALL]
    features = vgg.make_layers(cfg, batch_norm=True)
    features[0] = nn.Conv2d(in_channels, int(cfg[0]), 3, padding=1)
    model = vgg.VGG(features, num_classes=num_classes)
    model.avgpool = nn.AdaptiveAvgPool2d(1)
    model.classifier = nn.Linear(int(cfg[-1]), num_classes)
    return _finish(model, gamma_init)


#: zoo name -> builder
BUILDERS = {
    "tv-resnet18": build_tv_resnet18,
    "tv-mobilenet-v2": build_tv_mobilenet_v2,
    "tv-vgg11": build_tv_vgg11,
}

__all__ = ["BUILDERS", "build_tv_mobilenet_v2", "build_tv_resnet18", "build_tv_vgg11"]
