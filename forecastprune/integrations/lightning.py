"""A Lightning callback that runs :class:`~forecastprune.pipeline.EarlyPruner` for you.

Needs the optional ``lightning`` extra (``pip install "forecastprune[lightning]"``)::

    from forecastprune.integrations.lightning import EarlyPruneCallback

    class Digits(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = build_model("darknet")      # the pruned attribute
        ...

    trainer = L.Trainer(max_epochs=20,
                        callbacks=[EarlyPruneCallback("net", example_inputs=x[:2], prune_at=0.3)])

The callback builds the pruner when training starts (the planned length is Lightning's
``estimated_stepping_batches``), adds the L1 term in ``on_before_optimizer_step`` (after
Lightning has unscaled AMP gradients), and after each optimizer step lets the pruner record γ.
On the prune step it replaces ``pl_module.<attr>`` with the smaller model, hands Lightning the
rebuilt optimizer and re-binds every LR scheduler to it. Single-device strategies only: under
Lightning's DDP the strategy owns the wrapper, which cannot be rebuilt from a callback — use
``forecastprune train`` under ``torchrun`` or :class:`EarlyPruner` in your own loop there.

**Checkpoints.** The callback's :meth:`~EarlyPruneCallback.state_dict` is the pruner's (see
:meth:`EarlyPruner.state_dict`) plus the order of the optimizer's parameters, and Lightning
stores it in every checkpoint. ``trainer.fit(module, ckpt_path=...)`` resumes as follows:

- before the prune, the pruner built at ``on_train_start`` takes the saved state and keeps
  recording into the same store (pass the same ``store_path``, and the same ``total_steps``
  when the resumed trainer plans another number of steps);
- after it, the network must be smaller *before* Lightning loads the weights, but Lightning
  calls a callback's ``on_load_checkpoint`` only after that. The callback therefore hooks the
  LightningModule's own ``on_load_checkpoint`` (which Lightning calls first) for the length of
  the fit: it rebuilds the smaller network from the saved kept channels and puts it at
  ``pl_module.<attr>``. At ``on_fit_start`` — after ``configure_optimizers`` built the optimizer
  over the smaller network, before Lightning loads its state — the optimizer's parameters are
  put in the saved order, so each saved momentum lands on its own parameter.
"""

from __future__ import annotations

import inspect
from typing import Any

from .._torchvision_ops import ensure_torchvision_ops

# lightning imports torchmetrics, which imports torchvision: make sure that import works
ensure_torchvision_ops()

try:
    import lightning.pytorch as pl
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "forecastprune.integrations.lightning needs Lightning; install it with "
        "pip install 'forecastprune[lightning]'"
    ) from exc

import torch
from torch import nn

from ..errors import ConfigError
from ..pipeline import EarlyPruner


