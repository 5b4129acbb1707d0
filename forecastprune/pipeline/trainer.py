"""A small supervised training loop with Lightning-style callbacks.

Used by ``forecastprune record`` and by the early-prune pipeline. Callbacks hook into every step:

- ``on_after_backward(trainer, step)``: gradients exist, the update has not happened yet — where
  :class:`~forecastprune.record.sparsity.BNSparsity` adds its L1 term;
- ``on_after_step(trainer, step)``: the update is done — where a recorder snapshots γ and where
  the pipeline prunes. It may return a replacement ``(model, optimizer)``; the trainer then uses
  those from the next step on (the scheduler is re-bound to the new optimizer);
- ``on_step_end(trainer, step)``: the iteration is complete, scheduler included — where a
  checkpoint (:meth:`Trainer.state_dict`) resumes exactly;
- ``on_epoch_end(trainer, epoch)`` and ``on_train_end(trainer)``;
- ``on_load_checkpoint(trainer, state)``: restores the callback's part of a checkpoint; it may
  return a replacement ``(model, optimizer)`` (a pruner resumed after its prune does) into which
  the trainer then loads the saved weights and optimizer state.

``step`` is always the global, 0-based index of the current iteration; in ``on_after_step``,
``trainer.step`` (completed optimizer updates) already equals ``step + 1``. The LR scheduler, if
any, is stepped once per *iteration* (milestones are given in steps), after the callbacks: in
``on_after_step`` the optimizer still reports the LR the update just used, which is what
:mod:`forecastprune.core.lr_clock` expects a recorder to store.

**Resuming mid-epoch.** A checkpoint holds, besides the weights and counters, the RNG states at
the start of the current epoch and now: the global torch generators and every
``torch.Generator`` the training loader holds (its own, its sampler's, its ``collate_fn``'s and
its dataset's ``generator`` attribute). A resumed epoch restores the epoch-start states,
re-draws the same shuffle, loads and discards the batches already trained on (so per-batch
augmentation draws are replayed too) and then restores the RNG states of the moment the
checkpoint was taken: the run continues bitwise as the uninterrupted one. Randomness outside
those (numpy, Python's ``random``, worker processes seeded elsewhere) is not restored.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
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

    def on_step_end(self, trainer: Trainer, step: int) -> None:
        """Iteration ``step`` is complete, LR scheduler included (checkpoint here)."""

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        """Epoch ``epoch`` (0-based) finished and was evaluated."""

    def on_train_end(self, trainer: Trainer) -> None:
        """Training finished (also called when it stops on an exception)."""

    def state_dict(self) -> dict[str, Any]:
        """State needed to resume; empty by default."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""

    def on_load_checkpoint(
        self, trainer: Trainer, state: dict[str, Any]
    ) -> ModelAndOptimizer | None:
        """Restore this callback's saved state (by default :meth:`load_state_dict`).

        Returns:
            ``None``, or a replacement ``(model, optimizer)`` the saved weights and optimizer
            state are then loaded into.
        """
        self.load_state_dict(state)
        return None


