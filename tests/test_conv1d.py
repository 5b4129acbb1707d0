"""1-D convolutions end to end: planning, coupling, surgery and MAC counts on Conv1d/BatchNorm1d.

The cut model must compute exactly what the dense model computes with the dropped channels'
γ and β set to 0 — in eval mode (running statistics) and in train mode (batch statistics: a
zeroed channel is 0 whatever its statistics, and every kept channel's statistics are its own).
"""

from __future__ import annotations

import copy

import pytest
import torch
from _models import randomize_bn
from _pruning import assert_same_outputs, decide, zeroed
from torch import nn

from forecastprune.engine.stats import count_macs
from forecastprune.engine.surgery import prune_model
from forecastprune.zoo import build_model

X = torch.randn(6, 1, 40, generator=torch.Generator().manual_seed(3))


class Residual1d(nn.Module):
    """Conv1d-BN stem, two residual units (the add ties their BN channels), a stride-2 conv,
    max-pool, and a linear layer over the flattened features (40 → 20 → 10 positions)."""

    def __init__(self, width: int = 12) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv1d(1, width, 5, padding=2, bias=False))
        self.stem_bn = nn.BatchNorm1d(width)
        self.units = nn.ModuleList(
            nn.Sequential(
                nn.Conv1d(width, width // 2, 1, bias=False),
                nn.BatchNorm1d(width // 2),
                nn.ReLU(),
                nn.Conv1d(width // 2, width, 3, padding=1, bias=False),
                nn.BatchNorm1d(width),
            )
            for _ in range(2)
        )
        self.down = nn.Conv1d(width, 2 * width, 3, stride=2, padding=1, bias=False)
        self.down_bn = nn.BatchNorm1d(2 * width)
        self.head = nn.Linear(2 * width * 10, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.stem_bn(self.stem(x)))
        for unit in self.units:
            x = torch.relu(x + unit(x))
        x = torch.relu(self.down_bn(self.down(x)))
        return self.head(torch.flatten(nn.functional.max_pool1d(x, 2), 1))


MODELS = {
    "cnn1d": lambda: build_model("cnn1d", widths=(16, 16, 16)),
    "residual1d": Residual1d,
}


def _cut(name: str, policy: str, training: bool) -> tuple[nn.Module, nn.Module, object]:
    """The zeroed dense model and its cut copy, both in the mode asked for."""
    model = randomize_bn(MODELS[name](), seed=1).train(training)
    plan, decision = decide(model, X, policy, ratio=0.5)
    assert decision.n_pruned > 0, plan.reasons
    reference = zeroed(model, decision.keep)
    pruned = prune_model(reference, decision, X, plan)
    assert pruned.training == training
    return reference, pruned, decision


@pytest.mark.parametrize("training", [False, True], ids=["eval", "train"])
@pytest.mark.parametrize("policy", ["seed", "grouped"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_the_cut_1d_model_equals_the_masked_one(name, policy, training) -> None:
    reference, pruned, decision = _cut(name, policy, training)
    # train mode updates running statistics: compare copies so both see the same batch once
    assert_same_outputs(copy.deepcopy(reference), copy.deepcopy(pruned), X)
    for layer, mask in decision.keep.items():
        bn = pruned.get_submodule(layer)
        assert isinstance(bn, nn.BatchNorm1d) and bn.num_features == int(mask.sum())
    assert sum(p.numel() for p in pruned.parameters()) < sum(
        p.numel() for p in reference.parameters()
    )


def test_a_residual_add_ties_its_1d_channels() -> None:
    model = randomize_bn(Residual1d(), seed=2).eval()
    seed_plan, _ = decide(model, X, "seed")
    tied = {"stem_bn", "units.0.4", "units.1.4"}
    # the seed rule never prunes shortcut-coupled layers; grouped prunes them together
    assert tied <= set(seed_plan.reasons)
    _, grouped = decide(model, X, "grouped")
    kept = {name: grouped.keep[name] for name in tied}
    assert len({tuple(mask.tolist()) for mask in kept.values()}) == 1
    assert not kept["stem_bn"].all()


def test_the_flattened_classifier_loses_every_position_of_a_cut_channel() -> None:
    reference, pruned, decision = _cut("cnn1d", "grouped", False)
    last = decision.keep["features.conv3.bn"]
    positions = 5  # 40 → 20 → 10 → 5
    assert pruned.classifier.in_features == int(last.sum()) * positions
    assert count_macs(pruned, X[:1]) < count_macs(reference, X[:1])
