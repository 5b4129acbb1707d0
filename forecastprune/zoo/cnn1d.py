"""A 1-D CNN with BatchNorm for MNIST-1D signals: Conv1d → BatchNorm1d → ReLU blocks.

The MNIST-1D authors' CNN (``ConvBase`` in their notebooks) is three Conv1d layers of 25
channels (kernel 5 then 3, 3, all stride 2) with ReLU, the features flattened into one linear
classifier, and no BatchNorm. This model keeps that shape — strided 1-D convolutions and a
classifier over the *flattened* feature map, since where a pattern sits in the signal matters —
adds a BatchNorm1d after every conv (its γ is what slimming and the forecasts rank) and is
wider, so that half or more of its channels can go. BN layers are named ``features.conv<i>.bn``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from ..errors import ConfigError
from .blocks import init_gamma, scale_widths

#: base widths of the conv blocks
DEFAULT_WIDTHS = (64, 64, 64)
#: the first block's kernel is wider (as in the authors' CNN); the others use 3
FIRST_KERNEL = 5


class ConvBN1d(nn.Module):
    """Conv1d (no bias) → BatchNorm1d → ReLU.

    Args:
        in_channels: input channels.
        out_channels: output channels (= the BN's channel count).
        kernel_size: kernel length; padding ``kernel_size // 2``.
        stride: convolution stride (2 halves the length).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(
            in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=False
        )
        self.bn = nn.BatchNorm1d(out_channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class CNN1d(nn.Module):
    """Stride-2 Conv-BN-ReLU blocks over a 1-D signal, then a linear classifier over the
    flattened features.

    Args:
        widths: output channels of each block, in order.
        length: the input signal length (fixes the classifier's input size).
        in_channels: input channels.
        num_classes: classifier outputs.
    """

    def __init__(
        self,
        widths: Sequence[int] = DEFAULT_WIDTHS,
        length: int = 40,
        in_channels: int = 1,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        if int(length) < 1:
            raise ConfigError(f"length must be a positive signal length; got {length!r}")
        blocks: OrderedDict[str, nn.Module] = OrderedDict()
        previous, size = in_channels, int(length)
        for i, w in enumerate(widths, start=1):
            kernel = FIRST_KERNEL if i == 1 else 3
            blocks[f"conv{i}"] = ConvBN1d(previous, w, kernel, stride=2)
            previous, size = w, (size - 1) // 2 + 1  # stride 2, "same" padding
        self.features = nn.Sequential(blocks)
        self.classifier = nn.Linear(previous * size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


def build_cnn1d(
    widths: Sequence[int] = DEFAULT_WIDTHS,
    width: float = 1.0,
    gamma_init: float = 1.0,
    length: int = 40,
    in_channels: int = 1,
    num_classes: int = 10,
) -> CNN1d:
    """Build the 1-D CNN.

    Args:
        widths: base output channels per block.
        width: multiplier applied to every width.
        gamma_init: initial value of every BN weight γ.
        length: input signal length (MNIST-1D: 40).
        in_channels: input channels.
        num_classes: classifier outputs.

    Returns:
        A freshly initialised model.

    Raises:
        ConfigError: on invalid widths, multiplier, γ init or length.
    """
    model = CNN1d(scale_widths(widths, width, "widths"), length, in_channels, num_classes)
    init_gamma(model, gamma_init)
    return model
