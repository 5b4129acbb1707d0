"""A store from a series of state-dict checkpoints, one snapshot per file.

Checkpoints are loaded with ``torch.load(..., weights_only=True)``: a pickled ``nn.Module`` is
refused with a message saying how to save a state dict instead.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.layout import ChannelLayout
from ..errors import StoreError
from .staging import DEFAULT_IMPORT_FLUSH, staged_store_dir
from .store import GammaTrajectoryStore, PathLike

_BN_BUFFERS = ("bias", "running_mean", "running_var")


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
    with (
        staged_store_dir(out, overwrite) as staging,
        GammaTrajectoryStore.create(
            staging,
            layout,
            metadata={**provenance, **(metadata or {})},
            fingerprint=fingerprint,
            flush_every=flush_every,
            dtype=dtype,
        ) as store,
    ):
        for step, file in ordered:  # one checkpoint in memory at a time
            state, lr = load_checkpoint(file)
            store.append(step, _gamma_row(state, layout, file), lr)
    return GammaTrajectoryStore.open(out)


def _checkpoint_steps(files: list[Path], steps: Sequence[int] | None, pattern: str) -> list[int]:
    if steps is not None:
        if len(steps) != len(files):
            raise StoreError(
                f"got {len(steps)} steps for {len(files)} checkpoint files; pass one step per file"
            )
        return [int(s) for s in steps]
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise StoreError(
            f"step pattern {pattern!r} is not a valid regular expression: {exc}"
        ) from None
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
            raise StoreError(
                f"step pattern {pattern!r} matched {text!r} in {file.name!r}, "
                "which is not an integer"
            ) from None
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
        raise StoreError(
            f"checkpoint {file} is not a state dict (nor a dict with one under "
            "'state_dict' or 'model')"
        )
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
        raise StoreError(
            f"checkpoint {file} has no BatchNorm layers (prefixes with weight, "
            "bias, running_mean and running_var)"
        )
    return found


def _select_layers(
    found: list[tuple[str, int]], layers: Sequence[str] | None, file: Path
) -> ChannelLayout:
    available = dict(found)
    if layers is None:
        return ChannelLayout.from_pairs(found)
    unknown = [name for name in layers if name not in available]
    if unknown:
        raise StoreError(f"checkpoint {file} has no BN layers {unknown}; it has {list(available)}")
    return ChannelLayout.from_pairs((name, available[name]) for name in layers)


def _gamma_row(state: Mapping[str, Any], layout: ChannelLayout, file: Path) -> np.ndarray:
    parts = []
    for name, size in layout.layers:
        weight = state.get(f"{name}.weight")
        if getattr(weight, "shape", None) != (size,):
            got = None if weight is None else tuple(weight.shape)
            raise StoreError(
                f"checkpoint {file}: BN layer {name!r} should have {size} channels "
                f"like the first checkpoint, got {got}; all checkpoints must come "
                "from the same architecture"
            )
        parts.append(weight.detach().float().numpy())
    return np.concatenate(parts)
