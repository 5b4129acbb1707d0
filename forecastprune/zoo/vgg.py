"""A small VGG-style plain CNN: stacked Conv-BN-ReLU blocks with max-pooling, no skips.

Without residual adds or concatenations every BN channel can be pruned on its own, so this is
the easy case for the pruning engine and the closest to the original network-slimming setting.
BN layers are named ``features.conv<i>.bn``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from ..errors import ConfigError
from .blocks import ConvBN, init_gamma, scale_widths

DEFAULT_WIDTHS = (16, 32, 32, 64, 64, 64)


class VGG(nn.Module):
    """Conv-BN-ReLU blocks, a 2×2 max-pool after every ``pool_every`` blocks (not after the
    last group), global average pooling and a linear classifier.

    Args:
        widths: output channels of each conv block, in order.
        in_channels: input image channels.
        num_classes: classifier outputs.
        pool_every: blocks between max-pools.
    """

    def __init__(
        self,
        widths: Sequence[int] = DEFAULT_WIDTHS,
        in_channels: int = 1,
        num_classes: int = 10,
        pool_every: int = 2,
    ) -> None:
        super().__init__()
        if pool_every < 1:
            raise ConfigError(f"pool_every must be >= 1; got {pool_every}")
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        previous = in_channels
        for i, w in enumerate(widths, start=1):
            layers[f"conv{i}"] = ConvBN(previous, w, 3, act="relu")
            if i % pool_every == 0 and i < len(widths):
                layers[f"pool{i // pool_every}"] = nn.MaxPool2d(2)
            previous = w
        self.features = nn.Sequential(layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(previous, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


def build_vgg(
    widths: Sequence[int] = DEFAULT_WIDTHS,
    width: float = 1.0,
    gamma_init: float = 1.0,
    in_channels: int = 1,
    num_classes: int = 10,
    pool_every: int = 2,
) -> VGG:
    """Build the VGG-style demo model.

    Args:
        widths: base output channels per conv block.
        width: multiplier applied to every width.
        gamma_init: initial value of every BN weight γ.
        in_channels: input image channels.
        num_classes: classifier outputs.
        pool_every: blocks between max-pools.

    Returns:
        A freshly initialised model.

    Raises:
        ConfigError: on invalid widths, multiplier, γ init or pooling interval.
    """
    model = VGG(scale_widths(widths, width, "widths"), in_channels, num_classes, pool_every)
    init_gamma(model, gamma_init)
    return model
