"""Tests of the training loop and its callbacks."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from forecastprune.errors import ConfigError
from forecastprune.pipeline.trainer import Callback, Trainer, TrainingError
from forecastprune.zoo import build_model, load_digits_split, make_loaders


@pytest.fixture(scope="module")
def loaders():
    return make_loaders(load_digits_split(), batch_size=64, augment=True)


def make_trainer(loaders, epochs=1, callbacks=(), lr=0.05, **kwargs):
    torch.manual_seed(0)
    model = build_model("vgg", width=0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    return Trainer(
        model, optimizer, *loaders, epochs=epochs, callbacks=callbacks, progress=False, **kwargs
    )


class Log(Callback):
    """Records every hook call and what the model looked like at that moment."""

    def __init__(self):
        self.events = []

    def on_after_backward(self, trainer, step):
        bn = trainer.model.features.conv1.bn
        self.events.append(("backward", step, bn.weight.grad is not None, trainer.step))
        self.before = bn.weight.detach().clone()

    def on_after_step(self, trainer, step):
        changed = not torch.equal(trainer.model.features.conv1.bn.weight, self.before)
        self.events.append(("step", step, changed, trainer.step))

    def on_epoch_end(self, trainer, epoch):
        self.events.append(("epoch", epoch, None, trainer.step))

    def on_train_end(self, trainer):
        self.events.append(("end", None, None, trainer.step))


def test_hooks_fire_in_order_with_consistent_steps(loaders):
    log = Log()
    trainer = make_trainer(loaders, epochs=2, callbacks=[log], limit_batches=3)
    result = trainer.fit()
    assert trainer.steps_per_epoch == 3 and trainer.total_steps == 6
    assert result.steps == 6 and len(result.epochs) == 2
    expected = []
    for epoch in range(2):
        for step in range(3 * epoch, 3 * epoch + 3):
            # gradients exist before the update; the update changed γ; trainer.step counts it
            expected += [("backward", step, True, step), ("step", step, True, step + 1)]
        expected.append(("epoch", epoch, None, 3 * epoch + 3))
    expected.append(("end", None, None, 6))
    assert log.events == expected
    assert 0.0 <= result.accuracy <= 1.0
    assert result.accuracy == pytest.approx(trainer.evaluate())


def test_training_learns_digits(loaders):
    trainer = make_trainer(loaders, epochs=3)
    before = trainer.evaluate()
    result = trainer.fit()
    assert result.accuracy > 0.6 > before
    assert result.epochs[-1].train_loss < result.epochs[0].train_loss


class SwapAt(Callback):
    """Replaces model and optimizer after a given step, as the pruning pipeline does."""

    def __init__(self, at):
        self.at = at

    def on_after_step(self, trainer, step):
        if step != self.at:
            return None
        self.old_model = trainer.model
        self.new_model = copy.deepcopy(trainer.model)
        new_optimizer = torch.optim.SGD(self.new_model.parameters(), lr=trainer.lr)
        self.snapshot = copy.deepcopy(self.old_model.state_dict())
        return self.new_model, new_optimizer


def test_callback_can_swap_model_and_optimizer(loaders):
    swap = SwapAt(at=1)
    trainer = make_trainer(loaders, epochs=1, callbacks=[swap], limit_batches=5)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(trainer.optimizer, milestones=[3], gamma=0.1)
    trainer.scheduler = scheduler
    trainer.fit()
    assert trainer.model is swap.new_model and trainer.model is not swap.old_model
    # the old model was never touched after the swap; the new one kept training
    old_state = swap.old_model.state_dict()
    assert all(torch.equal(old_state[k], v) for k, v in swap.snapshot.items())
    new_state = swap.new_model.state_dict()
    assert not torch.equal(new_state["classifier.weight"], swap.snapshot["classifier.weight"])
    # the scheduler followed the swap: the milestone at step 3 decayed the *new* optimizer
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.005)
    assert scheduler.optimizer is trainer.optimizer


def test_state_dict_round_trip(loaders):
    trainer = make_trainer(loaders, epochs=1, limit_batches=2)
    trainer.fit()
    state = trainer.state_dict()
    fresh = make_trainer(loaders, epochs=2, limit_batches=2)
    fresh.load_state_dict(state)
    assert fresh.step == 2 and fresh.epoch == 1
    x = loaders[1].dataset.tensors[0][:8]
    trainer.model.eval(), fresh.model.eval()
    assert torch.equal(trainer.model(x), fresh.model(x))
    assert fresh.fit().steps == 4
    with pytest.raises(ConfigError, match="callbacks"):
        make_trainer(loaders, callbacks=[Callback()]).load_state_dict(state)


def test_diverging_loss_raises_a_clear_error(loaders):
    def nan_loss(logits, labels):
        return nn.functional.cross_entropy(logits, labels) * float("nan")

    with pytest.raises(TrainingError, match="step 0"):
        make_trainer(loaders, loss_fn=nan_loss).fit()


@pytest.mark.parametrize("kwargs", [{"epochs": 0}, {"limit_batches": 0}])
def test_bad_arguments_raise(loaders, kwargs):
    with pytest.raises(ConfigError):
        make_trainer(loaders, **kwargs)


class LrLog(Callback):
    def __init__(self):
        self.lrs = []

    def on_after_step(self, trainer, step):
        self.lrs.append(trainer.lr)


def test_callbacks_see_the_lr_the_update_used(loaders):
    log = LrLog()
    trainer = make_trainer(loaders, callbacks=[log], limit_batches=4)
    trainer.scheduler = torch.optim.lr_scheduler.MultiStepLR(trainer.optimizer, [2], gamma=0.1)
    trainer.fit()
    # milestone 2: updates 1 and 2 (steps 0, 1) ran at 0.05, updates 3 and 4 at 0.005
    assert log.lrs == pytest.approx([0.05, 0.05, 0.005, 0.005])
