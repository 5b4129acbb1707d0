"""The engine on unusual torchvision blocks and operations the channel flow cannot follow.

Grouped (non-depthwise) convs, channel shuffles, fixed-size splits, attention-style reshapes:
each is either pruned consistently or reported as not prunable with a reason naming the layer,
never a raw exception.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from _models import randomize_bn
from _pruning import prune_exactly
from forecastprune.engine.coupling import plan_channels
from forecastprune.engine.surgery import prune_model
from forecastprune.errors import PruningError
from forecastprune.integrations._torchvision_ops import ensure_torchvision_ops

ensure_torchvision_ops()
models = pytest.importorskip("torchvision.models", reason="torchvision is optional")

X64 = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
X8 = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("policy", ["seed", "grouped"])
@pytest.mark.parametrize("name", ["regnet_x_400mf", "shufflenet_v2_x0_5"])
def test_torchvision_model_prunes_exactly(name, policy):
    model = randomize_bn(getattr(models, name)(num_classes=10)).eval()
    plan, _, _ = prune_exactly(model, X64, policy)
    why = " ".join(plan.reasons.values())
    assert ("grouped conv" in why) if name.startswith("regnet") else ("shuffled" in why)


def test_grouped_conv_channels_are_not_prunable_and_a_forced_cut_names_the_layer():
    model = randomize_bn(nn.Sequential(
        nn.Conv2d(3, 32, 3), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 32, 3, groups=2), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 8, 1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 2),
    )).eval()
    plan = plan_channels(model, X8, policy="grouped")
    assert plan.prunable_layers == ("7",)
    assert "grouped conv '3' (groups=2)" in plan.reasons["1"]
    assert "grouped conv '3'" in plan.reasons["4"]
    keep = {name: torch.ones(size, dtype=torch.bool).numpy() for name, size in plan.layout.layers}
    keep["1"][0] = False
    with pytest.raises(PruningError, match=r"layer '1'.*grouped conv"):
        prune_model(model, keep, X8, plan)
    # the flatten before the linear layer is followed: BN 7's channels become blocks of inputs
    keep = {name: torch.ones(size, dtype=torch.bool).numpy() for name, size in plan.layout.layers}
    keep["7"][[0, 5]] = False
    pruned = prune_model(model, keep, X8, plan)
    assert pruned[10].in_features == 6 * 4 * 4


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
    with pytest.raises(PruningError, match="tracing the model on the example inputs failed"):
        plan_channels(model, torch.randn(1, 4, 32, 32))
