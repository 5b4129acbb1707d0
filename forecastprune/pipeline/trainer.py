"""A small supervised training loop with Lightning-style callbacks.

Used by ``forecastprune record`` and by the early-prune pipeline. Callbacks hook into every step:

- ``on_after_backward(trainer, step)``: gradients exist, the update has not happened yet — where
  :class:`~forecastprune.record.sparsity.BNSparsity` adds its L1 term;
- ``on_after_step(trainer, step)``: the update is done — where a recorder snapshots γ and where
  the pipeline prunes. It may return a replacement ``(model, optimizer)``; the trainer then uses
  those from the next step on (the scheduler is re-bound to the new optimizer);
- ``on_epoch_end(trainer, epoch)`` and ``on_train_end(trainer)``.

``step`` is always the global, 0-based index of the current iteration; in ``on_after_step``,
``trainer.step`` (completed optimizer updates) already equals ``step + 1``. The LR scheduler, if
any, is stepped once per *iteration* (milestones are given in steps), after the callbacks: in
``on_after_step`` the optimizer still reports the LR the update just used, which is what
:mod:`forecastprune.record.lr_clock` expects a recorder to store.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from ..errors import ConfigError, ForecastPruneError

ModelAndOptimizer = tuple[nn.Module, Optimizer]


class TrainingError(ForecastPruneError):
    """Training diverged (non-finite loss), usually from a too-high LR or sparsity strength."""


class Callback:
    """Base class of trainer callbacks: every hook does nothing unless overridden."""

    def on_after_backward(self, trainer: Trainer, step: int) -> None:
        """Gradients of iteration ``step`` are ready; the optimizer has not stepped."""

    def on_after_step(self, trainer: Trainer, step: int) -> ModelAndOptimizer | None:
        """The update of iteration ``step`` is done.

        Returns:
            ``None``, or a replacement ``(model, optimizer)`` the trainer switches to.
        """
        return None

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        """Epoch ``epoch`` (0-based) finished and was evaluated."""

    def on_train_end(self, trainer: Trainer) -> None:
        """Training finished (also called when it stops on an exception)."""

    def state_dict(self) -> dict[str, Any]:
        """State needed to resume; empty by default."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""


