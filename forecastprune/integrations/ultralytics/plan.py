"""The optimizer updates and learning rates an ultralytics training run will make.

Forecasts target the γ of the *last* update, and the cumulative-LR time axis needs the planned
LR beyond the last snapshot, so the integration must know both before training ends.
Ultralytics does not step the optimizer on every batch: it accumulates gradients until about
``nbs`` (64) images have been seen (``accumulate = round(nbs / batch)``), and during warm-up
it ramps ``accumulate`` linearly from 1 up to that value. :func:`plan_updates` walks the same
rule over the planned batches (``BaseTrainer._do_train`` in ultralytics 8.4); the integration
test checks the count against a real run, so a change of that rule upstream shows up there.

The planned LR is ultralytics' per-epoch ``LambdaLR``: ``initial_lr × lf(epoch)`` for every
update of epoch ``epoch``. Warm-up LRs are not listed (they are recorded as they happen, and a
prune point lies after them in practice).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class UpdatePlan:
    """Where a run's optimizer updates fall.

    Attributes:
        total: optimizer updates of the whole run.
        epoch_starts: for each epoch, the number of the first update made in it (1-based; an
            epoch without updates repeats the next number).
    """

    total: int
    epoch_starts: tuple[int, ...]

    @property
    def per_epoch(self) -> int:
        """Updates per epoch after warm-up (at least 1)."""
        return max(1, round(self.total / max(1, len(self.epoch_starts))))


def warmup_iterations(warmup_epochs: float, epochs: int, batches_per_epoch: int) -> int:
    """Warm-up batches, leaving at least the final epoch without warm-up (as ultralytics does)."""
    warmup_epochs = min(warmup_epochs, max(epochs - 1, 0))
    return round(warmup_epochs * batches_per_epoch) if warmup_epochs > 0 else 0


def plan_updates(batches_per_epoch: int, epochs: int, warmup: int, accumulate: int) -> UpdatePlan:
    """Count the optimizer updates ultralytics' loop makes.

    Args:
        batches_per_epoch: ``len(trainer.train_loader)``.
        epochs: planned epochs.
        warmup: warm-up batches (:func:`warmup_iterations`).
        accumulate: the trainer's nominal ``accumulate`` after warm-up.

    Returns:
        The :class:`UpdatePlan`.
    """
    updates, last_step, current = 0, -1, accumulate
    starts = []
    for epoch in range(epochs):
        starts.append(updates + 1)
        for batch in range(batches_per_epoch):
            ni = batch + batches_per_epoch * epoch
            if warmup and ni <= warmup:
                # numpy's interpolation and half-to-even rounding, exactly as ultralytics
                current = max(1, int(np.interp(ni, [0, warmup], [1, accumulate]).round()))
            if ni - last_step >= current:
                updates += 1
                last_step = ni
    return UpdatePlan(updates, tuple(starts))


def planned_lr_schedule(
    plan: UpdatePlan, initial_lr: float, lf: Callable[[int], float]
) -> list[list[float]]:
    """``[[update, lr], ...]``: the LR from each epoch's first update on.

    Args:
        plan: the run's :class:`UpdatePlan`.
        initial_lr: the first parameter group's ``initial_lr``.
        lf: the trainer's LR factor per epoch (``trainer.lf``).
    """
    schedule: list[list[float]] = []
    for epoch, start in enumerate(plan.epoch_starts):
        if start > plan.total:
            break
        lr = float(initial_lr * lf(epoch))
        if schedule and schedule[-1][0] == start:
            schedule[-1][1] = lr
        else:
            schedule.append([start, lr])
    return schedule