@dataclass
class EpochRecord:
    """Summary of one epoch."""

    epoch: int
    step: int
    train_loss: float
    test_accuracy: float | None  # None on epochs skipped by ``eval_every``
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
        eval_every: evaluate on the test loader after every this many epochs; the last epoch
            is always evaluated (on a large test set per-epoch evaluation can cost a third of
            a short run).

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
        eval_every: int = 1,
    ) -> None:
        if int(epochs) < 1:
            raise ConfigError(f"epochs must be >= 1; got {epochs}")
        if int(eval_every) < 1:
            raise ConfigError(f"eval_every must be >= 1 epoch; got {eval_every}")
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
        self.eval_every = int(eval_every)
        self.step = 0
        self.epoch = 0
        self.history: list[EpochRecord] = []
        # where the current epoch is: RNG states at its start (None between epochs), batches
        # trained and their summed loss; and a checkpoint's position still to be resumed
        self._epoch_start: dict[str, Any] | None = None
        self._batch, self._loss_total = 0, 0.0
        self._resume: dict[str, Any] | None = None
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
        """Train from the current epoch to ``epochs``; evaluate every ``eval_every`` epochs.

        Returns:
            Final test accuracy, completed steps and per-epoch records.
        """
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            disable=not self.progress,
            desc="train",
            unit="step",
            dynamic_ncols=True,
        )
        try:
            for epoch in range(self.epoch, self.epochs):
                loss = self._train_epoch(bar)
                due = (epoch + 1) % self.eval_every == 0 or epoch + 1 == self.epochs
                accuracy = self.evaluate() if due else None
                self.history.append(EpochRecord(epoch, self.step, loss, accuracy, self.lr))
                bar.set_postfix(
                    loss=f"{loss:.3f}",
                    lr=f"{self.lr:.3g}",
                    **({} if accuracy is None else {"acc": f"{accuracy:.3f}"}),
                )
                self.epoch = epoch + 1
                self._epoch_start, self._batch, self._loss_total = None, 0, 0.0
                for callback in self.callbacks:
                    callback.on_epoch_end(self, epoch)
        finally:
            bar.close()
            for callback in self.callbacks:
                callback.on_train_end(self)
        last = self.history[-1].test_accuracy if self.history else None
        accuracy = last if last is not None else self.evaluate()
        return TrainResult(accuracy, self.step, list(self.history))

    def _train_epoch(self, bar: tqdm) -> float:
        self.model.train()
        resume, self._resume = self._resume, None
        if resume is not None and resume["epoch_start"] is not None:
            _set_rng(resume["epoch_start"], self.train_loader)
        elif resume is not None:
            _set_rng(resume["now"], self.train_loader)
        self._epoch_start = _get_rng(self.train_loader)
        batches = iter(self.train_loader)
        if resume is not None and resume["epoch_start"] is not None:
            # replay the batches already trained on (same order, same augmentation draws),
            # then continue from the RNG state the checkpoint was taken in
            for _ in range(resume["batch"]):
                next(batches)
            _set_rng({**resume["now"], "loader": []}, self.train_loader)
            self._batch, self._loss_total = resume["batch"], resume["loss_total"]
        for i, (inputs, labels) in enumerate(batches, start=self._batch):
            if self.limit_batches is not None and i >= self.limit_batches:
                break
            self._loss_total += self._train_step(inputs.to(self.device), labels.to(self.device))
            self._batch = i + 1
            bar.update(1)
            for callback in self.callbacks:
                callback.on_step_end(self, self.step - 1)
        return self._loss_total / max(self._batch, 1)

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
        """Everything needed to resume: model, optimizer, scheduler, counters, RNG, callbacks.

        Plain containers and tensors only (loads with ``torch.load(..., weights_only=True)``).
        Take it between iterations — in ``on_step_end`` or ``on_epoch_end``, or after
        :meth:`fit` — to resume exactly.
        """
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "history": [asdict(record) for record in self.history],
            "position": {
                "epoch_start": self._epoch_start,
                "batch": self._batch,
                "loss_total": self._loss_total,
                "now": _get_rng(self.train_loader),
            },
            "callbacks": [callback.state_dict() for callback in self.callbacks],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` output into a trainer built with the same setup.

        Callbacks restore first: one may swap in another model and optimizer (a pruner resumed
        after its prune rebuilds the smaller model), which then receive the saved states.
        :meth:`fit` continues from the saved step, mid-epoch included.

        Raises:
            ConfigError: if the saved callback count differs from this trainer's.
        """
        if len(state["callbacks"]) != len(self.callbacks):
            raise ConfigError(
                f"the saved state has {len(state['callbacks'])} callbacks but this trainer has "
                f"{len(self.callbacks)}; resume with the same callbacks"
            )
        for callback, saved in zip(self.callbacks, state["callbacks"]):
            replacement = callback.on_load_checkpoint(self, saved)
            if replacement is not None:
                self.swap(*replacement)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.step, self.epoch = int(state["step"]), int(state["epoch"])
        self.history = [EpochRecord(**record) for record in state.get("history", [])]
        self._resume = state.get("position")


def _loader_generators(loader: Any) -> list[torch.Generator]:
    """The torch generators a loader draws from: its own, its sampler's, collate's, dataset's."""
    batch_sampler = getattr(loader, "batch_sampler", None)
    owners = [
        loader,
        getattr(loader, "sampler", None),
        getattr(batch_sampler, "sampler", None),
        getattr(loader, "collate_fn", None),
        getattr(loader, "dataset", None),
    ]
    found: dict[int, torch.Generator] = {}
    for owner in owners:
        generator = getattr(owner, "generator", None)
        if isinstance(generator, torch.Generator):
            found.setdefault(id(generator), generator)
    return list(found.values())


def _get_rng(loader: Any) -> dict[str, Any]:
    """The global torch RNG states and those of the loader's generators."""
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else [],
        "loader": [g.get_state() for g in _loader_generators(loader)],
    }


def _set_rng(state: dict[str, Any], loader: Any) -> None:
    """Restore :func:`_get_rng` output (an empty ``loader`` list leaves the loader's alone)."""
    torch.set_rng_state(state["torch"])
    if state["cuda"]:
        torch.cuda.set_rng_state_all(state["cuda"])
    for generator, saved in zip(_loader_generators(loader), state["loader"]):
        generator.set_state(saved)
