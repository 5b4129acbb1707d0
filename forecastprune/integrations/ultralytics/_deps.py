"""Importing ultralytics on demand, and running it without network access.

ultralytics is AGPL-3.0 and large, so forecastprune never imports it at module level: only the
functions of this integration that need it call :func:`import_ultralytics`.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator
from types import ModuleType

INSTALL_HINT = 'pip install "forecastprune[ultralytics]"'


def import_ultralytics() -> ModuleType:
    """Import ultralytics, first making torchvision importable if its compiled ops cannot load.

    Returns:
        The ``ultralytics`` module.

    Raises:
        ImportError: when ultralytics (or a dependency) is missing, with the install command.
    """
    from ..._torchvision_ops import ensure_torchvision_ops

    ensure_torchvision_ops()
    try:
        return importlib.import_module("ultralytics")
    except ImportError as exc:
        raise ImportError(
            f"the ultralytics integration needs ultralytics; install it with {INSTALL_HINT} "
            f"(import failed: {exc})"
        ) from exc


@contextlib.contextmanager
def offline() -> Iterator[None]:
    """Keep ultralytics from reaching the network inside the block.

    ultralytics checks for connectivity and sends usage events unless ``YOLO_OFFLINE`` is set
    (it reads the variable when first imported, so the block sets it before importing), and
    its dataset check fetches a plot font (``Arial.ttf``) from its asset server even when
    plots are off; inside the block font lookups only search the local machine (plots fall
    back to PIL's default font). Restores everything on exit.
    """
    previous = os.environ.get("YOLO_OFFLINE")
    os.environ["YOLO_OFFLINE"] = "1"
    import_ultralytics()
    # every module that imported check_font by name gets the local lookup
    users = [
        importlib.import_module(name)
        for name in (
            "ultralytics.utils.checks",
            "ultralytics.data.utils",
            "ultralytics.utils.plotting",
        )
    ]
    originals = [module.check_font for module in users]
    for module in users:
        module.check_font = _local_font
    try:
        yield
    finally:
        for module, original in zip(users, originals):
            module.check_font = original
        if previous is None:
            os.environ.pop("YOLO_OFFLINE", None)
        else:
            os.environ["YOLO_OFFLINE"] = previous


def _local_font(font: str = "Arial.ttf") -> str | None:
    """ultralytics' font lookup without the download: the user config dir, then matplotlib's."""
    from pathlib import Path

    from matplotlib import font_manager
    from ultralytics.utils import USER_CONFIG_DIR

    local = USER_CONFIG_DIR / Path(font).name
    if local.exists():
        return str(local)
    matches = [f.fname for f in font_manager.fontManager.ttflist if font in f.fname]
    return matches[0] if matches else None
