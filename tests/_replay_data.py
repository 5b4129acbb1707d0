"""Small hand-made trajectory stores for the replay and compare tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from forecastprune.core.layout import ChannelLayout
from forecastprune.store import GammaTrajectoryStore

LAYOUT = ChannelLayout((("a", 4), ("b", 4)))
STEPS = np.arange(0, 201, 5)
#: each channel's |γ| moves in a straight line from START to END over the run
START = np.array([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
END = np.array([0.1, 0.95, 0.2, 0.85, 0.3, 0.75, 0.4, 0.65])


def write_store(
    path: Path,
    steps: np.ndarray,
    values: np.ndarray,
    layout: ChannelLayout,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Record ``values`` (T, C) at ``steps`` into a new store at ``path``."""
    with GammaTrajectoryStore.create(path, layout, metadata=metadata or {}) as store:
        for step, row in zip(steps, values, strict=True):
            store.append(int(step), row, lr=0.1)
    return path


def linear_store(path: Path, metadata: dict[str, Any] | None = None) -> Path:
    """Straight-line |γ| whose ranking at mid-run differs from the final one.

    At step 100 (50 %) the lowest four are channels {2, 4, 6, 7}; at the end {0, 2, 4, 6}.
    Channel 0's γ is negative throughout (the store keeps signs; replay must use |γ|).
    """
    fraction = (STEPS / STEPS[-1])[:, None]
    values = START + (END - START) * fraction
    values[:, 0] *= -1.0
    return write_store(path, STEPS, values, LAYOUT, metadata)


def settling_store(path: Path, settle_at: int = 50, seed: int = 0) -> Path:
    """20 channels re-shuffled at every snapshot before ``settle_at``, frozen from it on."""
    rng = np.random.default_rng(seed)
    steps = np.arange(0, 101, 5)
    frozen = rng.permutation(20) / 20 + 0.05
    values = np.array(
        [frozen if s >= settle_at else rng.permutation(20) / 20 + 0.05 for s in steps]
    )
    layout = ChannelLayout((("x", 10), ("y", 10)))
    return write_store(path, steps, values, layout)
