"""The cumulative-learning-rate clock: the time axis forecasters extrapolate over.

Under a step-decay schedule γ moves fast while the learning rate is high and almost stops after
each drop, so a line fitted over *steps* overshoots wildly. Over cumulative learning rate
``Σ lr`` the same trajectory is close to straight. This module maps steps to that axis.

Conventions (shared with :class:`~forecastprune.record.recorder.GammaRecorder`):

- Step ``s`` is the number of optimizer updates done so far; the recorder snapshots after update
  ``s`` and stores the LR the optimizer reports then, i.e. the LR update ``s`` used (when the
  scheduler is stepped after the recorder).
- ``clock(s) = Σ_{j=1..s} lr(j)``, where ``lr(j)`` is the LR of update ``j``. Between snapshots
  the LR is taken piecewise constant: each recorded LR covers the updates since the previous
  snapshot, so between snapshots the clock interpolates linearly.
- An LR schedule is a list of ``[step, lr]`` pairs: the planned LR is ``lr`` from ``step`` on.
  Beyond the last snapshot the clock follows the schedule, or holds the last recorded LR when
  none is known; :attr:`Clock.assumption` says which.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._util import positive_int
from ..errors import ConfigError, StoreError

#: A planned LR schedule: ``[[step, lr], ...]``, the LR being ``lr`` from ``step`` on.
LRSchedule = Sequence[Sequence[float]]


class Clock:
    """Maps steps to cumulative learning rate; vectorized, monotone, picklable.

    Built by :func:`cumulative_lr_clock`. Between knots it interpolates linearly; before the
    first knot and after the last it extrapolates with the first / last LR.

    Attributes:
        assumption: how the LR beyond the recorded snapshots was obtained (for reports).
        last_recorded_step: the last snapshot's step, or ``None`` when nothing was recorded.
        total_steps: the planned length of training, when known.
    """

    def __init__(
        self,
        knots_x: np.ndarray,
        knots_y: np.ndarray,
        slope_before: float,
        slope_after: float,
        assumption: str,
        last_recorded_step: int | None = None,
        total_steps: int | None = None,
    ) -> None:
        self.knots_x = np.asarray(knots_x, dtype=np.float64)
        self.knots_y = np.asarray(knots_y, dtype=np.float64)
        self.slope_before = float(slope_before)
        self.slope_after = float(slope_after)
        self.assumption = assumption
        self.last_recorded_step = last_recorded_step
        self.total_steps = total_steps

    def __call__(self, steps: Any) -> np.ndarray:
        """Cumulative LR at each step (any shape; float64 of the same shape)."""
        s = np.asarray(steps, dtype=np.float64)
        x, y = self.knots_x, self.knots_y
        out = np.interp(s, x, y)
        out = np.where(s < x[0], y[0] + self.slope_before * (s - x[0]), out)
        return np.where(s > x[-1], y[-1] + self.slope_after * (s - x[-1]), out)

    def __repr__(self) -> str:
        return f"Clock(knots={len(self.knots_x)}, assumption={self.assumption!r})"


def check_lr_schedule(schedule: Any, what: str = "lr_schedule") -> list[list[float]]:
    """Validate a planned schedule and return it as JSON-ready ``[[int step, float lr], ...]``.

    Args:
        schedule: ``[[step, lr], ...]`` with integer steps ≥ 0, strictly increasing, and
            finite LRs ≥ 0.
        what: the name used in error messages.

    Returns:
        The schedule with ``int`` steps and ``float`` LRs.

    Raises:
        ConfigError: on anything else.
    """
    hint = f"{what} must be a non-empty list of [step, lr] pairs, e.g. [[0, 0.1], [3000, 0.01]]"
    try:
        pairs = [(float(step), float(lr)) for step, lr in schedule]
    except (TypeError, ValueError):
        raise ConfigError(f"{hint}; got {schedule!r:.200}") from None
    if not pairs:
        raise ConfigError(f"{hint}; got an empty list")
    steps = np.array([p[0] for p in pairs])
    lrs = np.array([p[1] for p in pairs])
    if not (np.all(np.isfinite(steps)) and np.all(steps == np.round(steps)) and steps[0] >= 0):
        raise ConfigError(f"{hint}; its steps must be integers >= 0, got {steps.tolist()}")
    if np.any(np.diff(steps) <= 0):
        raise ConfigError(f"{hint}; its steps must strictly increase, got {steps.tolist()}")
    if not np.all(np.isfinite(lrs)) or np.any(lrs < 0):
        raise ConfigError(f"{hint}; its learning rates must be finite and >= 0, got {lrs}")
    return [[int(s), float(lr)] for s, lr in zip(steps, lrs)]


def lr_at(schedule: LRSchedule, steps: Any) -> np.ndarray:
    """The planned LR at each step (the first entry's LR before the first listed step)."""
    table = np.asarray(check_lr_schedule(schedule), dtype=np.float64)
    index = np.searchsorted(table[:, 0], np.asarray(steps, dtype=np.float64), side="right") - 1
    return table[np.clip(index, 0, None), 1]


def cumulative_lr_clock(
    steps: Any,
    lrs: Any,
    lr_schedule: LRSchedule | None = None,
    total_steps: int | None = None,
) -> Clock:
    """Build the clock from recorded LRs and, beyond them, the planned schedule.

    Args:
        steps: (T,) snapshot steps, integers ≥ 0, strictly increasing (T may be 0 when a
            schedule is given).
        lrs: (T,) LR recorded at each snapshot; NaN where unknown (filled from the schedule,
            else from the neighbouring snapshots).
        lr_schedule: the planned ``[[step, lr], ...]`` schedule, if known.
        total_steps: planned training length; schedule entries after it are ignored (beyond
            the plan the last planned LR is held).

    Returns:
        A :class:`Clock`.

    Raises:
        ConfigError: on malformed steps, LRs or schedule, or when no LR is known at all.
    """
    steps, lrs = _check_history(steps, lrs)
    total = None if total_steps is None else positive_int(total_steps, "total_steps")
    schedule = None if lr_schedule is None else check_lr_schedule(lr_schedule)
    if schedule is not None and total is not None:
        schedule = [p for p in schedule if p[0] <= total] or None
    if schedule is None and not len(steps):
        raise ConfigError("a clock needs recorded snapshots or a planned LR schedule; got neither")
    lrs, filled = _fill_lrs(steps, lrs, schedule)
    xs, ys = _recorded_knots(steps, lrs)
    if schedule is None:
        slope_after = float(lrs[-1])
        beyond = (
            f"beyond step {int(steps[-1])} the last recorded LR ({slope_after:g}) is held "
            "constant (no planned schedule known)"
        )
    else:
        xs, ys, slope_after = _planned_knots(xs, ys, schedule)
        beyond = "the planned LR schedule is followed" + (
            f" beyond step {int(steps[-1])}" if len(steps) else ""
        )
    prefix = "recorded LR at each snapshot; " if len(steps) else "no snapshots; "
    note = f" ({filled} snapshots without an LR were filled)" if filled else ""
    slope_before = float(lrs[0]) if len(lrs) else float(lr_at(schedule, 0))
    return Clock(
        xs,
        ys,
        slope_before,
        slope_after,
        assumption=prefix + beyond + note,
        last_recorded_step=int(steps[-1]) if len(steps) else None,
        total_steps=total,
    )


def clock_for_store(store: Any) -> Clock:
    """The clock of a :class:`~forecastprune.store.GammaTrajectoryStore`.

    Uses the recorded LRs, the metadata's ``lr_schedule`` and ``total_steps``; when no LR was
    recorded and no schedule is known, the metadata's scalar ``lr`` is assumed constant.

    Args:
        store: an open store.

    Returns:
        A :class:`Clock`.

    Raises:
        StoreError: when the store holds no usable LR information, naming the store.
    """
    meta = store.metadata
    steps, lrs = np.asarray(store.steps), np.asarray(store.lrs, dtype=np.float64)
    schedule, total = meta.get("lr_schedule"), meta.get("total_steps")
    constant = meta.get("lr")
    try:
        if schedule is None and not np.any(np.isfinite(lrs)) and _is_number(constant):
            clock = cumulative_lr_clock(steps, np.full(len(steps), float(constant)))
            clock.assumption = (
                f"no LR recorded; the metadata's lr={float(constant):g} is assumed constant"
            )
            return clock
        return cumulative_lr_clock(steps, lrs, schedule, total)
    except ConfigError as exc:
        raise StoreError(
            f"cannot build a cumulative-LR time axis for the store at {store.path}: {exc}. "
            "Use time_axis='step', or record with an optimizer / set metadata 'lr' or "
            "'lr_schedule'"
        ) from exc


def planned_lr_schedule(
    scheduler: Any, total_steps: int, steps_per_epoch: int = 1
) -> list[list[float]]:
    """Derive the ``[[step, lr], ...]`` milestones of a torch LR scheduler by simulating it.

    The scheduler is deep-copied onto a throwaway optimizer (the model and its optimizer are
    never touched) and stepped from its current state to the end of training.

    Args:
        scheduler: a ``torch.optim.lr_scheduler.LRScheduler`` (MultiStepLR, StepLR,
            CosineAnnealingLR, OneCycleLR, LambdaLR, SequentialLR, ...), as constructed.
        total_steps: planned number of optimizer updates.
        steps_per_epoch: updates between two ``scheduler.step()`` calls (1 when the scheduler
            is stepped every iteration, the epoch length when it is stepped per epoch).

    Returns:
        The schedule of the first parameter group, with a new entry wherever the LR changes.

    Raises:
        ConfigError: for ReduceLROnPlateau (it depends on future metrics), a non-scheduler, or
            bad ``total_steps`` / ``steps_per_epoch``.
    """
    from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

    if isinstance(scheduler, ReduceLROnPlateau) or not isinstance(scheduler, LRScheduler):
        raise ConfigError(
            f"cannot plan the LR schedule of {type(scheduler).__name__}: a schedule is "
            "planned by simulating a torch LRScheduler that does not depend on validation "
            "metrics; pass an explicit [[step, lr], ...] list instead"
        )
    total = positive_int(total_steps, "total_steps")
    per = positive_int(steps_per_epoch, "steps_per_epoch")
    clone, probe = _detached_copy(scheduler)
    start = int(scheduler.last_epoch)
    # update s (1-based) runs after floor((s - 1) / per) scheduler steps
    schedule = [[start * per, float(probe.param_groups[0]["lr"])]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()" on the probe
        for count in range(start + 1, math.ceil(total / per)):
            clone.step()
            lr = float(probe.param_groups[0]["lr"])
            if lr != schedule[-1][1]:
                schedule.append([count * per + 1, lr])
    return schedule


def _detached_copy(scheduler: Any) -> tuple[Any, Any]:
    """A deep copy of ``scheduler`` bound to a parameter-less twin of its optimizer."""
    import torch

    groups = [
        {
            **{k: copy.deepcopy(v) for k, v in g.items() if k != "params"},
            "params": [torch.zeros(1, requires_grad=True)],
        }
        for g in scheduler.optimizer.param_groups
    ]
    probe = torch.optim.SGD(groups, lr=groups[0]["lr"])
    clone = copy.deepcopy(scheduler, memo={id(scheduler.optimizer): probe})
    return clone, probe


def _check_history(steps: Any, lrs: Any) -> tuple[np.ndarray, np.ndarray]:
    steps = np.asarray(steps, dtype=np.float64)
    lrs = np.asarray(lrs, dtype=np.float64)
    if steps.ndim != 1 or lrs.shape != steps.shape:
        raise ConfigError(
            f"steps and lrs must be 1-d arrays of the same length; got {steps.shape} and "
            f"{lrs.shape}"
        )
    if len(steps) and (
        not np.all(np.isfinite(steps)) or steps[0] < 0 or np.any(np.diff(steps) <= 0)
    ):
        raise ConfigError("snapshot steps must be finite, >= 0 and strictly increasing")
    if np.any(np.isinf(lrs)) or np.any(lrs < 0):
        raise ConfigError(f"recorded learning rates must be finite and >= 0; got {lrs}")
    return steps, lrs


def _fill_lrs(
    steps: np.ndarray, lrs: np.ndarray, schedule: list[list[float]] | None
) -> tuple[np.ndarray, int]:
    """Fill unknown (NaN) LRs from the schedule, else from the nearest earlier/later snapshot."""
    missing = np.isnan(lrs)
    if not missing.any():
        return lrs, 0
    lrs = lrs.copy()
    if schedule is not None:
        lrs[missing] = lr_at(schedule, steps[missing])
        return lrs, int(missing.sum())
    known = np.flatnonzero(~missing)
    if not len(known):
        raise ConfigError(
            "no learning rate is known: every snapshot's LR is missing and no planned "
            "schedule was given"
        )
    # nearest known snapshot at or before each one; the first known one for those before it
    previous = np.maximum.accumulate(np.where(missing, -1, np.arange(len(lrs))))
    lrs = lrs[np.where(previous < 0, known[0], previous)]
    return lrs, int(missing.sum())


def _recorded_knots(steps: np.ndarray, lrs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots (0, 0), (s_i, Σ lr up to s_i), each recorded LR covering the updates before it."""
    if not len(steps):
        return np.zeros(1), np.zeros(1)
    gaps = np.diff(np.concatenate([[0.0], steps]))
    ys = np.cumsum(gaps * lrs)
    if steps[0] == 0:
        return steps, ys
    return np.concatenate([[0.0], steps]), np.concatenate([[0.0], ys])


def _planned_knots(
    xs: np.ndarray, ys: np.ndarray, schedule: list[list[float]]
) -> tuple[np.ndarray, np.ndarray, float]:
    """Extend the knots past the last one along the schedule; return the final slope."""
    x, y = float(xs[-1]), float(ys[-1])
    new_x, new_y = [], []
    slope = float(lr_at(schedule, x + 1))
    for step, lr in schedule:
        if step <= x + 1:
            continue
        # updates x+1 .. step-1 run at the current slope; update `step` starts the next one
        y += slope * (step - 1 - x)
        x = step - 1.0
        new_x.append(x)
        new_y.append(y)
        slope = lr
    return np.concatenate([xs, new_x]), np.concatenate([ys, new_y]), slope


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
