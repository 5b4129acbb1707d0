"""Save and load pruned models without pickling modules.

A pruned model's architecture is no longer what its builder makes, so a bare state dict cannot
be loaded into a fresh model. The file therefore holds, next to the state dict, a small JSON
**channel plan**: the zoo builder's name and keyword arguments, the kept channel indices of every
cut BN (relative to the model as first built), the example input shape, whether β was folded
and the residual blocks removed whole (if any). Loading rebuilds the model from the zoo, replays
the surgery with that plan — blocks first, then channels of the BNs that remain, which gives the
same architecture whichever order they were cut in, including any bias the compensation
created — and then loads the weights.

File layout (one ``torch.save`` of plain containers, read back with ``weights_only=True``, so
loading never unpickles arbitrary objects)::

    {"format": "forecastprune.pruned-model", "version": 1 (2 when blocks were removed),
     "plan": "<JSON text>", "state_dict": {name: tensor, ...}}

Writes are atomic (temp file + ``os.replace``). Models from outside the zoo can be saved once
their builder is registered with :func:`forecastprune.zoo.register_model`.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .._util import atomic_write_bytes
from ..core.bn_layers import unwrap_model
from ..errors import PruningError
from .surgery import keep_masks, prune_model, surgery_record

FORMAT_TAG = "forecastprune.pruned-model"
#: bumped whenever an older reader would misread a newer file (2: the plan lists removed blocks;
#: files without removed blocks are still written as 1)
FORMAT_VERSION = 2


def save_pruned(
    model: nn.Module,
    path: str | Path,
    *,
    builder: str,
    kwargs: Mapping[str, Any] | None = None,
    keep: Mapping[str, Any] | None = None,
    input_shape: tuple[int, ...] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a pruned model as its state dict plus the channel plan that rebuilds it.

    Args:
        model: a model returned by :func:`~forecastprune.engine.surgery.prune_model`.
        path: the output file (``.pt``).
        builder: the zoo name the unpruned model is built with (``build_model(builder, ...)``).
        kwargs: the builder's keyword arguments (JSON-able).
        keep: per-layer keep masks relative to the model as built; by default the model's
            surgery record (which composes repeated cuts).
        input_shape: the example input shape for replaying the surgery; by default the one
            the model was cut with.
        overwrite: replace an existing file.

    Returns:
        The path written.

    Raises:
        PruningError: if the plan is incomplete (no record and no ``keep``/``input_shape``),
            not JSON-able, or the file exists and ``overwrite`` is false.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise PruningError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    model = unwrap_model(model)
    plan = _plan(model, builder, kwargs, keep, input_shape)
    try:
        text = json.dumps(plan, sort_keys=True)
    except TypeError as exc:
        raise PruningError(
            f"the builder kwargs must be JSON-able (numbers, strings, lists, dicts); {exc}"
        ) from exc
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    buffer = io.BytesIO()
    version = 2 if plan.get("blocks") else 1
    torch.save(
        {"format": FORMAT_TAG, "version": version, "plan": text, "state_dict": state}, buffer
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_pruned(path: str | Path) -> nn.Module:
    """Rebuild a pruned model saved by :func:`save_pruned`.

    Args:
        path: the file.

    Returns:
        The pruned model with its saved weights (in train mode, as freshly built models are).

    Raises:
        PruningError: if the file is missing, not a pruned-model file, of a newer version, or
            its weights do not fit the replayed architecture.
    """
    raw = _read(Path(path))
    plan = json.loads(raw["plan"])
    from ..zoo import build_model  # the zoo imports model modules lazily

    model = build_model(plan["builder"], **plan["kwargs"])
    pruned = replay(model, plan, where=str(path))
    try:
        pruned.load_state_dict(raw["state_dict"], strict=True)
    except RuntimeError as exc:
        raise PruningError(
            f"{path}: the saved weights do not fit the model rebuilt from its plan "
            f"({str(exc).splitlines()[0]}); was the zoo model {plan['builder']!r} changed?"
        ) from exc
    return pruned


def replay(model: nn.Module, plan: Mapping[str, Any], where: str = "the channel plan") -> nn.Module:
    """Cut a freshly built ``model`` as ``plan`` says: removed blocks first, then channels.

    Args:
        model: the model as its builder makes it.
        plan: a channel plan as :func:`save_pruned` writes it (``blocks`` optional).
        where: what the plan came from, for messages.

    Returns:
        The cut model (weights as built; load the saved state dict into it).
    """
    example = torch.zeros(plan["input_shape"])
    blocks = plan.get("blocks") or []
    if blocks:
        if not isinstance(blocks, list) or not all(isinstance(b, str) for b in blocks):
            raise PruningError(
                f"{where}: the plan's removed blocks must be a list of module "
                "names; it is damaged, save the model again"
            )
        from .block_surgery import (
            prune_blocks,  # blocks import the tracer: only when needed
        )

        model = prune_blocks(model, blocks, example, verify=False)
    masks = kept_masks(plan["keep"], plan["sizes"], where=where)
    # BNs cut before their block was removed went with the block
    masks = {
        name: mask
        for name, mask in masks.items()
        if not any(name.startswith(block + ".") for block in blocks)
    }
    if not masks:
        return model
    return prune_model(model, masks, example, compensate=plan["compensated"])


def kept_masks(
    keep: Mapping[str, Any], sizes: Mapping[str, int], where: str = "the channel plan"
) -> dict[str, np.ndarray]:
    """Keep masks from a channel plan's kept indices and layer widths, every index checked.

    Args:
        keep: BN layer -> indices of the channels kept (relative to the model as built).
        sizes: BN layer -> its width as built.
        where: what the plan came from, for messages (a file, a checkpoint).

    Returns:
        BN layer -> (width,) bool mask, True for kept channels.

    Raises:
        PruningError: naming the layer and the index when an index is not a whole number in
            ``[0, size)`` (numpy would raise a bare IndexError, or wrap a negative one), or a
            layer has kept indices but no size.
    """
    if not isinstance(sizes, Mapping) or not isinstance(keep, Mapping):
        raise PruningError(
            f"{where}: the channel plan's sizes and keep must be mappings layer "
            "-> value; it is damaged, save the model again"
        )
    masks = {}
    for name, size in sizes.items():
        indices = keep.get(name)
        if (
            not isinstance(indices, (list, tuple, np.ndarray))
            or isinstance(size, bool)
            or not isinstance(size, (int, np.integer))
            or size < 1
        ):
            raise PruningError(
                f"{where}: the channel plan gives layer {name!r} size {size!r} "
                f"and kept channels {indices!r:.80}; expected a positive size and "
                "a list of indices; it is damaged, save the model again"
            )
        mask = np.zeros(int(size), dtype=bool)
        for index in list(indices):
            if (
                isinstance(index, bool)
                or not isinstance(index, (int, np.integer))
                or not 0 <= index < size
            ):
                raise PruningError(
                    f"{where}: the channel plan keeps channel {index!r} of layer {name!r}, which "
                    f"has {size} channels (valid: 0..{int(size) - 1}); it is damaged or was "
                    "edited, save the model again"
                )
            mask[int(index)] = True
        masks[name] = mask
    return masks


def _plan(
    model: nn.Module,
    builder: str,
    kwargs: Mapping[str, Any] | None,
    keep: Mapping[str, Any] | None,
    input_shape: tuple[int, ...] | None,
) -> dict[str, Any]:
    """The JSON channel plan of a pruned model."""
    record = surgery_record(model)
    if keep is not None:
        masks = keep_masks(keep)
        kept = {n: np.flatnonzero(m) for n, m in masks.items()}
        sizes = {n: int(m.size) for n, m in masks.items()}
    elif record is not None:
        kept, sizes = record.keep, record.sizes
    else:
        raise PruningError(
            "the model carries no surgery record; pass keep= (the masks it was "
            "pruned with) or save a model returned by prune_model"
        )
    shapes = record.input_shapes if record is not None else ()
    shape = tuple(input_shape) if input_shape is not None else (shapes[0] if shapes else None)
    if shape is None:
        raise PruningError("no example input shape known; pass input_shape=(1, C, H, W)")
    return {
        "builder": str(builder),
        "kwargs": dict(kwargs or {}),
        "keep": {n: [int(i) for i in idx] for n, idx in kept.items()},
        "sizes": {n: int(s) for n, s in sizes.items()},
        "input_shape": [int(n) for n in shape],
        "compensated": bool(record.compensated) if record is not None else True,
        **({"blocks": list(record.blocks)} if record is not None and record.blocks else {}),
    }


def _read(path: Path) -> dict[str, Any]:
    """Load and validate the raw file contents (tensors and plain containers only)."""
    if not path.is_file():
        raise PruningError(f"pruned model file {path} does not exist")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for foreign, pickled or truncated files
        text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()  # torch colours its messages
        first = text.splitlines()[0][:200] if text else ""
        raise PruningError(
            f"cannot read {path} with torch.load(weights_only=True) ({type(exc).__name__}: "
            f"{first}); load_pruned reads only files written by save_pruned, which hold "
            "tensors and plain containers"
        ) from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT_TAG:
        raise PruningError(
            f"{path} is not a forecastprune pruned-model file (save it with "
            "save_pruned or `forecastprune prune`)"
        )
    if not isinstance(raw.get("version"), int) or raw["version"] > FORMAT_VERSION:
        raise PruningError(
            f"{path} was written by a newer forecastprune (format version "
            f"{raw.get('version')}, this one reads up to {FORMAT_VERSION}); "
            "upgrade forecastprune"
        )
    try:
        plan = json.loads(raw["plan"])
        missing = {"builder", "kwargs", "keep", "sizes", "input_shape", "compensated"} - set(plan)
    except (KeyError, TypeError, ValueError) as exc:
        raise PruningError(f"{path} has a corrupt channel plan ({exc})") from exc
    if missing or not isinstance(raw.get("state_dict"), dict):
        raise PruningError(
            f"{path} has a corrupt channel plan or state dict (missing "
            f"{sorted(missing) or ['state_dict']})"
        )
    return raw
