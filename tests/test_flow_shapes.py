"""A layer that reads a channel count and reshapes by it: the tie the channel flow learns.

The attention here is ultralytics' (YOLO26, YOLOE, C2PSA) in miniature: heads split from a
conv's output, merged back with the channel count read from the block's input.
"""

from __future__ import annotations

import pytest
import torch
from _models import randomize_bn
from _pruning import prune_exactly
from torch import nn

from forecastprune.engine.coupling import plan_channels

X = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))


def _cbn(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))


class HeadAttention(nn.Module):
    """``B, C, H, W = x.shape`` … ``(v @ attn).view(B, C, H, W)``, as ultralytics does."""

    def __init__(self, dim: int, heads: int = 2) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = _cbn(dim, 3 * dim)
        self.proj = _cbn(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = (
            self.qkv(x)
            .view(b, self.heads, 3 * self.head_dim, h * w)
            .split([self.head_dim] * 3, dim=2)
        )
        attn = (q.transpose(-2, -1) @ k).softmax(dim=-1)
        return self.proj((v @ attn.transpose(-2, -1)).view(b, c, h, w))


class AreaAttention(HeadAttention):
    """YOLOv12's way: ``x.shape`` read for ``B, H, W`` only; heads merged to the layer's own
    width on the last axis, then moved to the channel axis. Nothing ties the input's width."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        width = self.heads * self.head_dim
        q, k, v = (
            self.qkv(x)
            .view(b, self.heads, 3 * self.head_dim, h * w)
            .split([self.head_dim] * 3, dim=2)
        )
        attn = (q.transpose(-2, -1) @ k).softmax(dim=-1)
        merged = (v @ attn.transpose(-2, -1)).permute(0, 3, 1, 2).reshape(b, h, w, width)
        return self.proj(merged.permute(0, 3, 1, 2))


class Net(nn.Module):
    def __init__(self, attention: type[nn.Module] | None = HeadAttention) -> None:
        super().__init__()
        self.stem = nn.Sequential(_cbn(3, 8), nn.SiLU())
        self.mid = nn.Sequential(_cbn(8, 16), nn.SiLU())
        self.attn = attention(16) if attention else _cbn(16, 16)
        self.out = nn.Conv2d(16, 4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.mid(self.stem(x))
        return self.out(y + self.attn(y))


def test_the_channels_an_attention_reads_its_count_from_are_not_prunable():
    plan = plan_channels(randomize_bn(Net()).eval(), X, policy="grouped")
    reason = plan.reasons["mid.0.1"]
    assert "channel count is read by 'attn'" in reason and "view to [2, 16, 8, 8]" in reason
    assert "mid.0.1" not in plan.prunable_layers and "attn.proj.1" not in plan.prunable_layers
    assert "attention heads" in plan.reasons["attn.qkv.1"]
    assert plan.prunable_layers == ("stem.0.1",)  # the rest of the network is untouched


@pytest.mark.parametrize("policy", ["seed", "grouped"])
@pytest.mark.parametrize("attention", [HeadAttention, AreaAttention])
def test_the_rest_prunes_exactly(attention, policy):
    prune_exactly(randomize_bn(Net(attention)).eval(), X, policy)


def test_heads_merged_to_a_fixed_width_leave_the_input_prunable():
    plan = plan_channels(randomize_bn(Net(AreaAttention)).eval(), X, policy="grouped")
    assert "read by" not in " ".join(plan.reasons.values())
    assert {"mid.0.1", "attn.proj.1"} <= set(plan.prunable_layers)


def test_a_shape_read_without_an_unfollowable_reshape_blocks_nothing():
    plan = plan_channels(randomize_bn(Net(attention=None)).eval(), X, policy="grouped")
    assert set(plan.prunable_layers) == {"stem.0.1", "mid.0.1", "attn.1"}
