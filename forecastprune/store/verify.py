"""Checking a store's values: every γ finite, every step a training step.

The writer refuses NaN/Inf snapshots, but a store can still hold them: a segment file edited or
damaged on disk, or written by another tool. A forecaster fed such a history fails far from the
cause ("scores contain 1 NaN/Inf entries"), so the readers that matter check the rows they read
(:func:`check_finite`) and ``forecastprune store verify`` scans a whole store
(:func:`verify_store`), both naming the store, step, layer and channel of the first bad value.

Scans go a block of rows at a time, so a check never allocates more than a small mask however
long the run (a COCO-length YOLOv3 store is ~55,000 × 13,376 values).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from ..core.layout import ChannelLayout
from ..errors import StoreError
from . import format as fmt

#: values examined per block of a scan (rows × channels); keeps each mask a few MiB
BLOCK_VALUES = 1 << 22
#: bad values listed one by one by :func:`verify_store`
MAX_LISTED = 10


@dataclass(frozen=True)
class BadValue:
    """One non-finite value: where it is and what it is."""

    step: int
    layer: str
    channel: int
    value: float

    def __str__(self) -> str:
        return f"step {self.step}, layer {self.layer!r} channel {self.channel}: {self.value}"


@dataclass
class StoreCheck:
    """What :func:`verify_store` found.

    Attributes:
        path: the store.
        snapshots: rows scanned; ``channels``: values per row.
        bad_values: NaN/Inf values in all; ``bad_snapshots``: rows holding at least one.
        per_layer: NaN/Inf count per layer (layers without any are left out).
        listed: the first :data:`MAX_LISTED` bad values, in store order.
        problems: other findings (negative steps, infinite learning rates).
    """

    path: Path
    snapshots: int
    channels: int
    bad_values: int = 0
    bad_snapshots: int = 0
    per_layer: dict[str, int] = field(default_factory=dict)
    listed: list[BadValue] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.bad_values == 0 and not self.problems

    def summary(self) -> str:
        """One line: the verdict, and for a damaged store what and where and how to fix."""
        if self.ok:
            return (
                f"store {self.path} is sound: {self.snapshots} snapshots × {self.channels} "
                "channels, every γ finite"
            )
        found = list(self.problems)
        if self.bad_values:
            found.insert(
                0,
                f"{self.bad_values} NaN/Inf values in {self.bad_snapshots} "
                f"snapshot(s), first at {self.listed[0]}",
            )
        return (
            f"store {self.path} is damaged: {'; '.join(found)}; forecasts from it are "
            "meaningless: re-record or re-import the run (or `store export`, repair the "
            "NPZ and `store import` it)"
        )


def scan(
    steps: np.ndarray, values: Any, layout: ChannelLayout, rows: np.ndarray | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(row, bad channel indices)`` for every row of ``values`` with a NaN/Inf.

    Args:
        steps: (T,) the rows' steps (only their count is used here).
        values: (T, C) array, memory map or store view; read a block of rows at a time.
        layout: the store's layout (C channels).
        rows: sorted row indices to examine (None: every row), e.g. only the rows the
            forecasters will read, so a check costs what the forecasts cost.
    """
    block = max(1, BLOCK_VALUES // max(layout.total, 1))
    if rows is None:
        blocks = ((start, slice(start, start + block)) for start in range(0, len(steps), block))
    else:
        blocks = ((start, rows[start : start + block]) for start in range(0, len(rows), block))
    for start, part in blocks:
        bad = ~np.isfinite(values[part])
        for row in np.flatnonzero(bad.any(axis=1)):
            index = start + int(row)
            yield (index if rows is None else int(rows[index])), np.flatnonzero(bad[row])


def locate(layout: ChannelLayout, channel: int) -> tuple[str, int]:
    """``(layer name, channel within the layer)`` of a global channel index."""
    offsets = np.asarray(layout.offsets)
    layer = int(np.searchsorted(offsets, channel, side="right") - 1)
    return layout.names[layer], int(channel - offsets[layer])


def check_finite(
    path: Path | str,
    steps: np.ndarray,
    values: Any,
    layout: ChannelLayout,
    rows: np.ndarray | None = None,
) -> None:
    """Raise if the rows a reader takes from a store hold any NaN/Inf.

    Args:
        path: the store (for the message).
        steps: (T,) steps of the history.
        values: (T, C) the history (an array or a store view).
        layout: the store's layout.
        rows: the sorted rows that will be read (None: all of them).

    Raises:
        StoreError: naming the store, the step, layer and channel of the first bad value, how
            many rows are affected, and ``store verify``.
    """
    found = list(islice(scan(steps, values, layout, rows), 1))
    if not found:
        return
    row, channels = found[0]
    layer, channel = locate(layout, int(channels[0]))
    affected = sum(1 for _ in scan(steps, values, layout, rows))
    read = len(steps) if rows is None else len(rows)
    raise StoreError(
        f"store {path} holds NaN/Inf γ: {affected} of the {read} snapshots read have some, "
        f"first at step {int(steps[row])}, layer {layer!r} channel {channel} "
        f"({values[[row]][0, channels[0]]}); run `forecastprune store verify {path}` to list them, "
        "and re-record or re-import the run"
    )


def verify_store(path: Path | str) -> StoreCheck:
    """Scan every snapshot of the store at ``path`` for NaN/Inf γ and impossible steps.

    Reads one segment file at a time (memory-mapped), a block of rows at a time.

    Raises:
        StoreError: if the store cannot be opened at all (no manifest, missing segments).
    """
    from .store import GammaTrajectoryStore  # the store imports nothing from here

    with GammaTrajectoryStore.open(path) as store:  # validates the manifest and the steps
        root, layout, dtype = store.path, store.layout, store.dtype
        steps, lrs = store.steps, store.lrs
    manifest = fmt.read_manifest(root)
    check = StoreCheck(Path(root), len(steps), layout.total)
    if len(steps) and steps[0] < 0:
        check.problems.append(f"steps count training steps from 0, but the first is {steps[0]}")
    if np.isinf(lrs).any():
        check.problems.append(
            f"{int(np.isinf(lrs).sum())} infinite learning rate(s), first at "
            f"step {int(steps[np.flatnonzero(np.isinf(lrs))[0]])}"
        )
    per_layer = np.zeros(len(layout), dtype=np.int64)
    offset = 0
    for seg in manifest.segments:
        values = fmt.load_segment_array(root, seg, "values", layout.total, dtype)
        for row, channels in scan(steps[offset : offset + seg.rows], values, layout):
            _count(check, layout, int(steps[offset + row]), channels, values[row], per_layer)
        offset += seg.rows
    check.per_layer = {layout.names[i]: int(per_layer[i]) for i in np.flatnonzero(per_layer)}
    return check


def _count(
    check: StoreCheck,
    layout: ChannelLayout,
    step: int,
    channels: np.ndarray,
    row: np.ndarray,
    per_layer: np.ndarray,
) -> None:
    """Add one row's bad channels to the tallies (vectorized: a ruined store has millions)."""
    check.bad_values += len(channels)
    check.bad_snapshots += 1
    layers = np.searchsorted(np.asarray(layout.offsets), channels, side="right") - 1
    per_layer += np.bincount(layers, minlength=len(layout))
    for index in channels[: MAX_LISTED - len(check.listed)]:
        layer, channel = locate(layout, int(index))
        check.listed.append(BadValue(step, layer, channel, float(row[index])))
