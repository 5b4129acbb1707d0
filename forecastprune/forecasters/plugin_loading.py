"""Plugins: forecasters from ``.py`` files and from installed distributions' entry points.

Both feed the one table in :mod:`.registry`. While a plugin imports, its registrations are
tagged with their source (``"file: <path>"``, ``"entry point: <dist>"``). A plugin that fails to
import or register is recorded (:func:`~.registry.broken_plugins`) and announced with a
:class:`PluginWarning`; the other forecasters keep working.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import inspect
import sys
import warnings
from pathlib import Path
from typing import Any

from ..errors import ForecasterError
from ..isolation import time_limit
from . import registry
from .base import Forecaster

ENTRY_POINT_GROUP = "forecastprune.forecasters"


class PluginWarning(UserWarning):
    """A plugin could not be loaded; the rest of the registry still works."""


def load_plugins(path: str | Path, timeout: float | None = None) -> list[str]:
    """Import a plugin ``.py`` file, or every ``.py`` file in a folder (not recursive).

    Each file is imported under a unique module name, so two plugins called ``plugin.py`` in
    different folders do not collide; loading the same file twice is a no-op. Forecasters the
    files register get the source ``"file: <path>"``. A file that fails to import is reported
    (warning + :func:`~.registry.broken_plugins`) and the others still load.

    Args:
        path: a ``.py`` file or a folder.
        timeout: seconds each file may take to import (None: no limit); see
            :func:`forecastprune.isolation.time_limit`.

    Returns:
        Names registered by the files loaded in this call (in load order).

    Raises:
        ForecasterError: the path does not exist or is not a ``.py`` file or folder, or a file
            did not finish importing within ``timeout``.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise ForecasterError(
            f"plugin path {str(path)!r} does not exist; pass a plugin .py file or a folder of them"
        )
    if root.is_dir():
        files = sorted(p for p in root.glob("*.py") if not p.name.startswith("_"))
    elif root.is_file() and root.suffix == ".py":
        files = [root]
    else:
        raise ForecasterError(
            f"plugin path {str(path)!r} is neither a .py file nor a folder; pass a plugin "
            "file or a folder of them"
        )
    added: list[str] = []
    for file in files:
        with time_limit(timeout, f"plugin {str(file)!r} (importing it)"):
            added += _load_file(file.resolve())
    return added


def _load_file(file: Path) -> list[str]:
    key = str(file)
    if key in registry._STATE.loaded_files:
        return []
    before = registry._STATE.copy()
    module_name = f"forecastprune_plugin_{file.stem}_{hashlib.sha1(key.encode()).hexdigest()[:10]}"
    try:
        with registry.loading(f"file: {file}"):
            spec = importlib.util.spec_from_file_location(module_name, file)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot build an import spec for {file}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module  # pickling classes needs the module findable
            spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - a plugin may fail in any way; report, go on
        _roll_back(module_name, before)
        _report_broken(key, f"file: {file}", exc)
        return []
    except BaseException:  # interrupted (time limit, Ctrl-C): not loaded, not half-loaded
        _roll_back(module_name, before)
        raise
    added = [name for name in registry._STATE.classes if name not in before.classes]
    registry._STATE.loaded_files[key] = added
    return added


def _roll_back(module_name: str, before: registry._State) -> None:
    """Undo what a plugin that failed midway registered: all of its file or nothing."""
    sys.modules.pop(module_name, None)
    registry._STATE.classes = before.classes
    registry._STATE.sources = before.sources
    registry._STATE.prefixes = before.prefixes


def discover_entry_points(force: bool = False) -> None:
    """Load the entry points of group ``forecastprune.forecasters`` (once, unless forced)."""
    if registry._STATE.entry_points_done and not force:
        return
    registry._STATE.entry_points_done = True
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(entry_point.dist, "name", None) or "unknown distribution"
        source = f"entry point: {dist}"
        try:
            with registry.loading(source):
                _register_entry_point(entry_point.name, entry_point.load())
        except Exception as exc:  # noqa: BLE001 - report the plugin, keep the others
            _report_broken(entry_point.name, source, exc)


def _register_entry_point(name: str, target: Any) -> None:
    if inspect.isclass(target) and issubclass(target, Forecaster):
        registry.register_forecaster(name)(target)
    elif not inspect.ismodule(target):  # a module registers its classes on import
        raise ForecasterError(
            f"entry point {name!r} must name a Forecaster subclass or a module; got {target!r}"
        )


def _report_broken(name: str, source: str, exc: BaseException) -> None:
    error = f"{type(exc).__name__}: {exc}"
    registry._STATE.broken[name] = (source, error)
    warnings.warn(
        f"forecaster plugin {name!r} ({source}) failed to load: {error}",
        PluginWarning,
        stacklevel=3,
    )


registry.set_discovery(discover_entry_points)
