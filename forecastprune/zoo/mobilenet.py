"""A small MobileNet-style CNN of depthwise-separable blocks.

Each block is a 3×3 depthwise Conv-BN-ReLU followed by a 1×1 pointwise Conv-BN-ReLU. A depthwise
conv has one filter per input channel, so its BN is tied to the BN of the layer that feeds it:
removing channel i of the pointwise BN before it removes depthwise filter i and its BN channel
too. That coupling (and γ that decay together across it) is what this model adds to the zoo.
BN layers are named ``stem.bn``, ``blocks.<i>.dw.bn`` and ``blocks.<i>.pw.bn``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .blocks import ConvBN, init_gamma, scale_widths

DEFAULT_WIDTHS = (16, 32, 32, 64, 64)


class DepthwiseSeparable(nn.Module):
    """Depthwise 3×3 Conv-BN-ReLU, then pointwise 1×1 Conv-BN-ReLU.

    Args:
        in_channels: block input channels (= depthwise channels).
        out_channels: pointwise output channels.
        stride: stride of the depthwise conv.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.dw = ConvBN(in_channels, in_channels, 3, stride, act="relu")
        # ConvBN builds a dense conv; replace it by the depthwise one with the same shape rules
        self.dw.conv = nn.Conv2d(
            in_channels, in_channels, 3, stride, padding=1, groups=in_channels, bias=False
        )
        self.pw = ConvBN(in_channels, out_channels, 1, act="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pw(self.dw(x))


class MobileNet(nn.Module):
    """A 3×3 stem, depthwise-separable blocks (stride 2 where the width grows), global average
    pooling and a linear classifier.

    Args:
        widths: stem width, then the pointwise width of each block.
        in_channels: input image channels.
        num_classes: classifier outputs.
    """

    def __init__(
        self, widths: Sequence[int] = DEFAULT_WIDTHS, in_channels: int = 1, num_classes: int = 10
    ) -> None:
        super().__init__()
        self.stem = ConvBN(in_channels, widths[0], 3, act="relu")
        blocks = []
        for previous, w in zip(widths[:-1], widths[1:]):
            # 8×8 digits allow two halvings; later widenings keep the resolution
            stride = 2 if w > previous and len(blocks) < 3 else 1
            blocks.append(DepthwiseSeparable(previous, w, stride))
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


def build_mobilenet(
    widths: Sequence[int] = DEFAULT_WIDTHS,
    width: float = 1.0,
    gamma_init: float = 1.0,
    in_channels: int = 1,
    num_classes: int = 10,
) -> MobileNet:
    """Build the MobileNet-style demo model.

    Args:
        widths: base stem width, then base pointwise width per block.
        width: multiplier applied to every width.
        gamma_init: initial value of every BN weight γ.
        in_channels: input image channels.
        num_classes: classifier outputs.

    Returns:
        A freshly initialised model.

    Raises:
        ConfigError: on invalid widths, multiplier or γ init.
    """
    model = MobileNet(scale_widths(widths, width, "widths"), in_channels, num_classes)
    init_gamma(model, gamma_init)
    return model
