"""The four training methods compared by the evidence table, as Trainer callbacks.

Every method trains for the same epoch budget with the same data order, optimizer and LR
schedule; they differ only in what happens to the BN γ and when channels go:

- ``normal`` — plain training, no L1, no pruning (the dense reference).
- ``slimming`` — network slimming: L1-sparse training for the first ``sparse_fraction`` of the
  budget, then prune on the *current* |γ| (the end of sparse training) and fine-tune without L1
  for the rest. The original recipe trains a full sparse run and then fine-tunes for another
  run; under one shared budget we split it, 75 % sparse / 25 % fine-tune by default.
- ``early-bird`` — L1-sparse training until the Early-Bird criterion fires on the current-|γ|
  masks (distance ≤ 0.1 to each of the previous 4, checked once per epoch), prune there, then
  train normally.
- ``forecast`` — L1-sparse training while recording γ; at the prune point (fixed, or ``auto``)
  forecast each channel's end-of-run |γ| with the chosen forecaster, prune once, then train
  normally with no L1.

The three pruning methods are one :class:`~forecastprune.pipeline.EarlyPruner` each, differing in
forecaster and timing: slimming and Early-Bird rank channels by today's |γ| (the ``naive``
forecaster), forecast ranks them by the forecast.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..core.bn_layers import unwrap_model
from ..engine.spec import PruneSpec
from ..errors import ConfigError
from ..record.signals import flush_on_signals
from ..runpoint import RunPoint
from .compute import ComputeMeter
from .early_pruner import EarlyPruner
from .trainer import Callback, ModelAndOptimizer, Trainer

METHODS = ("normal", "slimming", "early-bird", "forecast")


@dataclass
class MethodSpec:
    """What one method needs beyond the trainer.

    Built by :meth:`~forecastprune.pipeline.train_config.TrainConfig.method_spec`, which holds
    the defaults; every setting is required here so the two cannot disagree.

    Args:
        method: one of :data:`METHODS`.
        forecaster: the forecaster spec (``forecast`` only).
        spec: how channels are chosen (every pruning method uses the same).
        prune_at: ``forecast``'s prune point.
        sparsity: L1 strength on γ during sparse training.
        sparse_fraction: ``slimming``'s share of the budget spent sparse-training.
        record_every: γ snapshot interval in steps.
        check_every: steps between timing-rule checks (None: one epoch).
        auto: options of the timing rules (see
            :func:`~forecastprune.pipeline.timing.auto_timing`).
        store_path: directory for the γ store (temporary when None).
        overwrite: replace an existing store at ``store_path``.
    """

    method: str
    forecaster: str
    spec: PruneSpec
    prune_at: RunPoint
    sparsity: float
    sparse_fraction: float
    record_every: int
    check_every: int | None
    auto: dict[str, Any]
    store_path: str | Path | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ConfigError(
                f"unknown method {self.method!r}; expected one of {', '.join(METHODS)}"
            )

    def pruner_options(self) -> dict[str, Any] | None:
        """Keyword arguments of this method's :class:`EarlyPruner` (None for ``normal``)."""
        if self.method == "normal":
            return None
        forecaster, prune_at = {
            "slimming": ("naive", RunPoint(fraction=self.sparse_fraction)),
            "early-bird": ("naive", "early-bird"),
            "forecast": (self.forecaster, self.prune_at),
        }[self.method]
        return {
            "forecaster": forecaster,
            "prune_at": prune_at,
            "spec": self.spec,
            "sparsity": self.sparsity,
            "record_every": self.record_every,
            "check_every": self.check_every,
            "auto_options": self.auto,
            "store_path": self.store_path,
            "overwrite": self.overwrite,
        }


class PrunerCallback(Callback):
    """Drives an :class:`EarlyPruner` from the trainer's hooks.

    Args:
        pruner: the pruner, built on the trainer's model and optimizer.
    """

    def __init__(self, pruner: EarlyPruner) -> None:
        self.pruner = pruner

    def on_after_backward(self, trainer: Trainer, step: int) -> None:
        self.pruner.regularize(step)

    def on_after_step(self, trainer: Trainer, step: int) -> ModelAndOptimizer | None:
        # the pruner counts completed updates, as trainer.step does after this iteration
        model, optimizer = self.pruner.step(step + 1)
        return (model, optimizer) if model is not trainer.model else None

    def state_dict(self) -> dict[str, Any]:
        return self.pruner.state_dict()

    def on_load_checkpoint(
        self, trainer: Trainer, state: dict[str, Any]
    ) -> ModelAndOptimizer | None:
        self.pruner.load_state_dict(state)
        # resumed after the prune: the trainer continues with the rebuilt, smaller model
        return (self.pruner.model, self.pruner.optimizer) if self.pruner.pruned else None


