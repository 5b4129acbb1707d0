"""Building blocks shared by the demo models.

Every convolution in the zoo is followed by a BatchNorm2d, wrapped in :class:`ConvBN` so the BN
layers get short, stable names (``<block>.bn``) — those names become the layer names of every
trajectory store recorded on these models.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ..errors import ConfigError

ACTIVATIONS = ("relu", "leaky", "none")


class ConvBN(nn.Module):
    """Conv2d (no bias) → BatchNorm2d → activation.

    With ``act="leaky"`` this is Darknet's CBL block (Conv-BN-LeakyReLU(0.1)).

    Args:
        in_channels: input channels.
        out_channels: output channels (= the BN's channel count).
        kernel_size: square kernel size; padding keeps the spatial size at stride 1.
        stride: convolution stride (2 halves the spatial size).
        act: ``"relu"``, ``"leaky"`` (slope 0.1) or ``"none"`` (before a residual add).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        act: str = "relu",
    ) -> None:
        super().__init__()
        if act not in ACTIVATIONS:
            raise ConfigError(f"act must be one of {ACTIVATIONS}; got {act!r}")
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels)
        self.act = {
            "relu": nn.ReLU(inplace=True),
            "leaky": nn.LeakyReLU(0.1, inplace=True),
            "none": nn.Identity(),
        }[act]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


def init_gamma(model: nn.Module, gamma_init: float) -> None:
    """Set every BatchNorm weight (γ) of a freshly built model to ``gamma_init``.

    Network slimming usually starts from γ = 1; starting lower (e.g. 0.5) lets the L1 penalty
    push idle channels to zero within a short run.

    Raises:
        ConfigError: unless ``gamma_init`` is a positive finite number.
    """
    if not (0.0 < float(gamma_init) < float("inf")):
        raise ConfigError(f"gamma_init must be a positive number; got {gamma_init!r}")
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.affine:
            nn.init.constant_(module.weight, float(gamma_init))


#: the widest layer a zoo model may have (a 3×3 conv of this width is ~150 MB of float32)
MAX_CHANNELS = 2048


def scale_widths(widths: Sequence[int], width: float, what: str) -> tuple[int, ...]:
    """Multiply channel widths by ``width``, rounding and keeping at least one channel each.

    Args:
        widths: the base widths.
        width: the multiplier (e.g. 0.5 halves every layer).
        what: the parameter name used in error messages.

    Raises:
        ConfigError: on a non-positive multiplier or width.
    """
    if not 0 < float(width) < math.inf:
        raise ConfigError(f"width multiplier must be a positive number; got {width!r}")
    widths = tuple(int(w) for w in widths)
    if not widths or min(widths) < 1:
        raise ConfigError(f"{what} must be a non-empty list of positive integers; got {widths}")
    scaled = tuple(max(1, round(w * float(width))) for w in widths)
    if max(scaled) > MAX_CHANNELS:  # refuse before allocating (one 3×3 conv grows as width²)
        raise ConfigError(
            f"{what} {list(widths)} × width {width!r} asks for {max(scaled):,} channels in one "
            f"layer; the zoo builds at most {MAX_CHANNELS:,} — use a smaller width"
        )
    return scaled
