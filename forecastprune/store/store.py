"""The :class:`GammaTrajectoryStore`: every recorded BN channel's γ over training.

What is stored: for each snapshot, the step (int64, strictly increasing), the learning rate at
that step (float64, NaN where unknown) and the **raw signed γ** of every channel in layout order.
Signed, because it is lossless (import/export round-trips exactly); consumers take ``|γ|``
themselves, as network slimming ranks channels by magnitude.

Values are kept as float32, or as float16 when the store is created with ``dtype="float16"`` to
make bundled stores compact (about 3 significant digits, |γ| <= 65504). Reads always return
float32.

Bad snapshots are rejected with :class:`~forecastprune.errors.StoreError` *before* anything is
buffered: a step that does not increase, the wrong width, or any NaN/Inf
(:mod:`.snapshot_checks`). The store stays intact and usable afterwards.

Writes are buffered in memory (at most ``flush_every`` snapshots) and committed as one segment
per flush; see :mod:`forecastprune.store.format` for why a crash loses at most the snapshots since
the last flush. Reads include the writer's own unflushed buffer, so ``len(store)`` counts every
accepted snapshot; a reader sees what was committed when it opened the store.

Opening reads the manifest and the time axis (steps and LRs, 16 bytes per snapshot); the values
are memory-mapped segment by segment only when a read needs them (:mod:`.segments`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import numpy as np

from .._util import os_error_message
from ..core.layout import ChannelLayout
from ..errors import StoreError, StoreWriteError
from . import format as fmt
from .lock import WriterLock
from .rows import HistoryView, column_selector
from .segments import CommittedSegments
from .snapshot_checks import check_batch, check_lr, check_step, check_values, fill_row
from .staging import check_claimed, prepare_directory

PathLike = str | Path
Mode = Literal["r", "a"]


class GammaTrajectoryStore:
    """A persistent record of per-channel γ snapshots.

    Do not call the constructor; use :meth:`create` for a new store and :meth:`open` for an
    existing one.
    """

    def __init__(self, root: Path, manifest: fmt.Manifest, mode: Mode, lock: WriterLock | None):
        self._root = root
        self._manifest = manifest
        self._mode = mode
        self._lock = lock
        self._closed = False
        self._segments = CommittedSegments(root, manifest)
        self._committed_steps, self._committed_lrs = self._segments.time_axis()
        width, dtype = manifest.layout.total, np.dtype(manifest.dtype)
        self._buf_values = np.empty((manifest.flush_every, width), dtype=dtype) if lock else None
        self._buf_steps = np.empty(manifest.flush_every, dtype=np.int64)
        self._buf_lrs = np.empty(manifest.flush_every, dtype=np.float64)
        self._buffered = 0

    # ---------------------------------------------------------------- construction
    @classmethod
    def create(
        cls,
        path: PathLike,
        layout: ChannelLayout,
        metadata: dict[str, Any] | None = None,
        fingerprint: str | None = None,
        flush_every: int = fmt.DEFAULT_FLUSH_EVERY,
        overwrite: bool = False,
        dtype: str = "float32",
    ) -> GammaTrajectoryStore:
        """Create an empty store at ``path`` and open it for appending.

        Args:
            path: directory to create (must not exist, or be empty, unless ``overwrite``).
            layout: the recorded BN layers and their channel counts.
            metadata: free-form JSON-serializable training metadata (model, sparsity, lr, ...).
            fingerprint: optional identifier of the model architecture.
            flush_every: snapshots buffered in memory before a segment is written.
            overwrite: replace an existing store at ``path``.
            dtype: ``"float32"`` or ``"float16"`` (compact; reads still return float32).

        Returns:
            The store, open in mode ``"a"``.

        Raises:
            StoreError: on bad arguments or if ``path`` is taken.
        """
        if not isinstance(layout, ChannelLayout):
            raise StoreError(f"layout must be a ChannelLayout, got {type(layout).__name__}")
        if dtype not in fmt.VALUE_DTYPES:
            raise StoreError(f"dtype must be one of {list(fmt.VALUE_DTYPES)}, got {dtype!r}")
        if not isinstance(flush_every, int) or isinstance(flush_every, bool) or flush_every < 1:
            raise StoreError(f"flush_every must be a positive integer, got {flush_every!r}")
        if fingerprint is not None and not isinstance(fingerprint, str):
            raise StoreError(f"fingerprint must be a string or None, got {fingerprint!r}")
        manifest = fmt.Manifest(
            layout=layout,
            dtype=dtype,
            flush_every=flush_every,
            fingerprint=fingerprint,
            metadata=fmt.json_ready(dict(metadata or {})),
        )
        root = Path(path)
        try:
            prepare_directory(root, overwrite)
            lock = WriterLock.acquire(root)
        except OSError as exc:
            raise StoreError(f"cannot create a store at {root}: {exc}") from exc
        try:
            check_claimed(root)
            fmt.write_manifest(root, manifest)
        except BaseException as exc:
            lock.release()
            if isinstance(exc, OSError):
                raise StoreError(f"cannot create a store at {root}: {exc}") from exc
            raise
        return cls(root, manifest, "a", lock)

    @classmethod
    def open(cls, path: PathLike, mode: Mode = "r") -> GammaTrajectoryStore:
        """Open an existing store.

        Args:
            path: the store directory.
            mode: ``"r"`` to read, ``"a"`` to keep appending (e.g. a resumed run). Appending
                deletes orphan segment files a crashed writer left behind.

        Returns:
            The store.

        Raises:
            StoreError: if the path is missing, not a store, corrupted, of a newer format
                version, or already open for writing by another process.
        """
        if mode not in ("r", "a"):
            raise StoreError(f"mode must be 'r' or 'a', got {mode!r}")
        root = Path(path)
        manifest = fmt.read_manifest(root)  # fails on a missing or broken store
        if mode == "r":
            return cls(root, manifest, mode, None)
        lock = WriterLock.acquire(root)
        try:
            manifest = fmt.read_manifest(root)  # re-read under the lock: a writer may have flushed
            for orphan in fmt.orphan_files(root, manifest):
                orphan.unlink(missing_ok=True)
            return cls(root, manifest, mode, lock)
        except BaseException:
            lock.release()
            raise

    # ---------------------------------------------------------------- writing
    def append(self, step: int, values: Any, lr: float | None = None) -> None:
        """Add one snapshot.

        Args:
            step: training step; must be greater than every step already in the store.
            values: (C,) raw signed γ of every channel in layout order (array-like).
            lr: learning rate at this step, or None if unknown.

        Raises:
            StoreError: if the store is read-only or closed, or the snapshot is invalid; the
                store is left unchanged.
        """
        self._check_writable()
        step = check_step(step, self._last_step() if len(self) else None, self._root)
        lr_value = check_lr(lr, step)
        if self._buffered == self._manifest.flush_every:
            self.flush()
        assert self._buf_values is not None  # guaranteed by _check_writable
        slot = self._buf_values[self._buffered]  # scratch until the counter moves on
        if not fill_row(slot, values, self.layout.total):
            slot[:] = check_values(values, step, self.layout, self.dtype)  # raises if bad
        self._buf_steps[self._buffered] = step
        self._buf_lrs[self._buffered] = lr_value
        self._buffered += 1
        if self._buffered == self._manifest.flush_every:
            self.flush()

    def append_many(self, steps: Any, values: Any, lrs: Any = None) -> None:
        """Add many snapshots at once (imports, thinning), committed ``flush_every`` at a time.

        All rows are checked before anything is written, so a bad row leaves the store as it
        was; a process killed midway keeps every segment committed before it (at most one
        flush interval is lost, as with :meth:`append`).

        Args:
            steps: (n,) increasing integer steps, above every step already stored.
            values: (n, C) raw signed γ.
            lrs: (n,) learning rates (NaN where unknown), or None when none is known.

        Raises:
            StoreError: if the store is read-only or closed, or any row is invalid.
        """
        self._check_writable()
        last = self._last_step() if len(self) else None
        steps, values, lrs = check_batch(
            steps, values, lrs, last, self.layout, self.dtype, self._root
        )
        self.flush()
        chunk = self._manifest.flush_every
        for first in range(0, len(steps), chunk):
            part = slice(first, first + chunk)
            self._commit(steps[part], lrs[part], values[part])

    def flush(self) -> None:
        """Commit buffered snapshots as a new segment (no-op when nothing is buffered)."""
        if self._lock is None or self._buffered == 0:
            return
        n = self._buffered
        steps, lrs = self._buf_steps[:n].copy(), self._buf_lrs[:n].copy()
        self._commit(steps, lrs, self._buf_values[:n])
        self._buffered = 0

    def _commit(self, steps: np.ndarray, lrs: np.ndarray, values: np.ndarray) -> None:
        """Write one segment and the manifest that lists it (the data first, then the list)."""
        n = len(steps)
        try:
            segment = fmt.write_segment(self._root, self._manifest.next_index, steps, lrs, values)
            self._manifest.segments.append(segment)
            try:
                fmt.write_manifest(self._root, self._manifest)
            except BaseException:
                self._manifest.segments.pop()  # not committed: the buffer stays for a retry
                raise
        except OSError as exc:
            raise StoreWriteError(
                f"cannot write to store {self._root}: {exc}; the {n} buffered snapshots are "
                "kept in memory, fix the problem (e.g. free disk space) and flush again",
                os_error_message(exc, f"write to store {self._root} ({n} snapshots not saved)"),
            ) from exc
        self._committed_steps = np.concatenate([self._committed_steps, steps])
        self._committed_lrs = np.concatenate([self._committed_lrs, lrs])

    def update_metadata(self, **items: Any) -> None:
        """Add or replace metadata entries (e.g. the final accuracy) and commit them now.

        Raises:
            StoreError: if the store is read-only or closed, or a value is not JSON-serializable.
        """
        self._check_writable()
        self._manifest.metadata.update(fmt.json_ready(items))
        fmt.write_manifest(self._root, self._manifest)

    def close(self) -> None:
        """Flush and release the store for other writers; safe to call twice."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def __enter__(self) -> GammaTrajectoryStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ---------------------------------------------------------------- reading
    @property
    def path(self) -> Path:
        return self._root

    @property
    def mode(self) -> Mode:
        return self._mode

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def layout(self) -> ChannelLayout:
        return self._manifest.layout

    @property
    def metadata(self) -> dict[str, Any]:
        """A copy of the training metadata (use :meth:`update_metadata` to change it)."""
        return fmt.json_ready(self._manifest.metadata)

    @property
    def fingerprint(self) -> str | None:
        return self._manifest.fingerprint

    @property
    def dtype(self) -> str:
        """The on-disk value dtype (reads return float32 regardless)."""
        return self._manifest.dtype

    @property
    def flush_every(self) -> int:
        return self._manifest.flush_every

    @property
    def format_version(self) -> int:
        return self._manifest.version

    def __len__(self) -> int:
        return len(self._committed_steps) + self._buffered

    @property
    def steps(self) -> np.ndarray:
        """(T,) int64 steps of every snapshot."""
        return np.concatenate([self._committed_steps, self._buf_steps[: self._buffered]])

    @property
    def lrs(self) -> np.ndarray:
        """(T,) float64 learning rate at each snapshot (NaN where unknown)."""
        return np.concatenate([self._committed_lrs, self._buf_lrs[: self._buffered]])

    def history(
        self, until_step: int | None = None, layers: Sequence[str] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Snapshots up to and including ``until_step``, optionally for some layers only.

        Only the segments up to ``until_step`` are memory-mapped, and only the requested
        layers' columns are copied out.

        Args:
            until_step: last step to include (None: all).
            layers: BN layer names, in the order wanted (None: all, in layout order).

        Returns:
            ``(steps (T',) int64, values (T', C') float32)`` with C' the channels of ``layers``.

        Raises:
            StoreError: for an unknown layer or a damaged segment file.
        """
        columns, width = column_selector(self.layout, layers, self._root)
        end = len(self) if until_step is None else self._rows_until(until_step)
        parts = self._segments.rows(end, columns)
        buffered = end - len(self._committed_steps)
        if buffered > 0:
            assert self._buf_values is not None  # only writers buffer
            parts.append(self._buf_values[:buffered, columns])
        values = np.empty((end, width), dtype=np.float32)
        if parts:
            np.concatenate(parts, axis=0, out=values, casting="same_kind")
        return self.steps[:end].copy(), values

    def view(self, until_step: int | None = None) -> HistoryView:
        """The values up to ``until_step`` as a lazy (T', C) view that reads rows on demand.

        Unlike :meth:`history` nothing is copied until rows are indexed, so a store of 10⁵
        snapshots can be replayed by reading only what each forecaster needs.
        """
        end = len(self) if until_step is None else self._rows_until(until_step)
        return HistoryView(self._take, end, self.layout.total)

    def _take(self, rows: np.ndarray) -> np.ndarray:
        """Rows by index (sorted, unique), committed or still buffered, as float32."""
        committed = len(self._committed_steps)
        old, new = rows[rows < committed], rows[rows >= committed] - committed
        parts = [self._segments.take(old, slice(None))] if len(old) else []
        if len(new):
            assert self._buf_values is not None  # only writers buffer
            parts.append(self._buf_values[new].astype(np.float32))
        if not parts:
            return np.empty((0, self.layout.total), dtype=np.float32)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def final(self) -> tuple[int, np.ndarray]:
        """The last snapshot: ``(step, values (C,) float32)``.

        Raises:
            StoreError: if the store is empty.
        """
        if len(self) == 0:
            raise StoreError(f"store {self._root} is empty: it has no snapshots yet")
        if self._buffered:
            row = self._buf_values[self._buffered - 1]
        else:
            row = self._segments.values(self._manifest.segments[-1])[-1]
        return int(self.steps[-1]), np.asarray(row, dtype=np.float32).copy()

    def layer(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(steps (T,), values (T, n))`` of one BN layer."""
        return self.history(layers=[name])

    def info(self) -> dict[str, Any]:
        """A JSON-ready summary: layout, size, step range, metadata and final |γ| percentiles."""
        from .summary import store_info  # summary depends on this module; import lazily

        return store_info(self)

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"mode={self._mode!r}"
        return (
            f"GammaTrajectoryStore({str(self._root)!r}, T={len(self)}, "
            f"C={self.layout.total}, layers={len(self.layout)}, {state})"
        )

    # ---------------------------------------------------------------- internals
    def _rows_until(self, until_step: Any) -> int:
        if isinstance(until_step, bool) or not isinstance(
            until_step, (int, float, np.integer, np.floating)
        ):
            raise StoreError(f"until_step must be a number or None, got {until_step!r}")
        return int(np.searchsorted(self.steps, until_step, side="right"))

    def _check_writable(self) -> None:
        if self._closed:
            raise StoreError(f"store {self._root} is closed; reopen it with mode='a' to append")
        if self._lock is None:
            raise StoreError(
                f"store {self._root} is open read-only; open it with mode='a' to append"
            )

    def _last_step(self) -> int:
        if self._buffered:
            return int(self._buf_steps[self._buffered - 1])
        return int(self._committed_steps[-1])
