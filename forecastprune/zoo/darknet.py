"""A small Darknet/YOLOv3-style CNN for digits.

Built from CBL blocks (Conv-BN-LeakyReLU(0.1)) with every coupling YOLOv3 poses to a pruner:

- a downsample-by-stride path (``down1``, ``down2``: stride-2 3×3 CBLs, no pooling);
- Darknet residual blocks (1×1 CBL halving the width, 3×3 CBL restoring it, shortcut add), which
  tie the channels of the stage input and of every block's second CBL;
- a YOLOv3-neck: a 1×1 ``lateral`` CBL, a ×2 nearest ``upsample`` and a route/concat with the
  earlier, higher-resolution stage-1 feature map, fused by a 1×1 CBL;
- a classifier head (global average pooling and a linear layer) in place of YOLO's detection
  head, since digits is a classification set.

Data flow for 8×8 inputs (``C0..C3`` = ``widths``)::

    stem 8×8 C0 → down1 4×4 C1 → stage1 (res) ─────────────┐
                               → down2 2×2 C2 → stage2 (res) → lateral C2/2 → upsample 4×4
                                                  route = concat[upsample, stage1]  (C2/2 + C1)
                                                  → fuse C3 → head C3 → pool → classifier

BN layers are named ``stem.bn``, ``down1.bn``, ``stage1.<i>.cv1.bn``, ``stage1.<i>.cv2.bn``,
``down2.bn``, ``stage2.<i>.cv{1,2}.bn``, ``lateral.bn``, ``fuse.bn`` and ``head.bn``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import ConfigError
from .blocks import ConvBN, init_gamma, scale_widths

DEFAULT_WIDTHS = (16, 32, 64, 32)


class DarknetResidual(nn.Module):
    """Darknet's residual unit: 1×1 CBL to half width, 3×3 CBL back, plus the input.

    Args:
        channels: input and output channels.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = max(1, channels // 2)
        self.cv1 = ConvBN(channels, hidden, 1, act="leaky")
        self.cv2 = ConvBN(hidden, channels, 3, act="leaky")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.cv2(self.cv1(x))


class DarknetDigits(nn.Module):
    """The Darknet/YOLOv3-style classifier described in the module docstring.

    Args:
        widths: ``(stem, stage1, stage2, head)`` channel widths.
        blocks: residual units in stage 1 and stage 2.
        in_channels: input image channels.
        num_classes: classifier outputs.
    """

    def __init__(
        self,
        widths: Sequence[int] = DEFAULT_WIDTHS,
        blocks: Sequence[int] = (1, 2),
        in_channels: int = 1,
        num_classes: int = 10,
    ) -> None:
        super().__init__()
        if len(widths) != 4:
            raise ConfigError(
                f"darknet needs 4 widths (stem, stage1, stage2, head); got {tuple(widths)}"
            )
        if len(blocks) != 2 or min(blocks) < 1:
            raise ConfigError(
                f"darknet needs 2 positive residual counts (stage1, stage2); got {tuple(blocks)}"
            )
        c0, c1, c2, c3 = widths
        self.stem = ConvBN(in_channels, c0, 3, act="leaky")
        self.down1 = ConvBN(c0, c1, 3, stride=2, act="leaky")
        self.stage1 = nn.Sequential(*[DarknetResidual(c1) for _ in range(blocks[0])])
        self.down2 = ConvBN(c1, c2, 3, stride=2, act="leaky")
        self.stage2 = nn.Sequential(*[DarknetResidual(c2) for _ in range(blocks[1])])
        lateral = max(1, c2 // 2)
        self.lateral = ConvBN(c2, lateral, 1, act="leaky")
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.fuse = ConvBN(lateral + c1, c3, 1, act="leaky")
        self.head = ConvBN(c3, c3, 3, act="leaky")
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        route = self.stage1(self.down1(self.stem(x)))
        deep = self.stage2(self.down2(route))
        x = torch.cat([self.upsample(self.lateral(deep)), route], dim=1)
        x = self.head(self.fuse(x))
        return self.classifier(torch.flatten(self.pool(x), 1))


def build_darknet(
    widths: Sequence[int] = DEFAULT_WIDTHS,
    blocks: Sequence[int] = (1, 2),
    width: float = 1.0,
    gamma_init: float = 1.0,
    in_channels: int = 1,
    num_classes: int = 10,
) -> DarknetDigits:
    """Build the Darknet/YOLOv3-style demo model.

    Args:
        widths: base ``(stem, stage1, stage2, head)`` widths.
        blocks: residual units in stage 1 and stage 2.
        width: multiplier applied to every width.
        gamma_init: initial value of every BN weight γ.
        in_channels: input image channels.
        num_classes: classifier outputs.

    Returns:
        A freshly initialised model. Inputs need an even side length divisible by 4 (8×8 digits
        work), so the upsampled branch matches the stage-1 map it is concatenated with.

    Raises:
        ConfigError: on invalid widths, block counts, multiplier or γ init.
    """
    model = DarknetDigits(scale_widths(widths, width, "widths"), blocks, in_channels, num_classes)
    init_gamma(model, gamma_init)
    return model
