"""Checks on one snapshot before a store buffers it: step, values, learning rate.

A bad snapshot is rejected with :class:`~forecastprune.errors.StoreError` *before* anything is
buffered, so the store stays intact and usable: a diverging run cannot silently poison the
record, and the caller decides whether to stop or skip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..core.layout import ChannelLayout
from ..errors import LayoutError, StoreError


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
        raise StoreError(f"snapshot at step {step} must be one (C,) vector, got shape {row.shape}")
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


def fill_row(slot: np.ndarray, values: Any, width: int) -> bool:
    """Copy a well-formed numeric (C,) row into ``slot`` and say whether it is all finite there.

    The fast path of an append: one conversion straight into the buffer, no temporary. False
    means "not plainly valid" — the caller then runs :func:`check_values` for the verdict and
    its message (a float16 slot overflows to inf, so out-of-range values land here too).
    """
    row = np.asarray(values)
    if row.shape != (width,) or row.dtype.kind not in "fiu":
        return False
    with np.errstate(over="ignore"):  # an overflow becomes inf, which the check below refuses
        np.copyto(slot, row, casting="unsafe")
    return bool(np.isfinite(slot).all())


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


def check_batch(
    steps: Any,
    values: Any,
    lrs: Any,
    last_step: int | None,
    layout: ChannelLayout,
    dtype: str,
    root: Path,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Many snapshots checked at once, as :func:`check_step`/`check_values`/`check_lr` would.

    Returns:
        ``(steps int64 (n,), values (n, C) in the store's dtype, lrs float64 (n,))``; NaN LRs
        where unknown. Values are converted once, straight to the store's dtype: an overflow
        to inf there is caught like any non-finite value.
    """
    steps_in = np.asarray(steps)
    if steps_in.ndim != 1 or not np.issubdtype(steps_in.dtype, np.integer):
        raise StoreError(
            f"steps must be a 1-D integer array; got {steps_in.dtype} {steps_in.shape}"
        )
    steps_out = steps_in.astype(np.int64)
    if len(steps_out) and (
        np.any(np.diff(steps_out) <= 0) or (last_step is not None and steps_out[0] <= last_step)
    ):
        bad = (
            0
            if last_step is not None and steps_out[0] <= last_step
            else int(np.flatnonzero(np.diff(steps_out) <= 0)[0]) + 1
        )
        check_step(int(steps_out[bad]), last_step if bad == 0 else int(steps_out[bad - 1]), root)
    raw = np.asarray(values)
    if raw.ndim != 2 or raw.shape[0] != len(steps_out) or raw.dtype.kind not in "fiu":
        raise StoreError(
            f"values must be a numeric ({len(steps_out)}, C) array for "
            f"{len(steps_out)} steps; got {raw.dtype} {raw.shape}"
        )
    with np.errstate(over="ignore"):  # an overflow becomes inf, refused just below
        rows = raw.astype(dtype, copy=False)
    bad_rows = ~np.isfinite(rows).all(axis=1)
    for index in np.flatnonzero(bad_rows)[:1] if rows.shape[1] == layout.total else [0]:
        check_values(raw[index], int(steps_out[index]), layout, dtype)  # raises, naming it
    if lrs is None:
        return steps_out, rows, np.full(len(steps_out), np.nan)
    rates = np.asarray(lrs, dtype=np.float64).reshape(-1)
    if rates.shape != steps_out.shape or np.any(np.isinf(rates)):
        raise StoreError(
            f"lrs must be {len(steps_out)} finite numbers, NaN where unknown (or "
            f"None); got {np.asarray(lrs)!r:.80}"
        )
    return steps_out, rows, rates


def _describe(layout: ChannelLayout, channels: np.ndarray) -> str:
    offsets = np.asarray(layout.offsets)
    first = int(channels[0])
    layer = int(np.searchsorted(offsets, first, side="right") - 1)
    return f"layer {layout.names[layer]!r} channel {first - offsets[layer]}"
