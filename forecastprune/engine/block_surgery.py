"""Block surgery: remove whole residual blocks from a copy of a model.

The input model is never touched. Each block goes as its plan says (see
:mod:`~forecastprune.engine.blocks`): deleted from its ``nn.Sequential`` (the other entries
keep their names), deleted from a C2f-style ``nn.ModuleList`` with its concat columns folded
into the reading conv, or replaced by an ``nn.Identity`` / ``nn.ReLU``. The result equals the
input model with every removed block's scoring BN at γ = β = 0, and :func:`prune_blocks` checks
that on the example inputs before returning (a model whose code reads its blocks in a way the
plan did not foresee fails loudly instead of silently computing something else).

Module names that remain are unchanged, so stores, layouts and keep masks recorded on the full
model still name the same layers. The returned model carries a
:class:`~forecastprune.engine.surgery.SurgeryRecord` whose ``blocks`` lists the removed blocks
(composed with any earlier cut, in either order), so :func:`rebuild_optimizer`,
:func:`save_pruned`/:func:`load_pruned` and channel pruning work on it as on a channel-pruned
model.
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.bn_layers import unwrap_model
from ..core.modes import eval_mode
from ..errors import PruningError
from .blocks import Block, BlockPlan, plan_blocks
from .coupling import as_args
from .flow import output_signature, tensors_in
from .surgery import RECORD_ATTR, SurgeryRecord, surgery_record

__all__ = ["prune_blocks", "zero_blocks"]

#: plain attributes of a removed module kept on its stand-in (ultralytics reads f, i, type, np)
_PLAIN = (bool, int, float, str, list, tuple, type(None))


def prune_blocks(
    model: nn.Module,
    blocks: Iterable[str | Block] | Any,
    example_inputs: Any,
    plan: BlockPlan | None = None,
    *,
    verify: bool = True,
) -> nn.Module:
    """Return a copy of ``model`` without the given residual blocks.

    Args:
        model: the model (left untouched; DDP/DataParallel wrappers are stripped).
        blocks: block names or :class:`~forecastprune.engine.blocks.Block` s, or a
            :class:`~forecastprune.engine.block_rule.BlockDecision`.
        example_inputs: a tensor (or tuple) the model accepts, for tracing and the check.
        plan: the :class:`BlockPlan` of ``model``; traced when not given.
        verify: check on ``example_inputs`` that the copy equals ``model`` with the removed
            blocks' scoring BNs at γ = β = 0 (eval mode, 1e-4 relative).

    Returns:
        The smaller copy, in the same train/eval mode, carrying a ``SurgeryRecord``.

    Raises:
        PruningError: for a name that is not a removable block (with the reason), or a copy
            that does not reproduce the zeroed model.
    """
    model = unwrap_model(model)
    plan = plan or plan_blocks(model, example_inputs)
    chosen = _resolve(plan, blocks)
    new = copy.deepcopy(model)
    widths = _remove(new, chosen)
    if verify and chosen:
        _verify(zero_blocks(model, chosen), new, example_inputs)
    record = _record(model, new, chosen, example_inputs, widths)
    object.__setattr__(new, RECORD_ATTR, record)
    return new


def zero_blocks(model: nn.Module, blocks: Iterable[Block]) -> nn.Module:
    """A copy of ``model`` with every block's scoring BN at γ = β = 0: what removal reproduces."""
    zeroed = copy.deepcopy(unwrap_model(model))
    with torch.no_grad():
        for block in blocks:
            bn = zeroed.get_submodule(block.bn)
            bn.weight.zero_()
            bn.bias.zero_()
    return zeroed


def _resolve(plan: BlockPlan, blocks: Any) -> list[Block]:
    """The plan's blocks for ``blocks``, in plan order, without blocks nested in others."""
    if hasattr(blocks, "removed") and hasattr(blocks, "spec"):
        blocks = blocks.removed
    if isinstance(blocks, str) or not isinstance(blocks, Iterable):
        raise PruningError(
            f"blocks must be a list of block names (or a BlockDecision); got "
            f"{type(blocks).__name__}"
        )
    wanted = set()
    for item in blocks:
        name = item.name if isinstance(item, Block) else item
        try:
            wanted.add(plan.get(str(name)).name)
        except KeyError as exc:
            raise PruningError(str(exc.args[0])) from None
    chosen = [b for b in plan.blocks if b.name in wanted]
    return [b for b in chosen if not any(b.name.startswith(o.name + ".") for o in chosen)]


