"""The engine on unusual torchvision blocks and operations the channel flow cannot follow.

Grouped (non-depthwise) convs, channel shuffles, fixed-size splits, attention-style reshapes:
each is either pruned consistently or reported as not prunable with a reason naming the layer,
never a raw exception.
"""

from __future__ import annotations

import _pruning
import pytest
import torch
from _models import randomize_bn
from _pruning import prune_exactly
from torch import nn

from forecastprune._torchvision_ops import ensure_torchvision_ops
from forecastprune.engine.coupling import plan_channels
from forecastprune.engine.surgery import prune_model
from forecastprune.errors import PruningError

ensure_torchvision_ops()
models = pytest.importorskip("torchvision.models", reason="torchvision is optional")

X64 = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
X8 = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["seed", "grouped"])
@pytest.mark.parametrize("name", ["regnet_x_400mf", "shufflenet_v2_x0_5"])
def test_torchvision_model_prunes_exactly(name, policy):
    model = randomize_bn(getattr(models, name)(num_classes=10)).eval()
    plan, _, pruned = prune_exactly(model, X64, policy)
    if name.startswith("shufflenet"):
        assert "shuffled" in plan.reasons["stage2.0.branch1.3"]
    elif policy == "grouped":  # regnet's grouped 3x3 convs lose whole groups
        groups = [
            (a.groups, b.groups)
            for a, b in zip(model.modules(), pruned.modules())
            if isinstance(a, nn.Conv2d) and a.groups > 1
        ]
        assert groups and any(after < before for before, after in groups)


def test_a_grouped_conv_loses_whole_groups_with_their_inputs():
    model = randomize_bn(
        nn.Sequential(
            nn.Conv2d(3, 32, 3),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, groups=4),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.Conv2d(32, 8, 1),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(8 * 4 * 4, 2),
        )
    ).eval()
    plan = plan_channels(model, X8, policy="grouped")
    units = sorted(sorted(g.tolist()) for g in plan.groups)
    # group k: input channels 8k..8k+7 (BN '1') with output channels 8k..8k+7 (BN '4')
    assert units == [
        [*range(8 * k, 8 * k + 8), *range(32 + 8 * k, 32 + 8 * k + 8)] for k in range(4)
    ]
    keep = {name: torch.ones(size, dtype=torch.bool).numpy() for name, size in plan.layout.layers}
    keep["1"][8:16] = keep["4"][8:16] = False
    keep["7"][[0, 5]] = False  # the flatten before the linear layer is followed too
    x = torch.randn(2, 3, 8, 8)
    reference = _pruning.zeroed(model, keep)
    pruned = prune_model(reference, keep, X8, plan)
    assert (pruned[3].groups, pruned[3].in_channels, pruned[3].out_channels) == (3, 24, 24)
    assert pruned[10].in_features == 6 * 4 * 4
    _pruning.assert_same_outputs(reference, pruned, x)
    keep["1"][8:16] = True  # half a group
    with pytest.raises(PruningError, match=r"coupled channels of layers \['1', '4'\]"):
        prune_model(model, keep, X8, plan)


class _Odd(nn.Module):
    """A block per operation the flow must refuse, each after its own conv + BN."""

    def __init__(self) -> None:
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(3, 8, 1) for _ in range(5))
        self.bns = nn.ModuleList(nn.BatchNorm2d(8) for _ in range(5))
        self.head = nn.Conv2d(5 + 8 + 4 + 8 + 3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b, c, d, e = (bn(conv(x)) for conv, bn in zip(self.convs, self.bns))
        a1, _ = a.split((5, 3), dim=1)  # fixed sizes
        b = b.softmax(dim=1)  # mixes channels
        n, ch, h, w = c.shape
        c = (c.view(n, 2, ch // 2, h * w) @ c.view(n, 2, ch // 2, h * w).transpose(2, 3)).sum()
        d = d[:, :4]  # fixed slice bounds
        return self.head(torch.cat([a1, b, d + c, e[:, :, :, :] + 1.0, e[:, :3]], 1))


def test_operations_the_flow_cannot_follow_become_reasons():
    plan = plan_channels(randomize_bn(_Odd()), X8, policy="grouped")
    assert "fixed sizes [5, 3] by split" in plan.reasons["bns.0"]
    assert "softmax across channels" in plan.reasons["bns.1"]
    assert "rearranged by view" in plan.reasons["bns.2"]
    assert "sliced by fixed bounds" in plan.reasons["bns.3"]
    assert "sliced by fixed bounds" in plan.reasons["bns.4"]
    assert plan.prunable_channels == 0


def test_a_model_that_fails_on_the_inputs_is_a_pruning_error():
    model = models.regnet_x_400mf(num_classes=10)
    with pytest.raises(PruningError, match=r"inputs failed in layer 'stem\.0'"):
        plan_channels(model, torch.randn(1, 4, 32, 32))
