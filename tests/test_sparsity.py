"""BNSparsity: one step of each schedule equals the hand-computed update; AMP; exclusions."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from forecastprune.errors import ConfigError, LayoutError
from forecastprune.record.sparsity import BNSparsity

S = 1e-2
LR = 0.1


def make_net(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 3),
    )
    with torch.no_grad():  # signed, pairwise distinct |γ| so the top-k set is unambiguous
        gammas = torch.linspace(0.05, 1.0, 10)[torch.randperm(10)]
        gammas *= torch.where(torch.rand(10) < 0.4, -1.0, 1.0)
        net[1].weight.copy_(gammas[:4])
        net[4].weight.copy_(gammas[4:])
    return net


BNS = (1, 4)


def backward(net: nn.Module, seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(8, 1, 6, 6, generator=generator)
    y = torch.randint(0, 3, (8,), generator=generator)
    net.zero_grad()
    nn.functional.cross_entropy(net(x), y).backward()


def data_grads(net: nn.Module) -> list[torch.Tensor]:
    return [net[i].weight.grad.clone() for i in BNS]


def expected(net: nn.Module, grads: list[torch.Tensor], coefficient) -> list[torch.Tensor]:
    """Hand-computed: data gradient + s_eff * sign(γ), s_eff per channel."""
    out = []
    offset = 0
    for i, grad in zip(BNS, grads):
        gamma = net[i].weight.detach()
        c = torch.as_tensor(coefficient[offset : offset + len(gamma)], dtype=torch.float32)
        out.append(grad + torch.sign(gamma) * c)
        offset += len(gamma)
    return out


def assert_grads(net: nn.Module, wanted: list[torch.Tensor]) -> None:
    for i, grad in zip(BNS, wanted):
        torch.testing.assert_close(net[i].weight.grad, grad, rtol=0, atol=0)


def test_constant_schedule_one_sgd_step_equals_hand_computed_update():
    net = make_net()
    backward(net)
    grads = data_grads(net)
    before = [net[i].weight.detach().clone() for i in BNS]
    BNSparsity(net, S).apply(step=3)
    assert_grads(net, expected(net, grads, np.full(10, S)))
    torch.optim.SGD(net.parameters(), lr=LR).step()
    for i, gamma, grad in zip(BNS, before, grads):
        # network slimming: γ ← γ − lr·(∂L/∂γ + s·sign(γ))
        wanted = gamma - LR * (grad + S * torch.sign(gamma))
        torch.testing.assert_close(net[i].weight.detach(), wanted)


@pytest.mark.parametrize("step, s_eff", [(59, S), (60, S * 0.25)])
def test_step_decay_switches_at_the_fraction(step, s_eff):
    net = make_net()
    sparsity = BNSparsity(net, S, "step", total_steps=100, factor=0.25, at=0.6)
    backward(net)
    grads = data_grads(net)
    sparsity.apply(step)
    assert sparsity.strength(step) == s_eff
    assert_grads(net, expected(net, grads, np.full(10, s_eff)))


def test_relieve_gives_the_global_top_fraction_the_reduced_strength():
    net = make_net()
    sparsity = BNSparsity(net, S, "relieve", total_steps=10, factor=0.1, at=0.5, top_fraction=0.3)
    gamma = np.concatenate([net[i].weight.detach().numpy() for i in BNS])
    backward(net)
    grads = data_grads(net)
    sparsity.apply(4)  # before the switch: every channel gets s
    assert_grads(net, expected(net, grads, np.full(10, S)))

    backward(net)
    grads = data_grads(net)
    sparsity.apply(5)
    top3 = np.argsort(-np.abs(gamma))[:3]  # global across both layers
    coefficient = np.full(10, S, dtype=np.float32)
    coefficient[top3] = np.float32(S * 0.1)
    assert_grads(net, expected(net, grads, coefficient))
    assert set(np.flatnonzero(sparsity.relieved_mask().numpy())) == set(top3)


@settings(max_examples=30, deadline=None)
@given(
    values=st.lists(st.floats(-3, 3, allow_nan=False, width=32), min_size=10, max_size=10),
    fraction=st.floats(0.01, 1.0),
)
def test_relieved_channels_are_exactly_the_largest(values, fraction):
    net = make_net()
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor(values[:4]))
        net[4].weight.copy_(torch.tensor(values[4:]))
    mask = BNSparsity(net, S, "relieve", total_steps=1, top_fraction=fraction).relieved_mask()
    magnitude = np.abs(np.asarray(values, dtype=np.float32))
    assert mask.sum() == int(np.floor(fraction * 10 + 0.5))
    if mask.any() and not mask.all():
        assert magnitude[mask.numpy()].min() >= magnitude[~mask.numpy()].max()


def test_excluded_layers_and_layers_without_gradient_are_untouched():
    net = make_net()
    backward(net)
    grads = data_grads(net)
    BNSparsity(net, S, exclude="1").apply(0)
    torch.testing.assert_close(net[1].weight.grad, grads[0], rtol=0, atol=0)
    assert_grads(net, [grads[0], expected(net, grads, np.full(10, S))[1]])

    net[1].weight.grad = None
    BNSparsity(net, S).apply(0)
    assert net[1].weight.grad is None
    with pytest.raises(LayoutError, match="matches no affine BatchNorm"):
        BNSparsity(net, S, layers="backbone.*")


def test_amp_order_unscale_then_apply_adds_exactly_s_sign():
    reference, net = make_net(), make_net()
    backward(reference)
    optimizer = torch.optim.SGD(net.parameters(), lr=LR)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**12)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(8, 1, 6, 6, generator=generator)
    y = torch.randint(0, 3, (8,), generator=generator)
    optimizer.zero_grad()
    scaler.scale(nn.functional.cross_entropy(net(x), y)).backward()
    scaled = net[1].weight.grad.clone()
    scaler.unscale_(optimizer)
    BNSparsity(net, S).apply(0)
    wanted = expected(net, data_grads(reference), np.full(10, S))
    # a power-of-two loss scale is undone exactly, so the L1 term is exactly s·sign(γ)
    assert_grads(net, wanted)
    assert not torch.allclose(scaled, wanted[0])  # the scale really was applied first
    before = [net[i].weight.detach().clone() for i in BNS]
    scaler.step(optimizer)
    scaler.update()
    for i, gamma, grad in zip(BNS, before, wanted):
        torch.testing.assert_close(net[i].weight.detach(), gamma - LR * grad)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"s": -1e-4}, "s must be finite and >= 0"),
        ({"s": float("nan")}, "s must be finite"),
        ({"s": "1e-4"}, "s must be a number"),
        ({"s": S, "schedule": "cosine"}, "schedule must be one of"),
        ({"s": S, "schedule": "step"}, "needs total_steps"),
        ({"s": S, "schedule": "relieve", "total_steps": 0}, "total_steps must be a positive"),
        ({"s": S, "at": 1.5}, r"at must be finite and in \[0, 1\]"),
        ({"s": S, "factor": -0.1}, "factor must be finite and >= 0"),
        ({"s": S, "top_fraction": 0.0}, r"top_fraction must be in \(0, 1\]"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, fragment):
    with pytest.raises(ConfigError, match=fragment):
        BNSparsity(make_net(), **kwargs)


def test_apply_rejects_a_negative_step():
    with pytest.raises(ConfigError, match="integer >= 0"):
        BNSparsity(make_net(), S).apply(-1)
