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
"""

from __future__ import annotations

from typing import Any

try:
    import lightning.pytorch as pl
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "forecastprune.integrations.lightning needs Lightning; install it with "
        "pip install 'forecastprune[lightning]'"
    ) from exc

from torch import nn

from ..errors import ConfigError
from ..pipeline import EarlyPruner


class EarlyPruneCallback(pl.Callback):
    """Sparse-train, forecast and prune the module at ``pl_module.<attr>`` once.

    Args:
        attr: the attribute of the LightningModule holding the network to prune.
        example_inputs: an input batch for tracing the network.
        **pruner_options: :class:`~forecastprune.pipeline.EarlyPruner` keyword arguments
            (``forecaster``, ``ratio``, ``prune_at``, ``sparsity``, ``store_path``, ...);
            ``total_steps`` defaults to Lightning's estimate.
    """

    def __init__(self, attr: str, example_inputs: Any, **pruner_options: Any) -> None:
        self.attr = attr
        self.example_inputs = example_inputs
        self.pruner_options = pruner_options
        self.pruner: EarlyPruner | None = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        network = getattr(pl_module, self.attr, None)
        if not isinstance(network, nn.Module):
            raise ConfigError(
                f"the LightningModule has no network at attribute {self.attr!r}; pass the "
                "name of the nn.Module attribute to prune"
            )
        if len(trainer.optimizers) != 1:
            raise ConfigError(
                f"EarlyPruneCallback supports exactly one optimizer; got {len(trainer.optimizers)}"
            )
        options = {"total_steps": int(trainer.estimated_stepping_batches),
                   **self.pruner_options}
        self.pruner = EarlyPruner(network, trainer.optimizers[0],
                                  example_inputs=self.example_inputs, **options)

    def on_before_optimizer_step(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                                 optimizer: Any) -> None:
        if self.pruner is not None:
            self.pruner.regularize(trainer.global_step)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule,
                           outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.pruner is None or self.pruner.pruned:
            return
        network, optimizer = self.pruner.step(trainer.global_step)
        if network is getattr(pl_module, self.attr):
            return
        setattr(pl_module, self.attr, network)
        trainer.optimizers = [optimizer]
        for config in trainer.lr_scheduler_configs:
            config.scheduler.optimizer = optimizer

    def state_dict(self) -> dict[str, Any]:
        return {} if self.pruner is None else self.pruner.state_dict()
