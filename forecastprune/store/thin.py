"""A smaller copy of a store: every k-th snapshot or a target count, optionally in float16.

Long runs recorded every few steps hold far more snapshots than any forecaster needs; a thinned
copy keeps the first and the last snapshot (the run's start and its oracle), spaces the rest
evenly, and can halve the bytes per value. The source is never modified; the copy is built in
a staging directory and appears under its name only when complete.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import StoreError
from .staging import DEFAULT_IMPORT_FLUSH, staged_store_dir
from .store import GammaTrajectoryStore

#: snapshots copied per batch: bounds memory to this many rows of C values
_BATCH = 2048


def thin_rows(n: int, every: int | None = None, count: int | None = None) -> np.ndarray:
    """Indices of the snapshots a thinned copy keeps (sorted; first and last always).

    Raises:
        StoreError: unless exactly one of ``every`` (≥ 1) and ``count`` (≥ 2) is given.
    """
    if (every is None) == (count is None):
        raise StoreError(
            "thin with exactly one of every=K (keep every K-th snapshot) or "
            "count=N (keep N snapshots spread evenly)"
        )
    if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
        raise StoreError(f"every must be a whole number ≥ 1; got {every!r}")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 2):
        raise StoreError(
            f"count must be a whole number ≥ 2 (the first and the last snapshot); got {count!r}"
        )
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    picked = np.arange(0, n, every) if every else np.linspace(0, n - 1, min(count, n))
    return np.unique(np.concatenate([np.round(picked).astype(np.int64), [0, n - 1]]))


def thin_store(
    source: str | Path,
    out: str | Path,
    *,
    every: int | None = None,
    count: int | None = None,
    dtype: str | None = None,
    overwrite: bool = False,
) -> GammaTrajectoryStore:
    """Copy every ``every``-th snapshot (or ``count`` evenly spread ones) into a new store.

    Args:
        source: the store to thin (opened read-only).
        out: the new store's path.
        every: keep snapshots 0, k, 2k, … (and the last).
        count: keep this many, evenly spread (first and last included).
        dtype: the copy's value dtype (default: the source's); ``"float16"`` halves the size.
        overwrite: replace an existing store at ``out``.

    Returns:
        The new store, open read-only.

    Raises:
        StoreError: on bad arguments, an unreadable source, or a taken ``out``.
    """
    if Path(out).resolve() == Path(source).resolve():
        raise StoreError(
            f"thin writes a new store; {out} is the source itself — choose another path"
        )
    with GammaTrajectoryStore.open(source) as src:
        rows = thin_rows(len(src), every, count)
        steps, lrs, view = src.steps, src.lrs, src.view()
        meta = {**src.metadata, "thinned_from": {"snapshots": len(src), "kept": len(rows)}}
        with (
            staged_store_dir(out, overwrite) as staging,
            GammaTrajectoryStore.create(
                staging,
                src.layout,
                metadata=meta,
                fingerprint=src.fingerprint,
                flush_every=DEFAULT_IMPORT_FLUSH,
                overwrite=True,
                dtype=dtype or src.dtype,
            ) as copy,
        ):
            for first in range(0, len(rows), _BATCH):
                chosen = rows[first : first + _BATCH]
                copy.append_many(steps[chosen], view[chosen], lrs=lrs[chosen])
    return GammaTrajectoryStore.open(out)
