"""The committed part of a store: its segment files, read on demand.

Opening a store reads only the time axis (steps and LRs, 16 bytes per snapshot); a segment's
values are memory-mapped the first time a read needs them and the map is kept for later reads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import StoreError
from . import format as fmt


class CommittedSegments:
    """Read access to the segments a manifest lists.

    Args:
        root: the store directory.
        manifest: the store's manifest; segments appended to it later are picked up.
    """

    def __init__(self, root: Path, manifest: fmt.Manifest) -> None:
        self._root = root
        self._manifest = manifest
        self._values_maps: dict[int, np.ndarray] = {}  # segment index -> memory map

    def time_axis(self) -> tuple[np.ndarray, np.ndarray]:
        """``(steps (T,) int64, lrs (T,) float64)`` of every committed snapshot.

        Raises:
            StoreError: a segment's steps disagree with the manifest (a damaged store).
        """
        steps, lrs = [np.zeros(0, np.int64)], [np.zeros(0, np.float64)]
        for seg in self._manifest.segments:
            seg_steps = np.array(self._load(seg, "steps"))
            if (
                seg_steps[0] != seg.first_step
                or seg_steps[-1] != seg.last_step
                or (seg.rows > 1 and np.any(np.diff(seg_steps) <= 0))
            ):
                raise StoreError(
                    f"store segment file {seg.file(self._root, 'steps')} disagrees with the "
                    f"manifest (steps {seg.first_step}..{seg.last_step}, strictly increasing); "
                    "the store is damaged"
                )
            steps.append(seg_steps)
            lrs.append(np.array(self._load(seg, "lrs")))
        return np.concatenate(steps), np.concatenate(lrs)

    def values(self, seg: fmt.Segment) -> np.ndarray:
        """The (rows, C) values of one segment, memory-mapped once."""
        if seg.index not in self._values_maps:
            self._values_maps[seg.index] = self._load(seg, "values")
        return self._values_maps[seg.index]

    def rows(self, end: int, columns: slice | np.ndarray) -> list[np.ndarray]:
        """The values of the first ``end`` committed rows, restricted to ``columns``, as one
        array per segment touched (segments past ``end`` are never mapped)."""
        parts = []
        offset = 0
        for seg in self._manifest.segments:
            if offset >= end:
                break
            parts.append(self.values(seg)[: min(seg.rows, end - offset), columns])
            offset += seg.rows
        return parts

    def take(self, rows: np.ndarray, columns: slice | np.ndarray) -> np.ndarray:
        """The committed rows ``rows`` (sorted, unique), restricted to ``columns``, as float32.

        Only the segments holding those rows are mapped, and only those rows are copied.
        """
        sizes = [seg.rows for seg in self._manifest.segments]
        starts = np.concatenate([[0], np.cumsum(sizes)])
        owner = np.searchsorted(starts, rows, side="right") - 1
        width = self.values(self._manifest.segments[0])[:1, columns].shape[1] if len(rows) else 0
        out = np.empty((len(rows), width), dtype=np.float32)
        for seg_index in np.unique(owner):
            chosen = owner == seg_index
            local = rows[chosen] - starts[seg_index]
            out[chosen] = self.values(self._manifest.segments[seg_index])[local][:, columns]
        return out

    def _load(self, seg: fmt.Segment, array: str) -> np.ndarray:
        return fmt.load_segment_array(
            self._root, seg, array, self._manifest.layout.total, self._manifest.dtype
        )
