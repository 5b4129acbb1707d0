"""Building a whole store out of sight: a temporary sibling directory renamed into place.

Imports (NPZ, checkpoints) write into a staging directory next to the destination and rename it
over the destination only when they succeed, so an interrupted import never leaves a
half-written store under the requested name, and a failed one leaves an old store untouched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .._util import fsync_dir
from ..errors import StoreError
from . import format as fmt
from .lock import WriterLock

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
            written by another process.
    """
    out = Path(out)
    check_destination(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        yield staging
        _publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


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


def _publish(staging: Path, out: Path) -> None:
    """Move ``staging`` to ``out``; an old store there is renamed away first, then deleted."""
    trash = None
    if out.exists():
        trash = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
        os.replace(out, trash / "store")
    os.replace(staging, out)
    fsync_dir(out.parent)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)
