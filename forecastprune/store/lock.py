"""One writer per store: an advisory lock file held while a store is open for appending.

Two processes appending to the same store would both name their next segment after the same
manifest and overwrite each other's commits. An ``fcntl.flock`` on ``<store>/.lock`` prevents
that; the kernel drops it when the holder exits, even on SIGKILL, so a crashed writer never
leaves a stale lock. Where ``fcntl`` is unavailable (Windows) the lock is a no-op.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import StoreError
from .format import LOCK_NAME

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class WriterLock:
    """An exclusive, non-blocking lock on a store directory."""

    def __init__(self, fd: int | None) -> None:
        self._fd = fd

    @classmethod
    def acquire(cls, root: Path) -> WriterLock:
        """Take the writer lock of the store at ``root``.

        Raises:
            StoreError: if another process (or another open store object) holds it.
        """
        if fcntl is None:  # pragma: no cover - Windows
            return cls(None)
        try:
            fd = os.open(Path(root) / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(
                f"cannot open store {root} for writing: {exc}; check that the directory is "
                "writable, or open it with mode='r' to read"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreError(
                f"store {root} is already open for writing (by another process or another "
                "open store object); close that writer first, or open with mode='r' to read"
            ) from None
        return cls(fd)

    def release(self) -> None:
        """Release the lock (idempotent)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def try_lock_dir(path: Path) -> WriterLock | None:
    """An exclusive, non-blocking ``flock`` on the directory ``path`` itself.

    Marks a directory as in use (a staging directory being built) for as long as the returned
    lock is held; the kernel drops it when the holder dies.

    Returns:
        The held lock, or None when another process holds it, the directory is gone, or
        locks are unavailable (Windows: nothing is ever treated as abandoned).
    """
    if fcntl is None:  # pragma: no cover - Windows
        return None
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return WriterLock(fd)