@dataclass
class EpochRecord:
    """Summary of one epoch."""

    epoch: int
    step: int
    train_loss: float
    test_accuracy: float
    lr: float


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns."""

    accuracy: float
    steps: int
    epochs: list[EpochRecord] = field(default_factory=list)


class Trainer:
    """Train a classifier with callbacks, a per-iteration LR scheduler and a progress bar.

    Args:
        model: the network; trained in place (it *is* the thing being trained).
        optimizer: optimizer over ``model``'s parameters.
        train_loader: yields ``(inputs, labels)`` batches.
        test_loader: yields ``(inputs, labels)`` batches for :meth:`evaluate`.
        epochs: passes over ``train_loader``.
        scheduler: optional LR scheduler, stepped once per iteration after the callbacks.
        callbacks: hook objects, called in order (see :class:`Callback`).
        device: where to train.
        loss_fn: loss on ``(logits, labels)``; cross-entropy by default.
        limit_batches: train on at most this many batches per epoch (quick runs and tests).
        progress: show a tqdm progress bar.

    Raises:
        ConfigError: on a non-positive epoch count or batch limit, or an empty train loader.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: Optimizer,
        train_loader: DataLoader | Iterable[Any],
        test_loader: DataLoader | Iterable[Any],
        epochs: int,
        scheduler: LRScheduler | None = None,
        callbacks: Sequence[Callback] = (),
        device: str | torch.device = "cpu",
        loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
        limit_batches: int | None = None,
        progress: bool = True,
    ) -> None:
        if int(epochs) < 1:
            raise ConfigError(f"epochs must be >= 1; got {epochs}")
        if limit_batches is not None and int(limit_batches) < 1:
            raise ConfigError(f"limit_batches must be >= 1 or None; got {limit_batches}")
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.optimizer = optimizer
        self.train_loader = train_loader
        self.test_loader = test_loader
        self.epochs = int(epochs)
        self.scheduler = scheduler
        self.callbacks = list(callbacks)
        self.loss_fn = loss_fn or nn.CrossEntropyLoss()
        self.limit_batches = None if limit_batches is None else int(limit_batches)
        self.progress = progress
        self.step = 0
        self.epoch = 0
        self.history: list[EpochRecord] = []
        if self.steps_per_epoch < 1:
            raise ConfigError("the training loader yields no batches; use a smaller batch size")

    # ---------------------------------------------------------------- properties
    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps per epoch (after ``limit_batches``)."""
        n = len(self.train_loader)  # type: ignore[arg-type]
        return n if self.limit_batches is None else min(n, self.limit_batches)

    @property
    def total_steps(self) -> int:
        """Planned optimizer steps of the whole run."""
        return self.epochs * self.steps_per_epoch

    @property
    def lr(self) -> float:
        """The current learning rate of the first parameter group."""
        return float(self.optimizer.param_groups[0]["lr"])

    # ---------------------------------------------------------------- training
    def fit(self) -> TrainResult:
        """Train from the current epoch to ``epochs``; evaluate after each epoch.

        Returns:
            Final test accuracy, completed steps and per-epoch records.
        """
        bar = tqdm(
            total=self.total_steps, initial=self.step, disable=not self.progress,
            desc="train", unit="step", dynamic_ncols=True,
        )
        try:
            for epoch in range(self.epoch, self.epochs):
                loss = self._train_epoch(bar)
                accuracy = self.evaluate()
                self.history.append(EpochRecord(epoch, self.step, loss, accuracy, self.lr))
                bar.set_postfix(loss=f"{loss:.3f}", acc=f"{accuracy:.3f}", lr=f"{self.lr:.3g}")
                self.epoch = epoch + 1
                for callback in self.callbacks:
                    callback.on_epoch_end(self, epoch)
        finally:
            bar.close()
            for callback in self.callbacks:
                callback.on_train_end(self)
        accuracy = self.history[-1].test_accuracy if self.history else self.evaluate()
        return TrainResult(accuracy, self.step, list(self.history))

    def _train_epoch(self, bar: tqdm) -> float:
        self.model.train()
        total, count = 0.0, 0
        for i, (inputs, labels) in enumerate(self.train_loader):
            if self.limit_batches is not None and i >= self.limit_batches:
                break
            total += self._train_step(inputs.to(self.device), labels.to(self.device))
            count += 1
            bar.update(1)
        return total / max(count, 1)

    def _train_step(self, inputs: torch.Tensor, labels: torch.Tensor) -> float:
        step = self.step
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.model(inputs), labels)
        if not math.isfinite(loss.item()):
            raise TrainingError(
                f"training loss became {loss.item()} at step {step}; lower the learning rate "
                "or the sparsity strength"
            )
        loss.backward()
        for callback in self.callbacks:
            callback.on_after_backward(self, step)
        self.optimizer.step()
        self.step = step + 1
        for callback in self.callbacks:
            replacement = callback.on_after_step(self, step)
            if replacement is not None:
                self.swap(*replacement)
        # after the callbacks, so they see the LR this update used (the recorder's convention)
        # and the scheduler drives whichever optimizer a callback swapped in
        if self.scheduler is not None:
            self.scheduler.step()
        return float(loss.item())

    def swap(self, model: nn.Module, optimizer: Optimizer) -> None:
        """Continue training with a new model and optimizer (e.g. after pruning).

        The scheduler keeps its position and from now on drives the new optimizer.
        """
        self.model = model.to(self.device)
        self.optimizer = optimizer
        if self.scheduler is not None:
            self.scheduler.optimizer = optimizer

    @torch.no_grad()
    def evaluate(self, loader: DataLoader | Iterable[Any] | None = None) -> float:
        """Top-1 accuracy of the current model on ``loader`` (the test loader by default)."""
        was_training = self.model.training
        self.model.eval()
        correct, seen = 0, 0
        for inputs, labels in loader if loader is not None else self.test_loader:
            logits = self.model(inputs.to(self.device))
            correct += int((logits.argmax(1) == labels.to(self.device)).sum())
            seen += int(labels.shape[0])
        self.model.train(was_training)
        return correct / max(seen, 1)

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: model, optimizer, scheduler, counters, callbacks."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "callbacks": [callback.state_dict() for callback in self.callbacks],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output into a trainer built with the same setup.

        Save states at epoch ends: :meth:`fit` resumes at the start of ``trainer.epoch``.

        Raises:
            ConfigError: if the saved callback count differs from this trainer's.
        """
        if len(state["callbacks"]) != len(self.callbacks):
            raise ConfigError(
                f"the saved state has {len(state['callbacks'])} callbacks but this trainer has "
                f"{len(self.callbacks)}; resume with the same callbacks"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        for callback, saved in zip(self.callbacks, state["callbacks"]):
            callback.load_state_dict(saved)
