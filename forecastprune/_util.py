"""Small helpers shared across subpackages: atomic files, distributed ranks, input checks.

Kept free of heavy imports (torch is imported inside the functions that need it) so the store,
the CLI and the numpy-only engine can all use it.
"""

from __future__ import annotations

import difflib
import errno
import importlib
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .errors import ConfigError, OutputError


# ------------------------------------------------------------------------ atomic files
def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows: directory handles cannot be opened this way
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: read once at import: os.umask can only be read by setting it, which is not thread-safe later
_UMASK = _current_umask()


def atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write a file so readers see either the old or the new one, never a mix.

    ``mkstemp`` creates its file private (0600); the result gets the permissions a plain
    ``open(path, "wb")`` would give instead, so stores, models and reports stay shareable.

    Args:
        path: destination file.
        write: called with the open temporary file; writes the complete new contents.

    Raises:
        OutputError: (an ``OSError`` too) when the file cannot be written, saying why and
            what to do; nothing is left behind and an old file at ``path`` is untouched.
    """
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise output_error(path, exc) from exc
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise output_error(path, exc) from exc
        raise
    fsync_dir(path.parent)


#: what to do about the usual reasons an output cannot be written
_WRITE_HINTS = {
    errno.ENOSPC: "free some disk space or write elsewhere",
    errno.EDQUOT: "free some of your disk quota or write elsewhere",
    errno.EFBIG: "it would exceed the file-size limit (see `ulimit -f`); raise the limit or "
    "write less",
    errno.EROFS: "the file system is read-only; choose a writable path",
    errno.EACCES: "you lack permission there; choose a writable path",
    errno.EPERM: "the operation is not permitted there; choose a writable path",
    errno.ENOENT: "check the path (a file or folder on the way does not exist)",
    errno.ENOTDIR: "a part of the path is a file, not a folder; choose another path",
    errno.EISDIR: "it is a folder; name a file",
    errno.EEXIST: "a file is in the way where a folder is needed; choose another path",
}


def os_error_message(exc: OSError, what: str = "") -> str:
    """One line for an ``OSError``: what failed, the system's reason, and what to do."""
    target = what or (f"use {exc.filename}" if exc.filename else "complete the operation")
    if exc.errno is None:  # numpy's short writes ("1536 requested and 992 written")
        hint = "the disk is full or the file-size limit (`ulimit -f`) was reached"
    else:
        hint = _WRITE_HINTS.get(exc.errno, "check the path and try again")
    return f"cannot {target}: {exc.strerror or exc}; {hint}"


def output_error(path: Path | str, exc: OSError) -> OutputError:
    """The :class:`OutputError` for an ``OSError`` raised while writing ``path``."""
    error = OutputError(os_error_message(exc, f"write {path}"))
    error.errno = exc.errno
    return error


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """:func:`atomic_write` of a complete byte string."""
    atomic_write(path, lambda handle: handle.write(data))


def write_output(path: Path | str, data: str | bytes) -> Path:
    """Write a command's output file atomically (text as UTF-8), creating missing folders.

    Raises:
        OutputError: one line saying why the file cannot be written and what to do.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(path, exc) from exc
    atomic_write_bytes(path, data.encode("utf-8") if isinstance(data, str) else data)
    return path


# ------------------------------------------------------------------------ distributed
def is_distributed() -> bool:
    """True when a torch.distributed process group is initialised."""
    import torch

    return torch.distributed.is_available() and torch.distributed.is_initialized()


def world() -> tuple[int, int]:
    """(world size, rank): (1, 0) outside distributed runs."""
    import torch

    if is_distributed():
        return torch.distributed.get_world_size(), torch.distributed.get_rank()
    return 1, 0


def is_rank_zero() -> bool:
    """True outside distributed runs and on rank 0 inside them (the rank that writes)."""
    return world()[1] == 0


# ------------------------------------------------------------------------ input checks
def positive_int(value: Any, what: str) -> int:
    """Validate a count of steps/snapshots (an ``int`` ≥ 1).

    Raises:
        ConfigError: naming ``what`` and the value received.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ConfigError(f"{what} must be a positive integer; got {value!r}")
    return int(value)


def check_step(value: Any, what: str = "step") -> int:
    """Validate a training step (an ``int`` ≥ 0: completed optimizer updates).

    Raises:
        ConfigError: naming ``what`` and the value received.
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigError(f"{what} must be an integer >= 0 (optimizer updates done); got {value!r}")
    return int(value)


def closest(name: str, valid: Iterable[str], cutoff: float = 0.6) -> str:
    """``" Did you mean 'x'?"`` for the closest valid name, or ``""`` when none is close: the
    one hint every "unknown name" message gives (config keys, models, forecasters)."""
    match = difflib.get_close_matches(str(name), list(valid), n=1, cutoff=cutoff)
    return f" Did you mean {match[0]!r}?" if match else ""


# ------------------------------------------------------------------------ lazy exports
def lazy_attributes(package: str, table: dict[str, str]) -> Callable[[str], Any]:
    """A module-level ``__getattr__`` that imports ``package.<table[name]>`` on first use.

    Packages export their heavy names this way, so importing the package stays cheap.
    """

    def __getattr__(name: str) -> Any:
        if name in table:
            return getattr(importlib.import_module(f"{package}.{table[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
