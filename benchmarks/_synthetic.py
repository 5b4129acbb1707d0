"""Synthetic γ trajectories shaped like BN-L1 sparse training, for benchmarks.

Each channel's γ moves on the *cumulative learning rate* τ (Σ lr), the way SGD under a
step-decay schedule moves parameters: fast while the LR is high, nearly frozen after each drop.
Three kinds of channel, mixed at random:

* ``linear`` (L1 dominates): the constant L1 pull ``s·sign(γ)`` drives γ down at a steady rate
  in τ until it reaches zero, then it jitters around zero;
* ``exponential`` (weak but useful): γ decays exponentially in τ towards a small floor;
* ``plateau`` (important): γ approaches its own level in [0.2, 1.5] exponentially in τ, from
  above or below.

SGD noise scales with the learning rate, so the noise is ``σ·lr/lr₀`` plus a small floor, and
it is temporally correlated (an AR(1) in steps) like real minibatch noise. The values are signed
raw γ (as the store keeps them); consumers take ``np.abs``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

#: YOLOv3's prunable channel count under the seed write-up's rule (DESIGN.md).
YOLOV3_CHANNELS = 13_376


@dataclass(frozen=True)
class SyntheticRun:
    """A synthetic recording.

    Attributes:
        steps: (T,) int64 steps of the snapshots.
        values: (T, C) float64 signed γ.
        lrs: (T,) learning rate at each snapshot.
        kinds: (C,) ``"linear"``, ``"exponential"`` or ``"plateau"``.
        lr_schedule: ``[[step, lr], ...]``, the planned schedule (store metadata format).
    """

    steps: np.ndarray
    values: np.ndarray
    lrs: np.ndarray
    kinds: np.ndarray
    lr_schedule: list[list[float]]


def step_decay_schedule(
    total_steps: int,
    lr: float = 0.1,
    milestones: tuple[float, ...] = (0.5, 0.75),
    factor: float = 0.1,
) -> list[list[float]]:
    """A step-decay schedule: ``lr`` divided by ``1/factor`` at each milestone fraction."""
    points = [[0, lr]]
    for i, fraction in enumerate(milestones, start=1):
        points.append([int(round(fraction * total_steps)), lr * factor**i])
    return points


def make_run(
    n_channels: int = YOLOV3_CHANNELS,
    n_snapshots: int = 200,
    record_every: int = 10,
    lr: float = 0.1,
    noise: float = 0.01,
    seed: int = 0,
) -> SyntheticRun:
    """Generate a synthetic sparse-training recording (all in memory; see :func:`iter_run`).

    Args:
        n_channels: C.
        n_snapshots: T; snapshots are taken at steps ``record_every, 2·record_every, …``.
        record_every: steps between snapshots.
        lr: initial learning rate (divided by 10 at 50 % and 75 % of the run).
        noise: SGD noise scale at the initial learning rate.
        seed: random seed.

    Returns:
        The recording.
    """
    chunks = list(iter_run(n_channels, n_snapshots, record_every, lr, noise, seed))
    steps, values, lrs = (np.concatenate([c[i] for c in chunks]) for i in range(3))
    kinds = _channel_kinds(np.random.default_rng(seed), n_channels)[0]
    return SyntheticRun(
        steps, values, lrs, kinds, step_decay_schedule(n_snapshots * record_every, lr)
    )


def iter_run(
    n_channels: int,
    n_snapshots: int,
    record_every: int = 10,
    lr: float = 0.1,
    noise: float = 0.01,
    seed: int = 0,
    chunk: int = 2000,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The same recording as :func:`make_run`, ``chunk`` snapshots at a time.

    Yields ``(steps, values (rows, C) float64, lrs)``; memory stays at one chunk, so runs of
    10⁵ snapshots × 13,376 channels can be written to a store on a small machine.
    """
    rng = np.random.default_rng(seed)
    total = n_snapshots * record_every
    schedule = step_decay_schedule(total, lr)
    all_steps = np.arange(1, total + 1)
    lr_per_step = _lr_at(all_steps, schedule)
    tau = np.cumsum(lr_per_step) / np.sum(lr_per_step)  # 0 → 1 over the run
    steps = all_steps[record_every - 1 :: record_every]
    kinds, start = _channel_kinds(rng, n_channels)
    params = {
        kind: _curve_params(kind, start[kinds == kind], rng)
        for kind in ("linear", "exponential", "plateau")
    }
    state = None
    for first in range(0, steps.shape[0], chunk):
        rows = steps[first : first + chunk]
        tau_rec, lrs = tau[rows - 1][:, None], lr_per_step[rows - 1]
        values = np.empty((rows.shape[0], n_channels))
        for kind, (curve, args) in params.items():
            values[:, kinds == kind] = curve(tau_rec, *args)
        shocks, state = _noise(rng, lrs / lr, noise, n_channels, state)
        yield rows.astype(np.int64), values + shocks, lrs


def _channel_kinds(rng: np.random.Generator, n_channels: int) -> tuple[np.ndarray, np.ndarray]:
    kinds = rng.choice(
        np.array(["linear", "exponential", "plateau"]), size=n_channels, p=[0.35, 0.2, 0.45]
    )
    return kinds, rng.uniform(0.6, 1.4, n_channels)


def _curve_params(kind: str, start: np.ndarray, rng: np.random.Generator) -> tuple[Any, tuple]:
    """The curve of one kind of channel and its per-channel parameters (drawn once)."""
    n = start.shape[0]
    if kind == "linear":  # reaches zero somewhere between 30 % and 200 % of the run's τ
        return _linear, (start, start / rng.uniform(0.3, 2.0, n))
    if kind == "exponential":
        return _exponential, (start, rng.uniform(1.0, 6.0, n), rng.uniform(0.0, 0.1, n))
    return _plateau, (start, rng.uniform(0.2, 1.5, n), rng.uniform(2.0, 10.0, n))


def _lr_at(steps: np.ndarray, schedule: list[list[float]]) -> np.ndarray:
    starts = np.array([s for s, _ in schedule])
    rates = np.array([r for _, r in schedule])
    return rates[np.searchsorted(starts, steps, side="right") - 1]


def _linear(tau: np.ndarray, start: np.ndarray, rate: np.ndarray) -> np.ndarray:
    return np.maximum(start - rate * tau, 0.0)


def _exponential(
    tau: np.ndarray, start: np.ndarray, rate: np.ndarray, floor: np.ndarray
) -> np.ndarray:
    return floor + (start - floor) * np.exp(-rate * tau)


def _plateau(tau: np.ndarray, start: np.ndarray, level: np.ndarray, rate: np.ndarray) -> np.ndarray:
    return level + (start - level) * np.exp(-rate * tau)


def _noise(
    rng: np.random.Generator,
    lr_ratio: np.ndarray,
    scale: float,
    n_channels: int,
    previous: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """AR(1)-correlated noise whose size follows the learning rate (plus a 5 % floor).

    ``previous`` is the last row of the chain so far (None at the start); returns the noise and
    the new last row, so chunks continue one chain.
    """
    shocks = rng.normal(size=(lr_ratio.shape[0], n_channels))
    correlated = np.empty_like(shocks)
    correlated[0] = (
        shocks[0] if previous is None else (0.7 * previous + np.sqrt(1 - 0.7**2) * shocks[0])
    )
    for row in range(1, shocks.shape[0]):  # over time; each row is all channels at once
        correlated[row] = 0.7 * correlated[row - 1] + np.sqrt(1 - 0.7**2) * shocks[row]
    return correlated * scale * (lr_ratio + 0.05)[:, None], correlated[-1]
