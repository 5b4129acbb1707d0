"""Checks on one snapshot before a store buffers it: step, values, learning rate.

A bad snapshot is rejected with :class:`~forecastprune.errors.StoreError` *before* anything is
buffered, so the store stays intact and usable: a diverging run cannot silently poison the
record, and the caller decides whether to stop or skip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import LayoutError, StoreError
from .layout import ChannelLayout


def check_step(step: Any, last_step: int | None, root: Path) -> int:
    """``step`` as an int if it is an int64 integer above ``last_step`` (None: empty store)."""
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
        raise StoreError(f"step must be an integer, got {step!r} ({type(step).__name__})")
    step = int(step)
    if not -(2**63) <= step < 2**63:
        raise StoreError(f"step {step} does not fit in int64")
    if last_step is not None and step <= last_step:
        raise StoreError(
            f"steps must increase: got step {step} after step {last_step} in store "
            f"{root}; snapshot rejected"
        )
    return step


def check_values(values: Any, step: int, layout: ChannelLayout, dtype: str) -> np.ndarray:
    """One (C,) float64 row of finite values that fit the store's ``dtype``."""
    try:
        row = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"snapshot at step {step} is not numeric: {exc}") from exc
    if row.ndim != 1:
        raise StoreError(
            f"snapshot at step {step} must be one (C,) vector, got shape {row.shape}"
        )
    try:
        layout.check_width(row, what=f"snapshot at step {step}")
    except LayoutError as exc:
        raise StoreError(str(exc)) from exc
    bad = ~np.isfinite(row)
    if dtype == "float16":
        bad |= np.abs(row) > np.finfo(np.float16).max
    if bad.any():
        raise StoreError(
            f"snapshot at step {step} has {int(bad.sum())} non-finite (or, for a float16 "
            f"store, out-of-range) values, first in {_describe(layout, np.flatnonzero(bad))}; "
            "snapshot rejected, the store is unchanged (did training diverge?)"
        )
    return row


def check_lr(lr: Any, step: int) -> float:
    """The learning rate as a float; NaN for None (unknown)."""
    if lr is None:
        return float("nan")
    try:
        value = float(lr)
    except (TypeError, ValueError):
        raise StoreError(f"lr at step {step} must be a number or None, got {lr!r}") from None
    if not np.isfinite(value):
        raise StoreError(f"lr at step {step} must be finite, got {value}; snapshot rejected")
    return value


def _describe(layout: ChannelLayout, channels: np.ndarray) -> str:
    offsets = np.asarray(layout.offsets)
    first = int(channels[0])
    layer = int(np.searchsorted(offsets, first, side="right") - 1)
    return f"layer {layout.names[layer]!r} channel {first - offsets[layer]}"