class ComputeCallback(Callback):
    """Charges every step's training compute to a :class:`ComputeMeter`.

    Must come *before* the pruner callback: the step that prunes ran on the larger model,
    and the meter re-measures the model whenever the trainer switches to a new one.

    Args:
        meter: the meter.
        samples_per_step: samples one optimizer step sees across all processes.
    """

    def __init__(self, meter: ComputeMeter, samples_per_step: int) -> None:
        self.meter = meter
        self.samples_per_step = int(samples_per_step)
        self._model: nn.Module | None = None

    def on_after_step(self, trainer: Trainer, step: int) -> None:
        if trainer.model is not self._model:
            self._model = trainer.model
            self.meter.set_model(trainer.model, step)
        self.meter.add_step(self.samples_per_step)

    def state_dict(self) -> dict[str, Any]:
        return self.meter.summary()


@dataclass
class MethodRun:
    """The outcome of :func:`run_method`."""

    method: str
    accuracy: float
    model: nn.Module
    params: int
    macs: int
    prune_step: int | None
    total_steps: int
    train_macs: float
    wall_seconds: float
    epochs: list[dict[str, Any]]
    pruner: dict[str, Any] | None

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures (no model)."""
        return {
            "method": self.method,
            "accuracy": self.accuracy,
            "params": self.params,
            "macs": self.macs,
            "prune_step": self.prune_step,
            "total_steps": self.total_steps,
            "train_macs": self.train_macs,
            "wall_seconds": self.wall_seconds,
            "epochs": self.epochs,
            "pruner": self.pruner,
        }


def run_method(
    spec: MethodSpec,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    trainer_kwargs: dict[str, Any],
    example_inputs: torch.Tensor,
    samples_per_step: int,
    metadata: dict[str, Any] | None = None,
) -> MethodRun:
    """Train ``model`` with one method and measure it.

    Args:
        spec: the method and its options.
        model: a freshly built model (possibly DDP-wrapped).
        optimizer: its optimizer.
        trainer_kwargs: the remaining :class:`~forecastprune.pipeline.trainer.Trainer` arguments
            (loaders, epochs, scheduler, progress, ...).
        example_inputs: an input batch for tracing (coupling, surgery, MAC counts).
        samples_per_step: samples per optimizer step over all processes (compute accounting).
        metadata: extra store metadata.

    Returns:
        The :class:`MethodRun`.
    """
    from ..engine.stats import count_macs, count_params

    start = time.perf_counter()
    meter = ComputeMeter(example_inputs)
    trainer = Trainer(model, optimizer, **trainer_kwargs)
    callbacks: list[Callback] = [ComputeCallback(meter, samples_per_step)]
    pruner = None
    options = spec.pruner_options()
    if options is not None:
        pruner = EarlyPruner(
            model,
            optimizer,
            total_steps=trainer.total_steps,
            example_inputs=example_inputs,
            steps_per_epoch=trainer.steps_per_epoch,
            lr_schedule=trainer.scheduler,
            metadata=metadata,
            **options,
        )
        callbacks.append(PrunerCallback(pruner))
    trainer.callbacks.extend(callbacks)
    # SIGTERM/SIGINT stop the run with the γ store flushed and closed
    with flush_on_signals(*([pruner] if pruner is not None else [])):
        result = trainer.fit()
    final = unwrap_model(trainer.model)
    return MethodRun(
        method=spec.method,
        accuracy=result.accuracy,
        model=final,
        params=int(count_params(final)),
        macs=int(count_macs(final, example_inputs[:1])),
        prune_step=None if pruner is None else pruner.pruned_at,
        total_steps=trainer.total_steps,
        train_macs=meter.total_macs,
        wall_seconds=time.perf_counter() - start,
        epochs=[vars(e) for e in result.epochs],
        pruner=None if pruner is None else pruner.summary(),
    )
