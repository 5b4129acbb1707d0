"""Trajectories in and out as plain NPZ files: :func:`export_npz` and :func:`import_npz`.

NPZ arrays (what :func:`export_npz` writes and :func:`import_npz` reads):

* ``steps`` (T,) integers, strictly increasing;
* ``gammas`` (T, C) raw signed γ, finite;
* ``layer_names`` (L,) strings and ``layer_sizes`` (L,) positive integers summing to C;
* optional ``lrs`` (T,) learning rates (NaN where unknown), ``metadata`` (a JSON string) and
  ``fingerprint`` (a string).

Files are read with ``allow_pickle=False``: an NPZ from elsewhere cannot run code.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from .._util import atomic_write
from ..core.layout import ChannelLayout
from ..errors import ForecastPruneError, StoreError
from . import format as fmt
from .staging import DEFAULT_IMPORT_FLUSH, staged_store_dir
from .store import GammaTrajectoryStore, PathLike


def export_npz(
    store: GammaTrajectoryStore | PathLike, path: PathLike, overwrite: bool = False
) -> Path:
    """Write a store's trajectories to a plain NPZ file (atomically).

    Args:
        store: an open store or the path of one.
        path: the ``.npz`` file to write.
        overwrite: replace an existing file.

    Returns:
        The written path.

    Raises:
        StoreError: if ``path`` exists and ``overwrite`` is false, or the store is damaged or
            empty.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise StoreError(f"{path} already exists; pass overwrite=True (CLI: --overwrite)")
    if path.is_dir():
        raise StoreError(f"cannot write an NPZ file to {path}: it is a directory")
    if not isinstance(store, GammaTrajectoryStore):
        with GammaTrajectoryStore.open(store) as opened:
            return export_npz(opened, path, overwrite)
    if len(store) == 0:  # import_npz (rightly) refuses an NPZ without snapshots
        raise StoreError(
            f"store {store.path} has no snapshots; there is nothing to export (record some first)"
        )
    steps, gammas = store.history()
    arrays = {
        "steps": steps,
        "gammas": gammas,
        "layer_names": np.array(store.layout.names, dtype=str),
        "layer_sizes": np.array(store.layout.sizes, dtype=np.int64),
        "lrs": store.lrs,
        "metadata": np.array(json.dumps(store.metadata)),
    }
    if store.fingerprint is not None:
        arrays["fingerprint"] = np.array(store.fingerprint)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda handle: np.savez(handle, **arrays))
    return path


def import_npz(
    npz_path: PathLike,
    store_path: PathLike,
    *,
    metadata: dict[str, Any] | None = None,
    fingerprint: str | None = None,
    flush_every: int = DEFAULT_IMPORT_FLUSH,
    overwrite: bool = False,
    dtype: str = "float32",
) -> GammaTrajectoryStore:
    """Build a store from an NPZ file of trajectories recorded elsewhere.

    Args:
        npz_path: the NPZ file (arrays described in the module docstring).
        store_path: the store directory to create.
        metadata: extra metadata; overrides keys of the file's own ``metadata``.
        fingerprint: overrides the file's ``fingerprint``.
        flush_every: rows per segment of the new store.
        overwrite: replace an existing store at ``store_path``.
        dtype: value dtype of the new store (``float32`` or ``float16``).

    Returns:
        The new store, open read-only.

    Raises:
        StoreError: naming the file and the problem if any array is missing or malformed.
    """
    arrays = _read_npz(Path(npz_path))
    data = _validate_npz(arrays, Path(npz_path))
    merged = {**data["metadata"], **(metadata or {})}
    with staged_store_dir(store_path, overwrite) as staging:
        store = GammaTrajectoryStore.create(
            staging,
            data["layout"],
            metadata=merged,
            fingerprint=fingerprint if fingerprint is not None else data["fingerprint"],
            flush_every=flush_every,
            dtype=dtype,
        )
        with store:
            for step, row, lr in zip(data["steps"], data["gammas"], data["lrs"]):
                store.append(int(step), row, None if np.isnan(lr) else float(lr))
    return GammaTrajectoryStore.open(store_path)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise StoreError(f"no NPZ file at {path}")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise StoreError(f"{path} holds a single array; expected an NPZ archive of arrays")
        with loaded as npz:
            return {key: npz[key] for key in npz.files}
    except StoreError:
        raise
    except (*fmt.NPY_READ_ERRORS, zipfile.BadZipFile) as exc:
        if not zipfile.is_zipfile(path):  # numpy calls any non-zip, non-.npy file "pickled"
            raise StoreError(
                f"{path} is not an NPZ file (a zip archive of .npy arrays, as "
                "np.savez writes); pass the file `store export` or np.savez made"
            ) from exc
        raise StoreError(
            f"cannot read {path} as an NPZ archive of plain arrays (object arrays are not "
            f"allowed): {exc}"
        ) from exc


