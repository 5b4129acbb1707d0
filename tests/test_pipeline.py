"""EarlyPruner, prune timing, forecast masks and compute accounting on tiny real runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from forecastprune.core.metrics import early_bird_step
from forecastprune.engine.coupling import plan_channels
from forecastprune.engine.spec import PruneSpec
from forecastprune.errors import ConfigError, ForecastPruneError
from forecastprune.pipeline import EarlyPruner
from forecastprune.pipeline.compute import TRAIN_MAC_FACTOR, ComputeMeter, per_sample_macs
from forecastprune.pipeline.decision import forecast_mask
from forecastprune.pipeline.timing import (
    FixedTiming,
    auto_timing,
    early_bird_timing,
)
from forecastprune.zoo import build_model, load_digits_split

BATCH = 32


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    split = load_digits_split(seed=0)
    return split.x_train[: BATCH * 4], split.y_train[: BATCH * 4]


def _model() -> nn.Module:
    torch.manual_seed(0)
    return build_model("darknet", width=0.5, gamma_init=0.5)


def _batches(data: tuple[torch.Tensor, torch.Tensor], step: int):
    x, y = data
    i = (step % 4) * BATCH
    return x[i : i + BATCH], y[i : i + BATCH]


def _train(
    pruner: EarlyPruner,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    data,
    steps: int,
    start: int = 1,
) -> tuple[nn.Module, torch.optim.Optimizer, list]:
    losses = []
    for step in range(start, start + steps):
        x, y = _batches(data, step)
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        pruner.regularize(step - 1)
        optimizer.step()
        model, optimizer = pruner.step(step)
        losses.append(float(loss.detach()))
    return model, optimizer, losses


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_prunes_at_the_fixed_step_and_training_continues(digits, tmp_path) -> None:
    model = _model()
    dense_params = _params(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    pruner = EarlyPruner(
        model,
        optimizer,
        forecaster="sma",
        prune_at="step:6",
        total_steps=12,
        example_inputs=digits[0][:2],
        store_path=tmp_path / "g.fpstore",
    )
    new_model, new_opt, losses = _train(pruner, model, optimizer, digits, 6)
    assert pruner.pruned_at == 6 and new_model is not model and new_opt is not optimizer
    # the user's model keeps its architecture; the returned one is smaller
    assert _params(model) == dense_params > _params(new_model)
    assert {id(p) for g in new_opt.param_groups for p in g["params"]} == {
        id(p) for p in new_model.parameters()
    }
    before = [p.detach().clone() for p in new_model.parameters()]
    final_model, final_opt, more = _train(pruner, new_model, new_opt, digits, 6, start=7)
    assert final_model is new_model and final_opt is new_opt  # no second prune
    assert all(math.isfinite(v) for v in losses + more)
    assert any(not torch.equal(a, b) for a, b in zip(before, new_model.parameters()))
    # recording stopped at the prune step; the store holds exactly steps 1..6
    from forecastprune.store import GammaTrajectoryStore

    with GammaTrajectoryStore.open(tmp_path / "g.fpstore") as store:
        assert store.steps.tolist() == list(range(1, 7))
    state = pruner.state_dict()
    assert state["pruned_at"] == 6 and state["prune"]["decision"]["pruned"] > 0


def test_regularize_adds_l1_before_pruning_and_nothing_after(digits) -> None:
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    s = 1e-2
    pruner = EarlyPruner(
        model,
        optimizer,
        forecaster="naive",
        sparsity=s,
        prune_at="step:2",
        total_steps=10,
        example_inputs=digits[0][:2],
    )
    bn = model.stem.bn
    x, y = _batches(digits, 0)
    nn.functional.cross_entropy(model(x), y).backward()
    grad = bn.weight.grad.clone()
    pruner.regularize(0)
    assert torch.allclose(bn.weight.grad, grad + s * torch.sign(bn.weight))
    model, optimizer, _ = _train(pruner, model, optimizer, digits, 2)
    assert pruner.pruned
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(x), y).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    pruner.regularize(3)
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters()))


def test_auto_prunes_when_forecast_masks_settle(digits) -> None:
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    pruner = EarlyPruner(
        model,
        optimizer,
        forecaster="naive",
        prune_at="stability",
        sparsity=0.0,
        check_every=1,
        total_steps=40,
        example_inputs=digits[0][:2],
        auto_options={"window": 2, "tolerance": 0.0, "deadline": 0.9},
    )
    # lr=0 after the first steps: γ freezes, so the forecast masks stop changing at once
    for group in optimizer.param_groups:
        group["lr"] = 0.0
    model, optimizer, _ = _train(pruner, model, optimizer, digits, 6)
    assert pruner.pruned_at == 3  # checks at 1, 2, 3: the third mask equals both previous ones
    assert pruner.fired_by == "stability"


def test_timing_rules_on_synthetic_masks() -> None:
    rng = np.random.default_rng(0)
    noisy = [rng.random(50) < 0.5 for _ in range(5)]
    stable = [noisy[-1]] * 3
    rule = auto_timing(check_every=10, window=3, tolerance=0.05, min_step=0, deadline=None)
    fired = [rule.observe(10 * (i + 1), m, None) for i, m in enumerate(noisy + stable)]
    assert fired == [False] * 7 + [True]
    # the deadline forces a prune when masks never settle
    rule = auto_timing(check_every=10, window=3, tolerance=0.0, deadline=30)
    assert [rule.observe(s, rng.random(50) < 0.5, None) for s in (10, 20, 30)] == [
        False,
        False,
        True,
    ]
    assert rule.fired_by == "deadline"
    # separated intervals are required when asked for
    rule = auto_timing(check_every=1, window=1, tolerance=0.0, max_ambiguous=0.1)
    mask = np.zeros(10, bool)
    assert [
        rule.observe(1, mask, 0.5),
        rule.observe(2, mask, 0.5),
        rule.observe(3, mask, 0.05),
    ] == [False, False, True]
    assert FixedTiming(5).observe(4, None, None) is False and FixedTiming(5).observe(5, None, None)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.lists(st.booleans(), min_size=12, max_size=12), min_size=1, max_size=12),
    st.integers(0, 3),
)
def test_early_bird_timing_fires_where_the_offline_criterion_does(rows, flips) -> None:
    masks = np.array(rows, dtype=bool)
    # make later masks settle sometimes: repeat the last row with a few flips
    tail = np.repeat(masks[-1:], 5, axis=0)
    tail[:, :flips] ^= True
    masks = np.concatenate([masks, tail])
    steps = np.arange(1, len(masks) + 1)
    expected = early_bird_step(steps, masks)
    rule = early_bird_timing(check_every=1)
    fired = next((s for s, m in zip(steps, masks) if rule.observe(int(s), m, None)), None)
    assert fired == expected


def test_forecast_mask_counts_channels_straddling_the_cut(digits) -> None:
    model = _model()
    plan = plan_channels(model, digits[0][:2])
    rng = np.random.default_rng(1)
    steps = np.arange(1, 21)
    slopes = rng.uniform(-0.02, 0.0, plan.layout.total)
    gammas = 0.5 + steps[:, None] * slopes + rng.normal(0, 1e-3, (20, plan.layout.total))
    mask = forecast_mask("linear", steps, gammas, 40, plan, PruneSpec(ratio=0.5))
    assert mask.decision.n_pruned == round(0.5 * plan.prunable_channels)
    assert mask.ambiguous is not None and 0.0 <= mask.ambiguous < 0.5
    # the channels with the steepest decline are predicted lowest and pruned
    prunable = np.flatnonzero(plan.prunable)
    steepest = prunable[np.argsort(slopes[prunable])[:5]]
    assert mask.decision.pruned[steepest].all()
    assert forecast_mask("naive", steps, gammas, 40, plan, PruneSpec()).ambiguous is None
    # uncertainty-aware: only channels whose upper bound is below the cut too, a subset
    noisy = gammas + rng.normal(0, 0.05, gammas.shape)
    plain = forecast_mask("linear", steps, noisy, 40, plan, PruneSpec(ratio=0.5)).decision
    cautious = forecast_mask(
        "linear", steps, noisy, 40, plan, PruneSpec(ratio=0.5, uncertainty=True)
    ).decision.pruned
    assert not (cautious & ~plain.pruned).any() and cautious.sum() < plain.n_pruned


def test_compute_meter_charges_the_smaller_model_after_pruning(digits) -> None:
    big, small = _model(), build_model("darknet", width=0.25)
    meter = ComputeMeter(digits[0][:2])
    macs_big = meter.set_model(big, 0)
    for _ in range(3):
        meter.add_step(BATCH)
    macs_small = meter.set_model(small, 3)
    meter.add_step(BATCH)
    assert macs_small < macs_big == per_sample_macs(big, digits[0][:5])
    assert meter.total_macs == TRAIN_MAC_FACTOR * BATCH * (3 * macs_big + macs_small)


def test_bad_arguments_raise_clear_errors(digits) -> None:
    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    kwargs = {"total_steps": 10, "example_inputs": digits[0][:2]}
    with pytest.raises(ConfigError, match="prune_at"):
        EarlyPruner(model, optimizer, prune_at="soon", **kwargs)
    with pytest.raises(ConfigError, match="step:1 to step:10"):
        EarlyPruner(model, optimizer, prune_at="step:11", **kwargs)
    with pytest.raises(ConfigError, match="write 'step:11'"):
        EarlyPruner(model, optimizer, prune_at=11, **kwargs)
    with pytest.raises(ForecastPruneError, match="cut needs policy"):
        EarlyPruner(model, optimizer, spec=PruneSpec(policy="none"), **kwargs)
    with pytest.raises(ConfigError, match="total_steps"):
        EarlyPruner(model, optimizer, total_steps=0, example_inputs=digits[0][:2])


def test_lightning_callback_prunes_the_module_attribute(digits, tmp_path) -> None:
    lightning = pytest.importorskip(
        "lightning", reason="the Lightning integration is an optional extra ('lightning')"
    )
    from forecastprune.integrations.lightning import EarlyPruneCallback

    class Module(lightning.pytorch.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = _model()

        def training_step(self, batch, batch_idx):
            x, y = batch
            return nn.functional.cross_entropy(self.net(x), y)

        def configure_optimizers(self):
            return torch.optim.SGD(self.net.parameters(), lr=0.05)

    module = Module()
    dense = _params(module.net)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(*digits), batch_size=BATCH)
    callback = EarlyPruneCallback("net", digits[0][:2], forecaster="naive", prune_at="step:3")
    trainer = lightning.pytorch.Trainer(
        max_epochs=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        default_root_dir=tmp_path,
        callbacks=[callback],
    )
    trainer.fit(module, loader)
    assert callback.pruner.pruned_at == 3 and _params(module.net) < dense
    assert {id(p) for p in trainer.optimizers[0].param_groups[0]["params"]} == {
        id(p) for p in module.net.parameters()
    }


def test_unknown_forecaster_fails_before_training(digits) -> None:
    from forecastprune.errors import UnknownForecasterError

    model = _model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    with pytest.raises(UnknownForecasterError, match="smaa"):
        EarlyPruner(
            model, optimizer, forecaster="smaa", total_steps=10, example_inputs=digits[0][:2]
        )


def test_forecast_mask_hands_the_plan_layout_to_layer_aware_forecasters(digits) -> None:
    """EarlyPruner's decision path: learned_gbr reads the traced plan's BN layers."""
    plan = plan_channels(_model(), digits[0][:2])
    rng = np.random.default_rng(2)
    steps = np.arange(1, 21)
    gammas = 0.5 + steps[:, None] * rng.uniform(-0.02, 0.0, plan.layout.total)
    mask = forecast_mask("learned_gbr", steps, gammas, 40, plan, PruneSpec(ratio=0.5))
    assert mask.decision.n_pruned == round(0.5 * plan.prunable_channels)
    # the forecast reorders the current values, it does not invent new ones
    np.testing.assert_allclose(np.sort(mask.prediction.scores), np.sort(np.abs(gammas[-1])))
