"""The Lightning callback prunes, checkpoints and resumes like the plain training loop.

A straight Lightning run (3 epochs of 4 steps, prune at step 6) is compared with runs stopped
after 1 epoch (before the prune) or 2 epochs (after it), saved with ``trainer.save_checkpoint``
and resumed by a fresh module, callback and trainer with ``fit(ckpt_path=...)``: the final
weights, the optimizer's momentum and the γ store must equal the straight run's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from forecastprune.store import GammaTrajectoryStore
from forecastprune.zoo import build_model, load_digits_split

pytest.importorskip(
    "lightning",
    reason="the Lightning integration is an optional extra "
    "('lightning'); install it to run these tests",
)
import lightning.pytorch as pl  # noqa: E402

from forecastprune.integrations.lightning import EarlyPruneCallback  # noqa: E402

STEPS_PER_EPOCH, EPOCHS, PRUNE_AT = 4, 3, 6


class Digits(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = build_model("darknet", width=0.5)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(self.net.parameters(), lr=0.05, momentum=0.9)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=5, gamma=0.5)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


@pytest.fixture(scope="module")
def data() -> tuple[torch.utils.data.DataLoader, torch.Tensor]:
    split = load_digits_split(seed=0)
    n = 32 * STEPS_PER_EPOCH
    dataset = torch.utils.data.TensorDataset(split.x_train[:n], split.y_train[:n])
    return torch.utils.data.DataLoader(dataset, batch_size=32), split.x_train[:2]


def _fit(
    data, store: Path, epochs: int, root: Path, ckpt: Path | None = None
) -> tuple[Digits, EarlyPruneCallback, pl.Trainer]:
    loader, example = data
    module = Digits()
    callback = EarlyPruneCallback(
        "net",
        example,
        forecaster="sma",
        prune_at=f"step:{PRUNE_AT}",
        total_steps=STEPS_PER_EPOCH * EPOCHS,
        store_path=store,
    )
    trainer = pl.Trainer(
        max_epochs=epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=root,
        callbacks=[callback],
        accelerator="cpu",
    )
    trainer.fit(module, loader, ckpt_path=ckpt)
    return module, callback, trainer


def _store(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with GammaTrajectoryStore.open(path) as store:
        steps, values = store.history()
        return steps, values, store.lrs


@pytest.fixture(scope="module")
def straight(data, tmp_path_factory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("straight")
    module, callback, trainer = _fit(data, root / "g.fpstore", EPOCHS, root)
    assert callback.pruner is not None and callback.pruner.pruned_at == PRUNE_AT
    return {
        "weights": module.net.state_dict(),
        "optimizer": trainer.optimizers[0].state_dict(),
        "store": _store(root / "g.fpstore"),
    }


@pytest.mark.parametrize("stop_epochs", [1, 2], ids=["before-prune", "after-prune"])
def test_resumed_fit_equals_the_straight_one(data, straight, tmp_path, stop_epochs) -> None:
    store, ckpt = tmp_path / "g.fpstore", tmp_path / "stop.ckpt"
    _, first, trainer = _fit(data, store, stop_epochs, tmp_path)
    assert first.pruner is not None and first.pruner.pruned == (stop_epochs * 4 >= PRUNE_AT)
    trainer.save_checkpoint(ckpt)
    saved = torch.load(ckpt, weights_only=True)["callbacks"]["EarlyPruneCallback"]
    assert (saved["pruned_at"] is not None) == first.pruner.pruned

    module, callback, trainer = _fit(data, store, EPOCHS, tmp_path, ckpt=ckpt)
    assert callback.pruner is not None and callback.pruner.pruned_at == PRUNE_AT
    assert trainer.global_step == STEPS_PER_EPOCH * EPOCHS
    assert "on_load_checkpoint" not in vars(module)  # the temporary hook is gone
    weights = module.net.state_dict()
    assert weights.keys() == straight["weights"].keys()
    for name, tensor in straight["weights"].items():
        torch.testing.assert_close(weights[name], tensor, rtol=0, atol=1e-6, msg=name)
    optimizer = trainer.optimizers[0].state_dict()
    assert {id(p) for g in trainer.optimizers[0].param_groups for p in g["params"]} == {
        id(p) for p in module.net.parameters()
    }
    for slot, saved_state in straight["optimizer"]["state"].items():
        torch.testing.assert_close(
            optimizer["state"][slot]["momentum_buffer"],
            saved_state["momentum_buffer"],
            rtol=0,
            atol=1e-6,
        )
    for got, expected in zip(_store(store), straight["store"], strict=True):
        np.testing.assert_array_equal(got, expected)


def test_optimizer_is_rebuilt_in_the_saved_parameter_order() -> None:
    from forecastprune.errors import ConfigError
    from forecastprune.integrations.lightning import _ordered

    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    user = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    names = [n for n, _ in net.named_parameters()]
    saved = [names[::-1][:2], names[::-1][2:]]  # e.g. a created bias came last in its group
    ordered = _ordered(user, net, saved)
    params = dict(net.named_parameters())
    assert [[id(p) for p in g["params"]] for g in ordered.param_groups] == [
        [id(params[n]) for n in group] for group in saved
    ]
    assert type(ordered) is torch.optim.SGD and ordered.defaults["nesterov"] is True
    with pytest.raises(ConfigError, match="other parameters"):
        _ordered(user, net, [names[:-1]])


def test_an_exception_mid_fit_leaves_the_store_flushed_and_closed(data, tmp_path) -> None:
    class Failing(Digits):
        def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
            if self.global_step == 5:
                raise RuntimeError("out of memory")
            return super().training_step(batch, batch_idx)

    loader, example = data
    callback = EarlyPruneCallback(
        "net",
        example,
        forecaster="sma",
        prune_at=f"step:{PRUNE_AT}",
        store_path=tmp_path / "g.fpstore",
    )
    trainer = pl.Trainer(
        max_epochs=EPOCHS,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
        callbacks=[callback],
        accelerator="cpu",
    )
    with pytest.raises(RuntimeError, match="out of memory"):
        trainer.fit(Failing(), loader)
    with GammaTrajectoryStore.open(tmp_path / "g.fpstore", mode="a") as store:  # lock free
        assert store.steps.tolist() == [1, 2, 3, 4, 5]  # buffered 50, all on disk
