"""Bringing trajectories in and out: plain NPZ files and series of state-dict checkpoints.

NPZ arrays (what :func:`export_npz` writes and :func:`import_npz` reads):

* ``steps`` (T,) integers, strictly increasing;
* ``gammas`` (T, C) raw signed γ, finite;
* ``layer_names`` (L,) strings and ``layer_sizes`` (L,) positive integers summing to C;
* optional ``lrs`` (T,) learning rates (NaN where unknown), ``metadata`` (a JSON string) and
  ``fingerprint`` (a string).

Whole stores are built in a temporary sibling directory and renamed into place at the end, so
an interrupted import never leaves a half-written store under the requested name.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from .._util import atomic_write, fsync_dir
from ..errors import ForecastPruneError, StoreError
from .layout import ChannelLayout
from . import format as fmt
from .lock import WriterLock
from .store import GammaTrajectoryStore, PathLike

#: rows per segment of imported stores unless the caller chooses otherwise
DEFAULT_IMPORT_FLUSH = 256
_BN_BUFFERS = ("bias", "running_mean", "running_var")


# ---------------------------------------------------------------- staging
@contextmanager
def staged_store_dir(out: PathLike, overwrite: bool) -> Iterator[Path]:
    """Yield an empty temporary directory that replaces ``out`` when the block succeeds.

    Args:
        out: final store path.
        overwrite: allow replacing an existing store at ``out``.

    Raises:
        StoreError: if ``out`` is taken (and not ``overwrite``), is not a store, or is being
            written by another process.
    """
    out = Path(out)
    _check_destination(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        yield staging
        _publish(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _check_destination(out: Path, overwrite: bool) -> None:
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return
    if not overwrite:
        raise StoreError(
            f"{out} already exists; pass overwrite=True (CLI: --overwrite) or choose another path"
        )
    if not (out / fmt.MANIFEST_NAME).is_file():
        raise StoreError(
            f"refusing to overwrite {out}: it is not a γ trajectory store; remove it yourself "
            "or choose another path"
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


# ---------------------------------------------------------------- NPZ
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
        StoreError: if ``path`` exists and ``overwrite`` is false, or the store is damaged.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise StoreError(f"{path} already exists; pass overwrite=True (CLI: --overwrite)")
    if path.is_dir():
        raise StoreError(f"cannot write an NPZ file to {path}: it is a directory")
    if not isinstance(store, GammaTrajectoryStore):
        with GammaTrajectoryStore.open(store) as opened:
            return export_npz(opened, path, overwrite)
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
            staging, data["layout"], metadata=merged,
            fingerprint=fingerprint if fingerprint is not None else data["fingerprint"],
            flush_every=flush_every, dtype=dtype,
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
            raise StoreError(f"{path} is not an NPZ file (a zip archive of .npy arrays, as "
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
        raise fail(f"gammas must be a non-empty real (T, C) array, got {gammas.dtype} "
                   f"{gammas.shape}")
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
        raise fail(f"lrs must be a real (T,) = {steps.shape} array without Inf (NaN = unknown), "
                   f"got {lrs.dtype} {lrs.shape}")
    return {
        "steps": steps, "gammas": gammas, "layout": layout, "lrs": lrs.astype(np.float64),
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


# ---------------------------------------------------------------- checkpoints
def store_from_checkpoints(
    paths: Sequence[PathLike],
    out: PathLike,
    steps: Sequence[int] | None = None,
    step_pattern: str = r"(\d+)",
    layers: Sequence[str] | None = None,
    *,
    metadata: dict[str, Any] | None = None,
    fingerprint: str | None = None,
    overwrite: bool = False,
    dtype: str = "float32",
    flush_every: int = DEFAULT_IMPORT_FLUSH,
) -> GammaTrajectoryStore:
    """Build a store from a series of state-dict checkpoints, one snapshot per file.

    Each file is loaded with ``torch.load(..., map_location="cpu", weights_only=True)`` and may
    be a state dict or a dict holding one under ``"state_dict"`` or ``"model"``. BN layers are
    the prefixes having ``weight``, ``bias``, ``running_mean`` and ``running_var``. If the dict
    also holds an ``"optimizer"`` state, its first parameter group's LR is recorded.

    Args:
        paths: checkpoint files.
        out: the store directory to create.
        steps: the step of each file, in the order of ``paths`` (default: parsed from names).
        step_pattern: regex whose last match in a file's stem is its step (group 1 if any).
        layers: BN layers to record, in order (default: all, in state-dict order).
        metadata: extra metadata for the store.
        fingerprint: optional model fingerprint.
        overwrite: replace an existing store at ``out``.
        dtype: value dtype of the new store.
        flush_every: rows per segment of the new store.

    Returns:
        The new store, open read-only.

    Raises:
        StoreError: on an unreadable file, a name without a step, duplicate steps, no BN layers,
            or checkpoints whose BN layers disagree.
    """
    files = [Path(p) for p in paths]
    if not files:
        raise StoreError("no checkpoint files given; pass at least one .pt state-dict file")
    ordered = sorted(zip(_checkpoint_steps(files, steps, step_pattern), files))
    for (s1, f1), (s2, f2) in zip(ordered, ordered[1:]):
        if s1 == s2:
            raise StoreError(
                f"checkpoints {f1} and {f2} both have step {s1}; pass steps explicitly"
            )
    first = ordered[0][1]
    layout = _select_layers(_bn_layers(load_checkpoint(first)[0], first), layers, first)
    provenance = {"source": "checkpoints", "checkpoints": [f.name for _, f in ordered]}
    with staged_store_dir(out, overwrite) as staging:
        with GammaTrajectoryStore.create(
            staging, layout, metadata={**provenance, **(metadata or {})},
            fingerprint=fingerprint, flush_every=flush_every, dtype=dtype,
        ) as store:
            for step, file in ordered:  # one checkpoint in memory at a time
                state, lr = load_checkpoint(file)
                store.append(step, _gamma_row(state, layout, file), lr)
    return GammaTrajectoryStore.open(out)


def _checkpoint_steps(
    files: list[Path], steps: Sequence[int] | None, pattern: str
) -> list[int]:
    if steps is not None:
        if len(steps) != len(files):
            raise StoreError(f"got {len(steps)} steps for {len(files)} checkpoint files; "
                             "pass one step per file")
        return [int(s) for s in steps]
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise StoreError(
            f"step pattern {pattern!r} is not a valid regular expression: {exc}") from None
    found = []
    for file in files:
        matches = list(regex.finditer(file.stem))
        if not matches:
            raise StoreError(
                f"cannot find a step in the checkpoint name {file.name!r} with pattern "
                f"{pattern!r}; pass steps explicitly (CLI: --steps 100,200,...)"
            )
        last = matches[-1]
        text = last.group(1) if regex.groups else last.group(0)
        try:
            found.append(int(text))
        except (TypeError, ValueError):
            raise StoreError(f"step pattern {pattern!r} matched {text!r} in {file.name!r}, "
                             "which is not an integer") from None
    return found


def load_checkpoint(file: Path) -> tuple[Mapping[str, Any], float | None]:
    """Load a state-dict checkpoint safely (``weights_only=True``).

    Args:
        file: a ``.pt`` file holding a state dict, or a dict with one under ``"state_dict"`` or
            ``"model"`` (and optionally an ``"optimizer"`` state).

    Returns:
        The state dict and the optimizer's learning rate when the checkpoint holds one.

    Raises:
        StoreError: naming the file, when it is missing, unsafe to load or not a state dict.
    """
    import torch  # heavy; only this path needs it

    if not file.is_file():
        raise StoreError(f"checkpoint {file} does not exist")
    try:
        obj = torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise StoreError(
            f"cannot load checkpoint {file} with torch.load(weights_only=True): it holds objects "
            "other than tensors and plain containers (e.g. a pickled nn.Module); save "
            "model.state_dict() instead"
        ) from exc
    except Exception as exc:  # torch raises many types for truncated or foreign files
        first_line = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip().split("\n")[0]
        raise StoreError(
            f"cannot load checkpoint {file} with torch.load(weights_only=True): "
            f"{type(exc).__name__}: {first_line[:200]}"
        ) from exc
    lr = None
    if isinstance(obj, Mapping):
        lr = _optimizer_lr(obj.get("optimizer"))
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if not isinstance(obj, Mapping) or not any(torch.is_tensor(v) for v in obj.values()):
        raise StoreError(f"checkpoint {file} is not a state dict (nor a dict with one under "
                         "'state_dict' or 'model')")
    return obj, lr


def _optimizer_lr(state: Any) -> float | None:
    try:
        lr = float(state["param_groups"][0]["lr"])
    except (TypeError, KeyError, IndexError, ValueError):
        return None
    return lr if np.isfinite(lr) else None


def _bn_layers(state: Mapping[str, Any], file: Path) -> list[tuple[str, int]]:
    found = []
    for key, tensor in state.items():
        if not key.endswith(".weight") or getattr(tensor, "ndim", None) != 1:
            continue
        prefix = key[: -len(".weight")]
        buffers = [state.get(f"{prefix}.{b}") for b in _BN_BUFFERS]
        if all(getattr(b, "shape", None) == tensor.shape for b in buffers):
            found.append((prefix, int(tensor.shape[0])))
    if not found:
        raise StoreError(f"checkpoint {file} has no BatchNorm layers (prefixes with weight, "
                         "bias, running_mean and running_var)")
    return found


def _select_layers(
    found: list[tuple[str, int]], layers: Sequence[str] | None, file: Path
) -> ChannelLayout:
    available = dict(found)
    if layers is None:
        return ChannelLayout.from_pairs(found)
    unknown = [name for name in layers if name not in available]
    if unknown:
        raise StoreError(f"checkpoint {file} has no BN layers {unknown}; it has "
                         f"{list(available)}")
    return ChannelLayout.from_pairs((name, available[name]) for name in layers)


def _gamma_row(state: Mapping[str, Any], layout: ChannelLayout, file: Path) -> np.ndarray:
    parts = []
    for name, size in layout.layers:
        weight = state.get(f"{name}.weight")
        if getattr(weight, "shape", None) != (size,):
            got = None if weight is None else tuple(weight.shape)
            raise StoreError(f"checkpoint {file}: BN layer {name!r} should have {size} channels "
                             f"like the first checkpoint, got {got}; all checkpoints must come "
                             "from the same architecture")
        parts.append(weight.detach().float().numpy())
    return np.concatenate(parts)