def _validate_npz(arrays: dict[str, np.ndarray], path: Path) -> dict[str, Any]:
    def fail(problem: str) -> StoreError:
        return StoreError(f"bad trajectory NPZ {path}: {problem}")

    missing = [k for k in ("steps", "gammas", "layer_names", "layer_sizes") if k not in arrays]
    if missing:
        raise fail(
            f"missing arrays {missing} (it has {sorted(arrays)}); expected steps (T,), "
            "gammas (T, C), layer_names (L,), layer_sizes (L,)"
        )
    steps, gammas = arrays["steps"], arrays["gammas"]
    if gammas.ndim != 2 or gammas.shape[0] == 0 or not _is_real(gammas):
        raise fail(
            f"gammas must be a non-empty real (T, C) array, got {gammas.dtype} {gammas.shape}"
        )
    if not np.isfinite(gammas).all():
        raise fail(f"gammas holds {int((~np.isfinite(gammas)).sum())} NaN/Inf values")
    steps = _integer_vector(steps, "steps", gammas.shape[0], fail)
    if np.any(np.diff(steps) <= 0):
        at = int(np.flatnonzero(np.diff(steps) <= 0)[0])
        raise fail(f"steps must be strictly increasing; step {steps[at + 1]} follows {steps[at]}")
    if steps[0] < 0:
        raise fail(f"steps count training steps from 0; the first is {steps[0]}")
    layout = _npz_layout(arrays, gammas.shape[1], fail)
    lrs = arrays.get("lrs")
    if lrs is None:
        lrs = np.full(len(steps), np.nan)
    elif lrs.shape != steps.shape or not _is_real(lrs) or np.isinf(lrs).any():
        raise fail(
            f"lrs must be a real (T,) = {steps.shape} array without Inf (NaN = unknown), "
            f"got {lrs.dtype} {lrs.shape}"
        )
    return {
        "steps": steps,
        "gammas": gammas,
        "layout": layout,
        "lrs": lrs.astype(np.float64),
        "metadata": _npz_metadata(arrays, fail),
        "fingerprint": _npz_string(arrays, "fingerprint", fail),
    }


def _is_real(array: np.ndarray) -> bool:
    return array.dtype.kind in "iuf"


def _integer_vector(array: np.ndarray, name: str, length: int, fail: Any) -> np.ndarray:
    if array.shape != (length,) or not _is_real(array):
        raise fail(f"{name} must be a real ({length},) array, got {array.dtype} {array.shape}")
    whole = np.isfinite(array).all() and (array == np.round(array)).all()
    if array.dtype.kind == "f" and not whole:
        raise fail(f"{name} must hold whole numbers, got {array[:5]}...")
    return array.astype(np.int64)


def _npz_layout(arrays: dict[str, np.ndarray], width: int, fail: Any) -> ChannelLayout:
    names, sizes = arrays["layer_names"], arrays["layer_sizes"]
    if names.ndim != 1 or names.dtype.kind not in "US":
        raise fail(f"layer_names must be a 1-D string array, got {names.dtype} {names.shape}")
    sizes = _integer_vector(sizes, "layer_sizes", len(names), fail)
    if sizes.sum() != width:
        raise fail(f"layer_sizes sum to {int(sizes.sum())} but gammas has {width} columns")
    decoded = [n.decode() if isinstance(n, bytes) else str(n) for n in names.tolist()]
    try:
        return ChannelLayout.from_pairs(zip(decoded, sizes.tolist()))
    except ForecastPruneError as exc:
        raise fail(str(exc)) from exc


def _npz_string(arrays: dict[str, np.ndarray], key: str, fail: Any) -> str | None:
    if key not in arrays:
        return None
    value = arrays[key]
    if value.ndim != 0 or value.dtype.kind not in "US":
        raise fail(f"{key} must be a 0-d string array, got {value.dtype} {value.shape}")
    item = value.item()
    return item.decode() if isinstance(item, bytes) else str(item)


def _npz_metadata(arrays: dict[str, np.ndarray], fail: Any) -> dict[str, Any]:
    text = _npz_string(arrays, "metadata", fail)
    if text is None:
        return {}
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as exc:
        raise fail(f"metadata is not valid JSON: {exc}") from exc
    if not isinstance(metadata, dict):
        raise fail(f"metadata must be a JSON object, got {type(metadata).__name__}")
    return metadata