class EarlyPruneCallback(pl.Callback):
    """Sparse-train, forecast and prune the module at ``pl_module.<attr>`` once.

    Args:
        attr: the attribute of the LightningModule holding the network to prune.
        example_inputs: an input batch for tracing the network.
        **pruner_options: :class:`~forecastprune.pipeline.EarlyPruner` keyword arguments
            (``forecaster``, ``spec`` — a :class:`~forecastprune.engine.spec.PruneSpec` —,
            ``prune_at`` — a :class:`~forecastprune.runpoint.RunPoint` such as ``0.3``,
            ``"step:120"`` or ``"stability"`` —, ``sparsity``, ``store_path``, ...);
            ``total_steps`` defaults to Lightning's estimate.
    """

    def __init__(self, attr: str, example_inputs: Any, **pruner_options: Any) -> None:
        self.attr = attr
        self.example_inputs = example_inputs
        self.pruner_options = pruner_options
        self.pruner: EarlyPruner | None = None
        self._saved: dict[str, Any] | None = None  # a checkpoint's state, until it is applied

    # ---------------------------------------------------------------- resuming
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        original = pl_module.on_load_checkpoint

        def on_load_checkpoint(checkpoint: dict[str, Any]) -> None:
            self._rebuild(trainer, pl_module, checkpoint)
            original(checkpoint)

        # an instance attribute shadows the method for this fit only (removed at fit start)
        pl_module.on_load_checkpoint = on_load_checkpoint  # type: ignore[method-assign]

    def _rebuild(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Swap in the pruned network saved in ``checkpoint``, before its weights load."""
        state = (checkpoint.get("callbacks") or {}).get(self.state_key)
        if not state or state.get("pruned_at") is None:
            return
        network = self._network(pl_module)
        # the placeholder optimizer only gives the rebuilt one its structure; Lightning's
        # configure_optimizers builds the real one over the smaller network afterwards
        placeholder = torch.optim.SGD(network.parameters(), lr=0.0)
        self.pruner = self._make_pruner(trainer, network, placeholder)
        self.pruner.load_state_dict(state)
        setattr(pl_module, self.attr, self.pruner.model)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        pl_module.__dict__.pop("on_load_checkpoint", None)
        if self.pruner is not None and self.pruner.pruned and self._saved_groups():
            optimizer = _ordered(
                trainer.optimizers[0], self._network(pl_module), self._saved_groups()
            )
            self._use_optimizer(trainer, optimizer)

    def _saved_groups(self) -> list[list[str]] | None:
        return None if self._saved is None else self._saved.get("param_groups")

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if len(trainer.optimizers) != 1:
            raise ConfigError(
                f"EarlyPruneCallback supports exactly one optimizer; got {len(trainer.optimizers)}"
            )
        if self.pruner is not None and self.pruner.pruned:  # resumed after the prune
            self.pruner.optimizer = trainer.optimizers[0]
            return
        self.pruner = self._make_pruner(trainer, self._network(pl_module), trainer.optimizers[0])
        if self._saved is not None:  # resumed before the prune: keep recording
            self.pruner.load_state_dict(self._saved)
        self._saved = None

    def _network(self, pl_module: pl.LightningModule) -> nn.Module:
        network = getattr(pl_module, self.attr, None)
        if not isinstance(network, nn.Module):
            raise ConfigError(
                f"the LightningModule has no network at attribute {self.attr!r}; pass the "
                "name of the nn.Module attribute to prune"
            )
        return network

    def _make_pruner(
        self, trainer: pl.Trainer, network: nn.Module, optimizer: torch.optim.Optimizer
    ) -> EarlyPruner:
        options = {"total_steps": int(trainer.estimated_stepping_batches), **self.pruner_options}
        return EarlyPruner(network, optimizer, example_inputs=self.example_inputs, **options)

    def _use_optimizer(self, trainer: pl.Trainer, optimizer: torch.optim.Optimizer) -> None:
        trainer.optimizers = [optimizer]
        for config in trainer.lr_scheduler_configs:
            config.scheduler.optimizer = optimizer

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Any
    ) -> None:
        if self.pruner is not None:
            self.pruner.regularize(trainer.global_step)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self.pruner is None or self.pruner.pruned:
            return
        network, optimizer = self.pruner.step(trainer.global_step)
        if network is getattr(pl_module, self.attr):
            return
        setattr(pl_module, self.attr, network)
        self._use_optimizer(trainer, optimizer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.pruner is not None:
            self.pruner.close()  # flushed; the store is free for a resumed fit to append to

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        # also Lightning's SIGTERM handling ends here: keep every snapshot taken so far
        self.on_train_end(trainer, pl_module)

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        pl_module.__dict__.pop("on_load_checkpoint", None)

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """The pruner's state and, once pruned, the optimizer's parameter order (by name)."""
        if self.pruner is None:
            return dict(self._saved or {})
        state = self.pruner.state_dict()
        if self.pruner.pruned:
            names = {id(p): n for n, p in self.pruner.model.named_parameters()}
            state["param_groups"] = [
                [names[id(p)] for p in group["params"]]
                for group in self.pruner.optimizer.param_groups
            ]
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._saved = dict(state_dict) if state_dict else None


def _ordered(
    optimizer: torch.optim.Optimizer, network: nn.Module, groups: list[list[str]]
) -> torch.optim.Optimizer:
    """An optimizer like ``optimizer`` whose groups hold ``network``'s parameters by name.

    Lightning restores optimizer state by position in the groups; the optimizer a pruning run
    saved came from the pruner, whose order ``configure_optimizers`` need not repeat. The
    group settings come from the checkpoint when Lightning loads it.

    Raises:
        ConfigError: if the saved names do not cover the network's parameters.
    """
    params = dict(network.named_parameters())
    if sorted(n for names in groups for n in names) != sorted(params):
        raise ConfigError(
            "the checkpoint's optimizer holds other parameters than the rebuilt network "
            f"({len(params)} parameters); resume with the same LightningModule and callback"
        )
    accepted = inspect.signature(type(optimizer).__init__).parameters
    defaults = {k: v for k, v in optimizer.defaults.items() if k in accepted}
    return type(optimizer)([{"params": [params[n] for n in names]} for names in groups], **defaults)
