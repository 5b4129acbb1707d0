"""A small ResNet-style CNN with residual adds.

A residual add ties the channels of every BN whose output reaches it (the block's second BN and
the stage input), so only the first BN of each block is independently prunable — the coupling
the engine's ``seed``/``grouped`` policies are about. BN layers are named ``stem.bn``,
``layer<s>.<b>.conv1.bn``, ``layer<s>.<b>.conv2.bn`` and ``layer<s>.0.shortcut.bn``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import ConfigError
from .blocks import ConvBN, init_gamma, scale_widths

DEFAULT_WIDTHS = (16, 32, 64)


class BasicBlock(nn.Module):
    """Two 3×3 Conv-BN layers plus a shortcut, added before the final ReLU.

    Args:
        in_channels: block input channels.
        out_channels: block output channels.
        stride: stride of the first conv; a 1×1 Conv-BN shortcut projects when the shape changes.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = ConvBN(in_channels, out_channels, 3, stride, act="relu")
        self.conv2 = ConvBN(out_channels, out_channels, 3, act="none")
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = ConvBN(in_channels, out_channels, 1, stride, act="none")
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


class ResNet(nn.Module):
    """Stem, stages of :class:`BasicBlock` (each stage after the first halves the resolution),
    global average pooling and a linear classifier.

    Args:
        widths: channels of each stage.
        blocks: residual blocks per stage (one entry per stage).
        in_channels: input image channels.
        num_classes: classifier outputs.
    """

    def __init__(
        self,
        widths: Sequence[int] = DEFAULT_WIDTHS,
        blocks: Sequence[int] = (1, 1, 1),
        in_channels: int = 1,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        if len(blocks) != len(widths) or min(blocks, default=0) < 1:
            raise ConfigError(
                f"blocks needs one positive count per stage ({len(widths)} stages); got "
                f"{tuple(blocks)}"
            )
        self.stem = ConvBN(in_channels, widths[0], 3, act="relu")
        previous = widths[0]
        for s, (w, n) in enumerate(zip(widths, blocks), start=1):
            stage = [BasicBlock(previous, w, 1 if s == 1 else 2)]
            stage += [BasicBlock(w, w) for _ in range(n - 1)]
            self.add_module(f"layer{s}", nn.Sequential(*stage))
            previous = w
        self.num_stages = len(widths)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(previous, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for s in range(1, self.num_stages + 1):
            x = getattr(self, f"layer{s}")(x)
        return self.classifier(torch.flatten(self.pool(x), 1))


def build_resnet(
    widths: Sequence[int] = DEFAULT_WIDTHS,
    blocks: Sequence[int] = (1, 1, 1),
    width: float = 1.0,
    gamma_init: float = 1.0,
    in_channels: int = 1,
    num_classes: int = 10,
) -> ResNet:
    """Build the ResNet-style demo model.

    Args:
        widths: base channels per stage.
        blocks: residual blocks per stage.
        width: multiplier applied to every width.
        gamma_init: initial value of every BN weight γ.
        in_channels: input image channels.
        num_classes: classifier outputs.

    Returns:
        A freshly initialised model.

    Raises:
        ConfigError: on invalid widths, block counts, multiplier or γ init.
    """
    model = ResNet(scale_widths(widths, width, "widths"), blocks, in_channels, num_classes)
    init_gamma(model, gamma_init)
    return model
