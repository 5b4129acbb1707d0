"""Building a whole store out of sight: a temporary sibling directory renamed into place.

Imports (NPZ, checkpoints) write into a staging directory next to the destination and rename it
over the destination only when they succeed, so an interrupted import never leaves a
half-written store under the requested name, and a failed one leaves an old store untouched.

The destination is checked twice: before the work starts (to fail fast) and again at the
rename, because another import or a recording may have created a store there meanwhile. The
rename is exclusive: without ``overwrite`` it is a plain ``rename(2)``, which the kernel refuses
when the destination is a non-empty directory (a store always holds at least its lock file from
the moment it is created); with ``overwrite`` the old store's writer lock is held while it is
moved away, so a writer cannot be appending to it.

A staging directory holds an ``flock`` on itself while it is built. SIGTERM (where nothing else
handles it) unwinds the build and removes it; a process killed by SIGKILL leaves it behind with
the lock released, and the next staging next to the same destination removes such leftovers.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .._util import fsync_dir
from ..errors import StoreError
from . import format as fmt
from .lock import WriterLock, try_lock_dir

#: rows per segment of imported stores unless the caller chooses otherwise
DEFAULT_IMPORT_FLUSH = 256


@contextmanager
def staged_store_dir(out: str | Path, overwrite: bool) -> Iterator[Path]:
    """Yield an empty temporary directory that replaces ``out`` when the block succeeds.

    Args:
        out: final store path.
        overwrite: allow replacing an existing store at ``out``.

    Raises:
        StoreError: if ``out`` is taken (and not ``overwrite``), is not a store, or is being
            written by another process — checked before the block and again, exclusively, when
            the result is moved into place (nothing is replaced then).
    """
    out = Path(out)
    check_destination(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(out)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    held = try_lock_dir(staging)  # marks it as being built; the kernel drops it if we die
    try:
        with _sigterm_unwinds():
            yield staging
            _publish(staging, out, overwrite)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        if held is not None:
            held.release()


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Inside the block SIGTERM raises ``SystemExit(143)`` instead of ending the process on
    the spot, so the staging directory is removed on the way out. Only where SIGTERM has its
    default action and only in the main thread; a handler someone installed is left alone."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL
    ):
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def remove_stale_staging(out: Path) -> list[Path]:
    """Delete the staging and trash directories a killed import left next to ``out``.

    Only directories no living process holds locked are removed, so a concurrent import's
    staging is left alone.

    Returns:
        The directories removed.
    """
    removed = []
    for leftover in sorted(out.parent.glob(f".{out.name}.*")):
        if leftover.suffix not in (".tmp", ".old") or not leftover.is_dir():
            continue
        held = try_lock_dir(leftover)
        if held is None:
            continue  # another process is building or discarding it right now
        try:
            shutil.rmtree(leftover, ignore_errors=True)
            removed.append(leftover)
        finally:
            held.release()
    return removed


def check_destination(out: Path, overwrite: bool) -> None:
    """Raise unless a store may be written at ``out``: nothing there (or an empty directory),
    or, with ``overwrite``, a store no other process is writing.

    Raises:
        StoreError: ``out`` is taken and ``overwrite`` is false, is not a store, or is being
            written by another process.
    """
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    if not overwrite:
        raise StoreError(
            f"{out} already exists and is not empty; pass overwrite=True (CLI: --overwrite) "
            "or choose another path"
        )
    if not (out / fmt.MANIFEST_NAME).is_file():
        raise StoreError(
            f"refusing to overwrite {out}: it is not a γ trajectory store (no "
            f"{fmt.MANIFEST_NAME}); remove it yourself or choose another path"
        )
    WriterLock.acquire(out).release()  # never replace a store another process is writing


def _publish(staging: Path, out: Path, overwrite: bool) -> None:
    """Move ``staging`` to ``out`` exclusively (see the module docstring).

    Raises:
        StoreError: when ``out`` was taken meanwhile and may not (or cannot) be replaced.
    """
    if out.exists() and overwrite:
        _replace_store(staging, out)
    else:
        _rename_exclusive(staging, out)
    fsync_dir(out.parent)


def _rename_exclusive(staging: Path, out: Path) -> None:
    """``rename(2)``: succeeds onto nothing or an empty directory, refuses anything else."""
    try:
        os.rename(staging, out)
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise
        raise StoreError(
            f"{out} was created by another process (an import or a recording) while this one "
            "was building its store; nothing was replaced. Pass overwrite=True (CLI: "
            "--overwrite) to replace it, or choose another path"
        ) from None


def _replace_store(staging: Path, out: Path) -> None:
    """Swap an idle old store at ``out`` for ``staging``, holding the old store's lock."""
    check_destination(out, overwrite=True)  # still a store (not a file or a foreign folder)
    lock = WriterLock.acquire(out)  # refuses while a recording is appending to it
    trash = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
    held = try_lock_dir(trash)  # not an abandoned leftover for a concurrent sweep
    try:
        try:
            os.replace(out, trash / "store")
        finally:
            lock.release()
        try:
            _rename_exclusive(staging, out)
        except StoreError:
            raise StoreError(
                f"{out} was created by another process (an import or a recording) while this "
                "one replaced the old store there; the old store is removed as overwrite asked, "
                "but this store was not published. Run it again, or choose another path"
            ) from None
    finally:
        shutil.rmtree(trash, ignore_errors=True)
        if held is not None:
            held.release()


def prepare_directory(root: Path, overwrite: bool) -> None:
    """Make ``root`` an empty directory, deleting an old *store* there only if ``overwrite``."""
    if root.exists() and not root.is_dir():
        raise StoreError(f"cannot create a store at {root}: it is a file, not a directory")
    check_destination(root, overwrite)  # never deletes what is not an idle store
    if root.is_dir() and any(root.iterdir()):
        shutil.rmtree(root)
    root.mkdir(parents=True, exist_ok=True)


def check_claimed(root: Path) -> None:
    """Raise unless ``root`` holds nothing but its writer lock (called with the lock held).

    Between :func:`prepare_directory` and taking the lock, an import may have renamed its
    finished store onto the new empty directory; writing a manifest then would corrupt it.

    Raises:
        StoreError: naming what appeared.
    """
    others = sorted(set(os.listdir(root)) - {fmt.LOCK_NAME})
    if others:
        raise StoreError(
            f"{root} was filled by another process (e.g. an import) while this store was being "
            f"created (it now holds {others[:3]}); nothing was changed. Choose another path, "
            "or pass overwrite=True (CLI: --overwrite) to replace it"
        )
