"""Resuming a run from a checkpoint gives the run that was never interrupted.

One uninterrupted run (Trainer + EarlyPruner, sparse → prune at step 6 → normal, 3 epochs of 4
steps) saves checkpoints on its way and copies its γ store next to each. Every checkpoint is
then loaded into freshly built objects (``torch.load(..., weights_only=True)``) and trained to
the end: weights, optimizer state, epoch history and γ store must equal the uninterrupted run's,
for checkpoints mid-epoch and at an epoch end, before the prune and after it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from forecastprune.errors import ConfigError
from forecastprune.pipeline import EarlyPruner, auto_timing
from forecastprune.pipeline.methods import PrunerCallback
from forecastprune.pipeline.trainer import Callback, Trainer
from forecastprune.store import GammaTrajectoryStore
from forecastprune.zoo import build_model, load_digits_split, make_loaders

EPOCHS, BATCHES, PRUNE_AT = 3, 4, 6
TOTAL = EPOCHS * BATCHES
#: (step, hook): mid-epoch and epoch-end checkpoints, before (≤ 6) and after the prune
CHECKPOINTS = [(3, "step"), (4, "epoch"), (8, "epoch"), (10, "step")]


class Checkpoints(Callback):
    """Saves ``trainer.state_dict()`` and a copy of the γ store at the chosen steps."""

    def __init__(self, folder: Path | None = None, store: Path | None = None) -> None:
        self.folder, self.store = folder, store

    def on_step_end(self, trainer: Trainer, step: int) -> None:
        self._save(trainer, "step")

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        self._save(trainer, "epoch")

    def _save(self, trainer: Trainer, hook: str) -> None:
        if self.folder is None or (trainer.step, hook) not in CHECKPOINTS:
            return
        name = f"{hook}{trainer.step}"
        torch.save(trainer.state_dict(), self.folder / f"{name}.pt")
        assert self.store is not None
        shutil.copytree(self.store, self.folder / f"{name}.fpstore")  # flushed by state_dict


def build(store: Path, checkpoints: Path | None = None) -> tuple[Trainer, EarlyPruner]:
    """A fresh run: model, optimizer, schedule, loaders with their generators, pruner."""
    torch.manual_seed(0)
    split = load_digits_split(seed=0)
    train_loader, test_loader = make_loaders(split, batch_size=64, augment=True, seed=1)
    model = build_model("darknet", width=0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=TOTAL)
    pruner = EarlyPruner(
        model,
        optimizer,
        forecaster="sma",
        prune_at=f"step:{PRUNE_AT}",
        total_steps=TOTAL,
        example_inputs=split.x_train[:2],
        store_path=store,
        steps_per_epoch=BATCHES,
        lr_schedule=scheduler,
    )
    trainer = Trainer(
        model,
        optimizer,
        train_loader,
        test_loader,
        EPOCHS,
        scheduler=scheduler,
        callbacks=[PrunerCallback(pruner), Checkpoints(checkpoints, store)],
        limit_batches=BATCHES,
        progress=False,
    )
    return trainer, pruner


def outcome(trainer: Trainer, store: Path) -> dict[str, Any]:
    with GammaTrajectoryStore.open(store) as opened:
        steps, values = opened.history()
        lrs = opened.lrs
    return {
        "model": trainer.model.state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "history": [vars(e) for e in trainer.history],
        "steps": steps,
        "values": values,
        "lrs": lrs,
    }


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> tuple[dict[str, Any], Path]:
    folder = tmp_path_factory.mktemp("straight")
    trainer, pruner = build(folder / "gammas.fpstore", checkpoints=folder)
    with pruner:
        trainer.fit()
    assert pruner.pruned_at == PRUNE_AT
    return outcome(trainer, folder / "gammas.fpstore"), folder


@pytest.mark.parametrize(("step", "hook"), CHECKPOINTS)
def test_resumed_run_equals_the_uninterrupted_one(straight, tmp_path, step, hook) -> None:
    expected, folder = straight
    store = tmp_path / "gammas.fpstore"
    shutil.copytree(folder / f"{hook}{step}.fpstore", store)  # the store as it was then
    state = torch.load(folder / f"{hook}{step}.pt", weights_only=True)
    trainer, pruner = build(store)
    dense = sum(p.numel() for p in trainer.model.parameters())
    with pruner:
        trainer.load_state_dict(state)
        resumed_pruned = sum(p.numel() for p in trainer.model.parameters()) < dense
        assert resumed_pruned == (step > PRUNE_AT)  # rebuilt smaller from the saved channels
        trainer.fit()
    assert pruner.pruned_at == PRUNE_AT and trainer.step == TOTAL
    got = outcome(trainer, store)
    assert got["model"].keys() == expected["model"].keys()
    for name, tensor in expected["model"].items():
        torch.testing.assert_close(got["model"][name], tensor, rtol=0, atol=1e-6, msg=name)
    for slot, saved in expected["optimizer"]["state"].items():
        for key, value in saved.items():
            torch.testing.assert_close(
                got["optimizer"]["state"][slot][key], value, rtol=0, atol=1e-6
            )
    assert got["optimizer"]["param_groups"] == expected["optimizer"]["param_groups"]
    assert got["history"] == expected["history"]
    np.testing.assert_array_equal(got["steps"], expected["steps"])
    np.testing.assert_array_equal(got["steps"], np.arange(1, PRUNE_AT + 1))
    np.testing.assert_array_equal(got["values"], expected["values"])
    np.testing.assert_array_equal(got["lrs"], expected["lrs"])


def test_pruner_state_loads_without_unpickling_and_refuses_mismatches(straight, tmp_path) -> None:
    _, folder = straight
    state = torch.load(folder / "step10.pt", weights_only=True)["callbacks"][0]
    assert state["pruned_at"] == PRUNE_AT and sum(map(len, state["keep"].values())) < sum(
        state["sizes"].values()
    )
    _, pruner = build(tmp_path / "g.fpstore")
    with pytest.raises(ConfigError, match="not an EarlyPruner state"):
        pruner.load_state_dict({"pruned_at": 3})
    with pytest.raises(ConfigError, match="forecaster 'sma' over 13 steps"):
        pruner.load_state_dict({**state, "total_steps": 12 + 1, "forecaster": "sma"})
    early = torch.load(folder / "step3.pt", weights_only=True)["callbacks"][0]
    split = load_digits_split(seed=0)
    model = build_model("darknet", width=0.5)
    temporary = EarlyPruner(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        forecaster="sma",
        total_steps=TOTAL,
        example_inputs=split.x_train[:2],
    )
    with pytest.raises(ConfigError, match="store_path="):
        temporary.load_state_dict(early)  # its γ history is not where it could continue
    temporary.close()


def test_mask_stability_timing_resumes_its_remembered_masks() -> None:
    rng = np.random.default_rng(0)
    base = rng.random(200) < 0.5
    masks = [base ^ (rng.random(200) < p) for p in (0.4, 0.3, 0.05, 0.02, 0.01, 0.0, 0.0)]
    straight = auto_timing(1, window=3)
    fired = [straight.observe(s, m, None) for s, m in enumerate(masks, start=1)]
    first = auto_timing(1, window=3)
    for s, m in enumerate(masks[:4], start=1):
        first.observe(s, m, None)
    resumed = auto_timing(1, window=3)
    resumed.load_state_dict(_round_trip(first.state_dict()))
    later = [resumed.observe(s, m, None) for s, m in enumerate(masks[4:], start=5)]
    assert later == fired[4:] and any(fired)
    assert resumed.summary() == straight.summary()
    with pytest.raises(ConfigError, match="same prune_at"):
        auto_timing(1).load_state_dict({"kind": "early-bird", "history": []})


def _round_trip(state: dict[str, Any]) -> dict[str, Any]:
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)
