"""YOLOv3: the Darknet-53 backbone and the three-scale detection head of the standard yolov3.cfg.

Random initialisation, no weights (nothing is downloaded). The layer widths are yolov3.cfg's,
so the model has its 75 convolutions, 72 of them CBL blocks (Conv-BN-LeakyReLU(0.1)), and the
structure the pruning write-up works on::

    stem 32 → stage1 (down 64, 1 residual) → stage2 (down 128, 2) → stage3 (down 256, 8) ──┐ P3
            → stage4 (down 512, 8) ─────────────────────────────────────────────────────┐ P4
            → stage5 (down 1024, 4) → scale1: 5 CBLs (512) → cv6 1024 → detect (13×13)   │  │
                                       └ lateral1 256 → upsample ×2 → route [·, P4] ────┘  │
                                         → scale2: 5 CBLs (256) → cv6 512 → detect (26×26)  │
                                            └ lateral2 128 → upsample ×2 → route [·, P3] ───┘
                                              → scale3: 5 CBLs (128) → cv6 256 → detect (52×52)

``forward`` returns the three raw prediction maps ``(N, 3·(num_classes + 5), H/32, W/32)``,
``(…, H/16, W/16)`` and ``(…, H/8, W/8)``; anchor decoding and the loss are outside the scope
of a pruning library. Input sides must be multiples of 32 (416×416 is the usual size; the
structure is size independent, so 64×64 is enough to trace it).

Under the write-up's ``seed`` policy 42 BN layers / 13,376 channels are prunable: the stem, the
first (1×1) CBL of every residual unit, and the five 1×1/3×3 CBLs plus ``cv6`` of each scale —
not the downsampling CBLs or the residual units' second CBLs (tied by shortcut adds) and not the
``lateral`` CBLs (their channels reach a route through the upsample).
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError
from .blocks import ConvBN, init_gamma
from .darknet import DarknetResidual

#: (output width, residual units) of Darknet-53's five stages
DARKNET53_STAGES = ((64, 1), (128, 2), (256, 8), (512, 8), (1024, 4))


class DarknetStage(nn.Module):
    """A stride-2 3×3 CBL followed by residual units."""

    def __init__(self, in_channels: int, out_channels: int, units: int) -> None:
        super().__init__()
        self.down = ConvBN(in_channels, out_channels, 3, stride=2, act="leaky")
        self.blocks = nn.Sequential(*[DarknetResidual(out_channels) for _ in range(units)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.down(x))


class Darknet53(nn.Module):
    """The backbone; returns the stage-3, stage-4 and stage-5 feature maps."""

    def __init__(self, in_channels: int = 3) -> None:
        super().__init__()
        self.stem = ConvBN(in_channels, 32, 3, act="leaky")
        previous = 32
        for i, (width, units) in enumerate(DARKNET53_STAGES, start=1):
            setattr(self, f"stage{i}", DarknetStage(previous, width, units))
            previous = width

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.stage2(self.stage1(self.stem(x)))
        p3 = self.stage3(x)
        p4 = self.stage4(p3)
        return p3, p4, self.stage5(p4)


class YoloScale(nn.Module):
    """One detection scale: five alternating 1×1/3×3 CBLs, a 3×3 CBL and the 1×1 detector.

    ``forward`` returns the fifth CBL's output (which feeds the next scale's lateral branch) and
    the prediction map.
    """

    def __init__(self, in_channels: int, width: int, outputs: int) -> None:
        super().__init__()
        self.cv1 = ConvBN(in_channels, width, 1, act="leaky")
        self.cv2 = ConvBN(width, 2 * width, 3, act="leaky")
        self.cv3 = ConvBN(2 * width, width, 1, act="leaky")
        self.cv4 = ConvBN(width, 2 * width, 3, act="leaky")
        self.cv5 = ConvBN(2 * width, width, 1, act="leaky")
        self.cv6 = ConvBN(width, 2 * width, 3, act="leaky")
        self.detect = nn.Conv2d(2 * width, outputs, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.cv5(self.cv4(self.cv3(self.cv2(self.cv1(x)))))
        return x, self.detect(self.cv6(x))


class YOLOv3(nn.Module):
    """Darknet-53 plus the three-scale head (see the module docstring).

    Args:
        num_classes: object classes; each scale predicts 3 anchors × (classes + 5) maps.
        in_channels: input image channels.
    """

    def __init__(self, num_classes: int = 80, in_channels: int = 3) -> None:
        super().__init__()
        outputs = 3 * (num_classes + 5)
        self.backbone = Darknet53(in_channels)
        self.scale1 = YoloScale(1024, 512, outputs)
        self.lateral1 = ConvBN(512, 256, 1, act="leaky")
        self.scale2 = YoloScale(256 + 512, 256, outputs)
        self.lateral2 = ConvBN(256, 128, 1, act="leaky")
        self.scale3 = YoloScale(128 + 256, 128, outputs)
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p3, p4, p5 = self.backbone(x)
        route, out1 = self.scale1(p5)
        route, out2 = self.scale2(torch.cat([self.upsample(self.lateral1(route)), p4], dim=1))
        _, out3 = self.scale3(torch.cat([self.upsample(self.lateral2(route)), p3], dim=1))
        return out1, out2, out3


def build_yolov3(num_classes: int = 80, in_channels: int = 3, gamma_init: float = 1.0) -> YOLOv3:
    """Build YOLOv3 with yolov3.cfg's widths and random weights.

    Args:
        num_classes: object classes (80 for COCO).
        in_channels: input image channels.
        gamma_init: initial value of every BN weight γ.

    Returns:
        A freshly initialised model; inputs need sides that are multiples of 32.

    Raises:
        ConfigError: on a non-positive class or channel count, or an invalid γ init.
    """
    if int(num_classes) < 1 or int(in_channels) < 1:
        raise ConfigError(
            f"num_classes and in_channels must be positive; got {num_classes!r} and {in_channels!r}"
        )
    model = YOLOv3(int(num_classes), int(in_channels))
    init_gamma(model, gamma_init)
    return model
