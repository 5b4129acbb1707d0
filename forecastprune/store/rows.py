"""A lazy view of a store's values: rows are read from the memory-mapped segments on demand.

Replaying a long run must not load it: ``naive`` needs one row per cutoff, ``sma(window=w)``
``w`` rows, ARIMA a bounded grid. A :class:`HistoryView` indexes like the (T, C) float32 array
:meth:`GammaTrajectoryStore.history` would return, but slicing it gives another view and only
indexing with integers or integer arrays reads (and copies) rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.layout import ChannelLayout
from ..errors import LayoutError, StoreError

#: reads rows by sorted, unique index; returns (len(rows), C) float32
RowReader = Callable[[np.ndarray], np.ndarray]


class HistoryView:
    """Rows ``start .. stop - 1`` of a store's values, read on demand.

    Args:
        read: the store's row reader.
        stop: one past the last row in the view.
        width: the channel count C.
        start: the first row in the view.
    """

    def __init__(self, read: RowReader, stop: int, width: int, start: int = 0) -> None:
        self._read, self._start, self._stop, self._width = read, start, stop, width

    @property
    def shape(self) -> tuple[int, int]:
        return (self._stop - self._start, self._width)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(np.float32)

    @property
    def ndim(self) -> int:
        return 2

    def __len__(self) -> int:
        return self._stop - self._start

    def __getitem__(self, key: Any) -> Any:
        """A slice of rows gives a view; an int or integer array reads those rows."""
        if isinstance(key, slice):
            first, last, step = key.indices(len(self))
            if step != 1:
                return self[np.arange(first, last, step)]
            last = max(first, last)
            return HistoryView(self._read, self._start + last, self._width, self._start + first)
        if isinstance(key, (int, np.integer)):
            return self._rows(np.array([int(key)]))[0]
        return self._rows(np.asarray(key))

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self._rows(np.arange(len(self)))
        return out if dtype is None else out.astype(dtype)

    def _rows(self, index: np.ndarray) -> np.ndarray:
        if index.dtype == bool:
            index = np.flatnonzero(index)
        index = np.where(index < 0, index + len(self), index).astype(np.int64)
        if index.size and (index.min() < 0 or index.max() >= len(self)):
            raise IndexError(f"row index out of range for a view of {len(self)} rows")
        unique, inverse = np.unique(index, return_inverse=True)
        return self._read(unique + self._start)[inverse]


def column_selector(
    layout: ChannelLayout, layers: Sequence[str] | str | None, root: Path
) -> tuple[slice | np.ndarray, int]:
    """Which value columns hold ``layers`` (all when None), and how many there are.

    Contiguous layers give a slice, which keeps memory-mapped reads sequential.

    Raises:
        StoreError: for a layer the store at ``root`` does not have.
    """
    if layers is None:
        return slice(None), layout.total
    if isinstance(layers, str):
        layers = [layers]
    try:
        columns = layout.columns(layers)
    except LayoutError as exc:
        raise StoreError(f"store {root}: {exc}") from exc
    if len(columns) and np.all(np.diff(columns) == 1):
        return slice(int(columns[0]), int(columns[-1]) + 1), len(columns)
    return columns, len(columns)
