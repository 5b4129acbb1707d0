"""Physical surgery, β compensation and optimizer rebuild on the demo and tiny test models."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from _models import TINY_MODELS, TinyMobileNetV2, TinyResNet, TinyVGG, randomize_bn
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from forecastprune.engine.coupling import plan_channels
from forecastprune.engine.optim import rebuild_optimizer
from forecastprune.engine.spec import PruneSpec
from forecastprune.engine.surgery import prune_model, surgery_record
from forecastprune.engine.threshold import select_channels
from forecastprune.errors import LayoutError, PruningError
from forecastprune.zoo import build_model

X16 = torch.randn(4, 1, 16, 16, generator=torch.Generator().manual_seed(1))
X8 = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(2))

#: model name -> (constructor, inputs)
MODELS = {
    **{name: (cls, X16) for name, cls in TINY_MODELS.items()},
    **{name: ((lambda n=name: build_model(n)), X8) for name in ("vgg", "resnet", "darknet")},
}
CASES = [(name, policy) for name in MODELS for policy in ("seed", "grouped")]


def _setup(name: str, policy: str, ratio: float = 0.5, seed: int = 0):
    build, x = MODELS[name]
    model = randomize_bn(build(), seed).eval()
    plan = plan_channels(model, x, policy=policy)
    scores = np.random.default_rng(seed).random(plan.layout.total)
    decision = select_channels(scores, plan, PruneSpec(ratio=ratio))
    return model, x, plan, decision


def _masked(model: nn.Module, keep: dict, beta_too: bool) -> nn.Module:
    """A copy with the dropped channels' γ (and optionally β) set to 0."""
    masked = copy.deepcopy(model)
    with torch.no_grad():
        for name, mask in keep.items():
            bn = masked.get_submodule(name)
            bn.weight[torch.as_tensor(~mask)] = 0.0
            if beta_too:
                bn.bias[torch.as_tensor(~mask)] = 0.0
    return masked


@torch.no_grad()
def _max_diff(a: nn.Module, b: nn.Module, x: torch.Tensor) -> float:
    return float((a(x) - b(x)).abs().max())


@pytest.mark.parametrize(("name", "policy"), CASES)
def test_surgery_shrinks_a_copy_and_matches_the_masked_model(name, policy):
    model, x, plan, decision = _setup(name, policy)
    assert decision.n_pruned > 0
    before = {k: v.clone() for k, v in model.state_dict().items()}
    zeroed = _masked(model, decision.keep, beta_too=True)
    pruned = prune_model(zeroed, decision, x, plan)
    # (a) with γ = β = 0 on the pruned channels, the cut changes nothing
    assert _max_diff(pruned, zeroed, x) < 1e-4
    # the copy is smaller and no layer is empty
    assert sum(p.numel() for p in pruned.parameters()) < sum(p.numel() for p in model.parameters())
    for module in pruned.modules():
        for param in module.parameters(recurse=False):
            assert min(param.shape) >= 1
    for layer, mask in decision.keep.items():
        assert pruned.get_submodule(layer).num_features == int(mask.sum())
    with torch.no_grad():
        assert pruned(x).shape == model(x).shape
    # (b) with β ≠ 0, compensation brings the cut strictly closer to the γ = 0 model
    masked = _masked(model, decision.keep, beta_too=False)
    compensated = prune_model(model, decision, x, plan)
    plain = prune_model(model, decision, x, plan, compensate=False)
    assert _max_diff(compensated, masked, x) < _max_diff(plain, masked, x)
    # the input model is untouched
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


#: layers whose channels are read only by 1×1 convs or linear layers: compensation is exact
EXACT = {
    "tiny_mobilenetv2": None,  # every reader of a prunable channel is 1×1 or linear
    "tiny_vgg": ["features.11", "classifier.2"],
    "darknet": ["lateral.bn", "head.bn"],
    "vgg": ["features.conv6.bn"],
}