def _remove(model: nn.Module, blocks: list[Block]) -> dict[str, np.ndarray]:
    """Remove ``blocks`` from ``model`` in place; returns conv -> input channels kept."""
    kept = _fold_all(model, [b for b in blocks if b.mode == "fold"])
    for block in blocks:
        parent_name, _, key = block.name.rpartition(".")
        parent = model.get_submodule(parent_name)
        if block.mode in ("delete", "fold"):
            del parent._modules[key]  # the other entries keep their names
        else:
            parent._modules[key] = _stand_in(parent._modules[key], block.mode)
    return kept


def _stand_in(module: nn.Module, mode: str) -> nn.Module:
    """An Identity (or ReLU) carrying the removed module's plain attributes."""
    new = nn.ReLU() if mode == "relu" else nn.Identity()
    for key, value in vars(module).items():
        if not key.startswith("_") and key != "training" and isinstance(value, _PLAIN):
            setattr(new, key, copy.copy(value))
    return new


@torch.no_grad()
def _fold_all(model: nn.Module, folds: list[Block]) -> dict[str, np.ndarray]:
    """Merge each folded block's concat columns into its input's, then drop them.

    Latest slot first, so a chain of removed blocks (m1 reading m0's output) folds into the
    nearest kept slot.
    """
    kept: dict[str, np.ndarray] = {}
    by_conv: dict[str, list[Block]] = {}
    for block in folds:
        by_conv.setdefault(block.fold.conv, []).append(block)
    for name, group in by_conv.items():
        conv = model.get_submodule(name)
        weight = conv.weight.detach().clone()
        gone: list[int] = []
        for block in sorted(group, key=lambda b: -b.fold.source):
            f = block.fold
            if f.source + f.width > weight.shape[1]:
                raise PruningError(
                    f"conv {name!r} has {weight.shape[1]} input channels, fewer "
                    f"than the concat slot of block {block.name!r} needs; plan "
                    "the blocks on this very model"
                )
            weight[:, f.target : f.target + f.width] += weight[:, f.source : f.source + f.width]
            gone.extend(range(f.source, f.source + f.width))
        keep = np.setdiff1d(np.arange(weight.shape[1]), gone)
        conv.weight = nn.Parameter(
            weight[:, torch.as_tensor(keep)].contiguous(), requires_grad=conv.weight.requires_grad
        )
        conv.in_channels = int(keep.size)
        kept[name] = keep
    return kept


@torch.no_grad()
def _verify(reference: nn.Module, pruned: nn.Module, example_inputs: Any) -> None:
    """Raise unless ``pruned`` reproduces ``reference`` (eval mode) on the example inputs."""
    outs = []
    for model in (reference, pruned):
        try:
            with eval_mode(model):
                outs.append(model(*as_args(example_inputs)))
        except RuntimeError as exc:
            raise PruningError(
                f"the model without the blocks no longer runs ({exc}); its code "
                "reads the removed blocks in a way the plan did not foresee"
            ) from exc
    if output_signature(outs[0]) != output_signature(outs[1]):
        raise PruningError("removing the blocks changed the model's output structure")
    for a, b in zip(tensors_in(outs[0]), tensors_in(outs[1]), strict=True):
        scale = max(float(a.abs().max()) if a.numel() else 0.0, 1e-12)
        if float((a - b).abs().max()) > 1e-4 * scale:
            raise PruningError(
                "the model without the blocks does not reproduce the model with "
                "their branches zeroed; its code reads the removed blocks in a "
                "way the plan did not foresee"
            )


def _record(
    model: nn.Module,
    new: nn.Module,
    removed: list[Block],
    example_inputs: Any,
    widths: dict[str, np.ndarray],
) -> SurgeryRecord:
    """The surgery record of ``model`` → ``new``, composed with ``model``'s own record."""
    previous = surgery_record(model)
    before = dict(model.named_parameters())
    sources: dict[str, weakref.ref[nn.Parameter]] = {}
    kept: dict[str, tuple[np.ndarray | None, ...]] = {}
    for name, param in new.named_parameters():
        if name in before:
            sources[name] = weakref.ref(before[name])
            conv = name.rpartition(".")[0]
            folded = conv in widths and name.endswith(".weight")
            kept[name] = tuple(
                widths[conv] if folded and d == 1 else None for d in range(param.dim())
            )
    shapes = tuple(tuple(t.shape) for t in as_args(example_inputs) if isinstance(t, torch.Tensor))
    return SurgeryRecord(
        keep=dict(previous.keep) if previous else {},
        sizes=dict(previous.sizes) if previous else {},
        input_shapes=shapes,
        compensated=previous.compensated if previous else False,
        sources=sources,
        kept=kept,
        blocks=(*(previous.blocks if previous else ()), *(b.name for b in removed)),
    )
