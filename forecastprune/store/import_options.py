"""What ``forecastprune store import`` adds to an NPZ: metadata, an LR schedule, and a report.

Runs recorded elsewhere often come as NPZ files without learning rates, so forecasters on the
cumulative-LR time axis (and ``auto``'s horizons) cannot use them. ``--lr-schedule`` supplies the
planned schedule (stored as metadata ``lr_schedule``, which the LR clock reads) and
``--metadata key=value`` any other key (``total_steps``, ``model``, ...). Arrays of the NPZ that
the store format has no place for are listed, so nothing is dropped silently.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError

#: the NPZ arrays an import keeps (see :mod:`forecastprune.store.npz`)
KEPT_ARRAYS = ("steps", "gammas", "layer_names", "layer_sizes", "lrs", "metadata", "fingerprint")


def parse_metadata_items(items: Sequence[str]) -> dict[str, Any]:
    """``["total_steps=660", "model=vgg"]`` → ``{"total_steps": 660, "model": "vgg"}``.

    A value that parses as JSON (a number, ``true``, a list, a quoted string) is kept as that;
    anything else is kept as the text.

    Raises:
        ConfigError: on an item without ``=`` or with an empty key.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"metadata item {item!r} is not key=value; write e.g. total_steps=660 or model=vgg"
            )
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = text
        out[key.strip()] = value
    return out


def parse_lr_schedule(text: str) -> list[list[float]]:
    """A planned LR schedule from ``[[0, 0.1], [3000, 0.01]]`` (JSON), ``0:0.1,3000:0.01``, or
    the path of a JSON file holding the list.

    Raises:
        ConfigError: saying which forms are accepted.
    """
    from ..core.lr_clock import check_lr_schedule

    source = text.strip()
    path = Path(source)
    if not source.startswith("[") and ":" not in source and path.is_file():
        source = path.read_text().strip()
    try:
        if source.startswith("["):
            schedule = json.loads(source)
        else:
            schedule = [pair.split(":") for pair in source.split(",") if pair.strip()]
    except ValueError as exc:
        raise ConfigError(f"--lr-schedule {text!r} is not valid JSON: {exc}") from None
    return check_lr_schedule(schedule, "--lr-schedule (e.g. 0:0.1,3000:0.01)")


def unkept_arrays(npz_path: str | Path) -> list[str]:
    """Names of the arrays in an NPZ that an import does not keep (empty if unreadable: the
    import itself then reports the problem)."""
    try:
        with np.load(npz_path, allow_pickle=False) as npz:
            names = list(npz.files)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, AttributeError):
        return []
    return sorted(set(names) - set(KEPT_ARRAYS))