@pytest.mark.parametrize("name", sorted(EXACT))
def test_compensation_is_exact_before_1x1_convs_and_linear_layers(name):
    model, x, plan, _ = _setup(name, "grouped")
    layers = EXACT[name] or list(plan.layout.names)
    scores = np.ones(plan.layout.total)
    for layer in layers:
        scores[plan.layout.slice(layer)] = np.random.default_rng(3).random(
            plan.layout.slice(layer).stop - plan.layout.slice(layer).start
        )
    # a threshold just under 1 cuts only channels of the chosen layers
    decision = select_channels(scores, plan, PruneSpec(threshold=0.6))
    assert decision.n_pruned > 0
    masked = _masked(model, decision.keep, beta_too=False)
    assert _max_diff(prune_model(model, decision, x, plan), masked, x) < 1e-4
    assert _max_diff(prune_model(model, decision, x, plan, compensate=False), masked, x) > 1e-3


@settings(max_examples=8, deadline=None)
@given(st.lists(st.booleans(), min_size=80, max_size=80), st.booleans())
def test_any_valid_mask_on_vgg_matches_the_masked_model(bits, training):
    model = randomize_bn(TinyVGG(), 4).train(training)
    plan = plan_channels(model, X16, policy="seed")
    keep = plan.layout.split(np.array(bits))
    for mask in keep.values():
        mask[0] = True  # never empty a layer
    pruned = prune_model(model, keep, X16)
    plain = prune_model(model, keep, X16, compensate=False).eval()
    assert pruned.training == training
    for layer, mask in keep.items():
        assert pruned.get_submodule(layer).num_features == mask.sum()
    masked = _masked(model, keep, False).eval()
    assert _max_diff(pruned.eval(), masked, X16) <= _max_diff(plain, masked, X16) + 1e-6


def test_a_tensor_mask_and_a_train_mode_model_are_accepted():
    model = TinyResNet().train()
    keep = {"layer1.0.bn1": torch.tensor([True, False] * 4)}
    pruned = prune_model(model, keep, X16)
    assert pruned.training and pruned.layer1[0].conv1.out_channels == 4
    assert pruned.layer1[0].conv2.in_channels == 4
    assert surgery_record(pruned).keep["layer1.0.bn1"].tolist() == [0, 2, 4, 6]


def test_mismatched_masks_are_clear_errors():
    model = TinyVGG()
    with pytest.raises(LayoutError, match=r"'features.2' .* not an affine BatchNorm"):
        prune_model(model, {"features.2": np.ones(8, bool)}, X16)
    with pytest.raises(LayoutError, match="has 8 channels in the model but 6"):
        prune_model(model, {"features.1": np.ones(6, bool)}, X16)
    with pytest.raises(PruningError, match="bool array"):
        prune_model(model, {"features.1": np.ones(8)}, X16)
    with pytest.raises(PruningError, match="would lose all 8 channels"):
        prune_model(model, {"features.1": np.zeros(8, bool)}, X16)
    plan = plan_channels(model, X16)
    with pytest.raises(LayoutError, match="layout mismatch"):
        prune_model(model, {"features.1": np.ones(8, bool)}, X16, plan)


def test_masks_that_break_the_plan_are_refused():
    model = TinyResNet()
    seed = plan_channels(model, X16, policy="seed")
    keep = seed.layout.split(np.ones(seed.layout.total, bool))
    keep["layer1.0.bn2"][0] = False
    with pytest.raises(PruningError, match="may not be pruned under the 'seed' plan"):
        prune_model(model, keep, X16, seed)
    grouped = plan_channels(model, X16, policy="grouped")
    with pytest.raises(PruningError, match="must be pruned together"):
        prune_model(model, keep, X16, grouped)


