"""Small helpers shared across subpackages: atomic files, distributed ranks, input checks.

Kept free of heavy imports (torch is imported inside the functions that need it) so the store,
the CLI and the numpy-only engine can all use it.
"""

from __future__ import annotations

import difflib
import importlib
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .errors import ConfigError


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
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """:func:`atomic_write` of a complete byte string."""
    atomic_write(path, lambda handle: handle.write(data))


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
    """``"; did you mean 'x'?"`` for the closest valid name, or ``""`` when none is close."""
    match = difflib.get_close_matches(str(name), list(valid), n=1, cutoff=cutoff)
    return f"; did you mean {match[0]!r}?" if match else ""


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