def test_rebuilt_sgd_keeps_hyper_parameters_and_remaps_momentum():
    model = TinyResNet()
    optimizer = torch.optim.SGD(
        [
            {"params": [p for n, p in model.named_parameters() if "bn" in n], "weight_decay": 0.0},
            {"params": [p for n, p in model.named_parameters() if "bn" not in n]},
        ],
        lr=0.1,
        momentum=0.9,
        weight_decay=1e-4,
        nesterov=True,
    )
    model(X16).sum().backward()
    optimizer.step()
    keep = {"layer1.0.bn1": np.array([True, False] * 4)}
    pruned = prune_model(model, keep, X16)
    new_opt = rebuild_optimizer(optimizer, pruned)
    assert type(new_opt) is torch.optim.SGD
    assert [g["weight_decay"] for g in new_opt.param_groups] == [0.0, 1e-4]
    assert new_opt.param_groups[1]["nesterov"] and new_opt.param_groups[0]["lr"] == 0.1
    assert sum(len(g["params"]) for g in new_opt.param_groups) == len(list(pruned.parameters()))
    old = optimizer.state[model.layer1[0].conv1.weight]["momentum_buffer"]
    new = new_opt.state[pruned.layer1[0].conv1.weight]["momentum_buffer"]
    assert torch.equal(new, old[[0, 2, 4, 6]])
    old = optimizer.state[model.layer1[0].conv2.weight]["momentum_buffer"]
    new = new_opt.state[pruned.layer1[0].conv2.weight]["momentum_buffer"]
    assert torch.equal(new, old[:, [0, 2, 4, 6]])
    # training continues right away
    pruned(X16).sum().backward()
    new_opt.step()


def test_rebuilt_adam_remaps_moments_and_keeps_the_step():
    model = TinyMobileNetV2()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.8, 0.99))
    model(X16).sum().backward()
    optimizer.step()
    plan = plan_channels(model, X16, policy="grouped")
    decision = select_channels(
        np.random.default_rng(0).random(plan.layout.total), plan, PruneSpec(ratio=0.3)
    )
    pruned = prune_model(model, decision, X16, plan)
    new_opt = rebuild_optimizer(optimizer, pruned)
    assert new_opt.param_groups[0]["betas"] == (0.8, 0.99)
    bn = "features.4.conv.4"
    kept = np.flatnonzero(decision.keep[bn])
    old_state = optimizer.state[model.get_submodule(bn).weight]
    new_state = new_opt.state[pruned.get_submodule(bn).weight]
    assert torch.equal(new_state["exp_avg"], old_state["exp_avg"][kept])
    assert float(new_state["step"]) == float(old_state["step"]) == 1.0


def test_rebuild_refuses_an_optimizer_of_another_model():
    pruned = prune_model(TinyVGG(), {"features.1": np.array([True, False] * 4)}, X16)
    other = torch.optim.SGD(TinyVGG().parameters(), lr=0.1)
    with pytest.raises(PruningError, match="none of the optimizer's parameters"):
        rebuild_optimizer(other, pruned)
    with pytest.raises(PruningError, match="not a model returned by prune_model"):
        rebuild_optimizer(other, TinyVGG())


def test_a_bias_is_created_where_no_bn_follows_and_joins_its_weights_group():
    torch.manual_seed(0)
    model = randomize_bn(
        nn.Sequential(
            nn.Conv2d(1, 6, 3, padding=1, bias=False),
            nn.BatchNorm2d(6),
            nn.LeakyReLU(0.1),
            nn.Conv2d(6, 4, 1, bias=False),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(4 * 16 * 16, 3),
        )
    ).eval()
    optimizer = torch.optim.SGD(
        [
            {"params": model[0].parameters(), "lr": 0.1},
            {"params": model[3].parameters(), "lr": 0.01},
            {"params": model[6].parameters()},
        ],
        lr=0.5,
    )
    keep = {"1": np.array([True, False, True, True, False, True])}
    pruned = prune_model(model, keep, X16)
    assert model[3].bias is None and pruned[3].bias is not None
    assert _max_diff(pruned, _masked(model, keep, False), X16) < 1e-4
    new_opt = rebuild_optimizer(optimizer, pruned)
    assert any(p is pruned[3].bias for p in new_opt.param_groups[1]["params"])
    assert new_opt.param_groups[1]["lr"] == 0.01
