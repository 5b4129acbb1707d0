"""Physical surgery: keep masks → a new, smaller model.

The input model is never touched: it is deep-copied and the copy is cut. The cut follows the
channel flow (:mod:`~forecastprune.engine.flow`) of the copy: every pruned BN channel belongs
to a coupled set, and the set lists every layer index that goes with it — the BN's own channel,
the producing conv's filter, a depthwise conv's channel, and the input slice of every conv or
linear layer that reads it, wherever concats, splits and shortcut adds have moved it. All
indices refer to the unpruned layers, so each layer side is cut once, with torch-pruning's
layer pruners (``prune_conv_out_channels`` and friends), and no index shifts between cuts.

Before the cut, the constant output of the pruned channels is folded into their readers (see
:mod:`~forecastprune.engine.compensation`), which makes the pruned model equal to the original
with the pruned channels' γ set to 0 (exactly after 1×1 convs and linear layers). After it,
the whole output structure (tuples, lists, dicts of tensors) must have kept its shapes.

The returned model carries a :class:`SurgeryRecord` (``surgery_record(model)``): which original
parameter each new parameter came from and which indices it kept, so an optimizer can be
remapped (:func:`~forecastprune.engine.optim.rebuild_optimizer`) and the cut replayed
(:mod:`~forecastprune.engine.persist`).
"""

from __future__ import annotations

import copy
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..core.bn_layers import unwrap_model
from ..core.layout import ChannelLayout
from ..core.modes import eval_mode
from ..errors import PruningError
from .compensation import fold_constants, recorded_inputs
from .coupling import WEIGHTED, ChannelPlan, as_args, check_layout, plan_channels, traced_flow
from .flow import output_signature, running_layer

#: attribute of a pruned model holding its SurgeryRecord
RECORD_ATTR = "forecastprune_surgery"


@dataclass(frozen=True)
class SurgeryRecord:
    """How a pruned model's parameters relate to the model it was cut from.

    Attributes:
        keep: BN layer -> original indices of the channels kept (the plan to replay).
        sizes: BN layer -> its channel count before the cut.
        input_shapes: shapes of the example inputs the cut was traced with.
        compensated: whether β was folded into the next layers (which may create biases).
        sources: new parameter name -> weak reference to the input model's parameter it came
            from (absent for parameters the surgery created, i.e. compensation biases). Weak,
            so a dead input model's parameters never match a newer object that reuses its id.
        kept: new parameter name -> per dimension, the original indices kept (None where the
            dimension was not cut).
        blocks: residual blocks removed whole (:mod:`~forecastprune.engine.block_surgery`),
            by module name, in the order they were removed.
    """

    keep: dict[str, np.ndarray]
    sizes: dict[str, int]
    input_shapes: tuple[tuple[int, ...], ...]
    compensated: bool
    sources: dict[str, weakref.ref[nn.Parameter]]
    kept: dict[str, tuple[np.ndarray | None, ...]]
    blocks: tuple[str, ...] = ()

    def __getstate__(self) -> dict[str, Any]:
        # frameworks pickle whole models into checkpoints (ultralytics does); weak references
        # cannot be pickled and would point nowhere in another process anyway
        return {**self.__dict__, "sources": {}}

    def __deepcopy__(self, memo: dict[int, Any]) -> SurgeryRecord:
        # a deep copy (e.g. an EMA model) still descends from the same input parameters
        return SurgeryRecord(
            **{
                f.name: getattr(self, f.name)
                if f.name == "sources"
                else copy.deepcopy(getattr(self, f.name), memo)
                for f in fields(self)
            }
        )


def surgery_record(model: nn.Module) -> SurgeryRecord | None:
    """The :class:`SurgeryRecord` of a model returned by :func:`prune_model`, else None."""
    return getattr(unwrap_model(model), RECORD_ATTR, None)


def prune_model(
    model: nn.Module,
    keep: Mapping[str, Any] | Any,
    example_inputs: Any,
    plan: ChannelPlan | None = None,
    *,
    compensate: bool = True,
) -> nn.Module:
    """Return a physically smaller copy of ``model`` without the channels ``keep`` drops.

    Args:
        model: the model to cut (left untouched; DDP/DataParallel wrappers are stripped).
        keep: a :class:`~forecastprune.engine.threshold.PruneDecision` or a mapping
            BN layer name -> (n,) bool mask, True for channels to keep.
        example_inputs: a tensor (or tuple) the model accepts, for tracing; small inputs are
            fine when the structure does not depend on the size.
        plan: the :class:`ChannelPlan` the masks were made under; by default the ``grouped``
            plan of the masks' layers is traced (which accepts every valid ``seed`` mask too).
        compensate: fold the pruned channels' constant output (act(β)) into the next layers.

    Returns:
        The pruned copy, in the same train/eval mode, carrying a :class:`SurgeryRecord`.

    Raises:
        LayoutError: if the masks name layers the model does not have, or other widths.
        PruningError: for malformed masks, masks that cut a non-prunable channel, part of a
            coupled group or a whole layer, or a cut torch-pruning refuses.
    """
    model = unwrap_model(model)
    masks = keep_masks(keep)
    layout = ChannelLayout.from_pairs((name, mask.size) for name, mask in masks.items())
    if plan is not None:
        plan.layout.check_same(layout, what="the keep masks")
    check_layout(model, layout)
    plan = plan or plan_channels(model, example_inputs, layout, policy="grouped")
    pruned = ~layout.join(masks)
    _check_cut(pruned, plan)
    new = copy.deepcopy(model)
    tracker = _Tracker()
    if pruned.any():
        _cut(new, layout, pruned, example_inputs, tracker, compensate)
    record = _record(model, new, masks, example_inputs, compensate, tracker)
    object.__setattr__(new, RECORD_ATTR, record)
    return new


def keep_masks(keep: Mapping[str, Any] | Any) -> dict[str, np.ndarray]:
    """Normalise a PruneDecision or a mapping of masks to ``{layer: (n,) bool ndarray}``.

    Raises:
        PruningError: if ``keep`` is neither, or a mask is not a non-empty 1-D bool array.
    """
    if hasattr(keep, "keep") and hasattr(keep, "layout"):
        keep = keep.keep
    if not isinstance(keep, Mapping) or not keep:
        raise PruningError(
            f"keep must be a PruneDecision or a non-empty mapping layer -> bool mask; got "
            f"{type(keep).__name__}"
        )
    masks: dict[str, np.ndarray] = {}
    for name, mask in keep.items():
        array = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
        if array.ndim != 1 or array.dtype != np.bool_ or array.size == 0:
            raise PruningError(
                f"the keep mask of layer {name!r} must be a non-empty 1-D bool array (True = "
                f"keep); got dtype {array.dtype} and shape {array.shape}"
            )
        masks[str(name)] = array
    return masks


def _record(
    model: nn.Module,
    new: nn.Module,
    masks: dict[str, np.ndarray],
    example_inputs: Any,
    compensate: bool,
    tracker: _Tracker,
) -> SurgeryRecord:
    """The record of the cut ``model`` → ``new``, composed with ``model``'s own record."""
    previous = surgery_record(model)
    keep, sizes = _compose(previous, masks)
    shapes = tuple(tuple(t.shape) for t in as_args(example_inputs) if isinstance(t, torch.Tensor))
    return SurgeryRecord(
        keep=keep,
        sizes=sizes,
        input_shapes=shapes,
        compensated=compensate or (previous is not None and previous.compensated),
        blocks=previous.blocks if previous is not None else (),
        **_param_map(model, new, tracker),
    )


def _compose(
    previous: SurgeryRecord | None, masks: dict[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """Kept indices and original sizes relative to the *unpruned* model.

    Pruning an already pruned model composes the cuts, so the record (and a saved plan) always
    describes one cut of the model as first built.
    """
    keep = {} if previous is None else dict(previous.keep)
    sizes = {} if previous is None else dict(previous.sizes)
    for name, mask in masks.items():
        kept = np.flatnonzero(mask)
        keep[name] = keep[name][kept] if name in keep else kept
        sizes.setdefault(name, int(mask.size))
    return keep, sizes


def _check_cut(pruned: np.ndarray, plan: ChannelPlan) -> None:
    """Refuse cuts the plan forbids: non-prunable channels, split groups, emptied layers."""
    layout = plan.layout
    for name, cut in layout.split(pruned).items():
        ok = layout.split(plan.prunable)[name]
        if (cut & ~ok).any():
            raise PruningError(
                f"layer {name!r}: {int((cut & ~ok).sum())} channel(s) to prune may not be "
                f"pruned under the {plan.policy!r} plan ({plan.reasons.get(name, 'not prunable')})"
                "; threshold with prunable=plan.prunable and groups=plan.groups"
            )
        if cut.all():
            raise PruningError(
                f"layer {name!r} would lose all {cut.size} channels; keep at least one "
                "(min_keep >= 1)"
            )
    for group in plan.groups:
        if pruned[group].any() and not pruned[group].all():
            members = sorted(
                {layout.names[np.searchsorted(layout.offsets, i, "right") - 1] for i in group}
            )
            raise PruningError(
                f"coupled channels of layers {members} must be pruned together, but the masks "
                "cut only some of them; pass groups=plan.groups to the threshold"
            )


class _Tracker:
    """The original indices each cut layer side kept (absent: the side was not cut)."""

    def __init__(self) -> None:
        self.alive: dict[tuple[nn.Module, str], list[int]] = {}

    def alive_of(self, module: nn.Module, side: str) -> list[int]:
        return self.alive.get((module, side), list(range(_width(module, side))))


def _width(module: nn.Module, side: str) -> int:
    if isinstance(module, _BatchNorm):
        return module.num_features
    if isinstance(module, nn.Linear):
        return module.out_features if side == "out" else module.in_features
    return module.out_channels if side == "out" else module.in_channels


def _cut(
    model: nn.Module,
    layout: ChannelLayout,
    pruned: np.ndarray,
    example_inputs: Any,
    tracker: _Tracker,
    compensate: bool,
) -> None:
    """Cut ``model`` in place (it is the caller's private copy)."""
    bns = check_layout(model, layout)
    with torch.no_grad():
        for name, mask in layout.split(pruned).items():
            # a zero γ makes the channel output β: what compensation must reproduce
            bns[name].weight[torch.as_tensor(mask)] = 0.0
    consumers = [m for m in model.modules() if isinstance(m, WEIGHTED)] if compensate else []
    # one forward measures the readers' constant inputs and the output structure to keep
    with recorded_inputs(consumers) as means:
        before = _output_signature(model, example_inputs)
    flow = traced_flow(model, example_inputs, layout)
    modules = dict(model.named_modules())
    cuts = _sites_to_cut(flow, pruned, modules)
    if compensate:
        for (name, side), indices in cuts.items():
            consumer = modules[name]
            if side == "in" and isinstance(consumer, WEIGHTED):
                seen = means[consumer]
                after = modules.get(flow.bn_after.get(name, ""))
                fold_constants(
                    consumer,
                    indices,
                    seen.mean[indices],
                    seen.size,
                    after if isinstance(after, _BatchNorm) else None,
                )
    for (name, side), indices in cuts.items():
        module = modules[name]
        gone = set(indices)
        tracker.alive[(module, side)] = [i for i in range(_width(module, side)) if i not in gone]
        _prune_side(name, module, side, indices)
    try:
        with running_layer(model):
            after = _output_signature(model, example_inputs)
    except RuntimeError as exc:
        where = getattr(exc, "layer", "?")
        raise PruningError(
            f"the pruned model no longer runs: layer {where!r} failed ("
            f"{(str(exc).splitlines() or [''])[0]}); an operation with a fixed channel count "
            "reads a pruned layer — exclude the layers feeding it from the layout"
        ) from exc
    if after != before:
        raise PruningError(
            "the cut changed the structure or shapes of the model's outputs; "
            "exclude the layers feeding the changed output from the layout"
        )


def _sites_to_cut(
    flow: Any,
    pruned: np.ndarray,
    modules: dict[str, nn.Module],
) -> dict[tuple[str, str], list[int]]:
    """(layer, side) -> sorted original indices to remove, checked against the layer widths."""
    cuts: dict[tuple[str, str], set[int]] = {}
    for root in np.unique(flow.root[pruned]).tolist():
        for site in flow.sites[root]:
            cuts.setdefault((site.module, site.side), set()).add(site.index)
    checked: dict[tuple[str, str], list[int]] = {}
    for (name, side), indices in cuts.items():
        width = _width(modules[name], side)
        if max(indices) >= width:
            raise PruningError(
                f"layer {name!r}: the channel map names {side}put channel {max(indices)} but "
                f"the layer has {width}; this model's structure is not supported"
            )
        if len(indices) >= width:
            raise PruningError(
                f"layer {name!r} would lose all {width} of its {side}put channels; keep more "
                "channels (min_keep) in the layers coupled with it"
            )
        checked[(name, side)] = sorted(indices)
    return checked


def _prune_side(name: str, module: nn.Module, side: str, indices: list[int]) -> None:
    """Remove ``indices`` from one side of one layer with torch-pruning's layer pruners."""
    # imported here: torch-pruning imports timm when installed, and timm torchvision — seconds
    # of imports (and, with ultralytics, AGPL-adjacent ones) no plan or replay needs
    import torch_pruning as tp

    if isinstance(module, _BatchNorm):
        tp.prune_batchnorm_out_channels(module, indices)
    elif isinstance(module, nn.Linear):
        prune = tp.prune_linear_out_channels if side == "out" else tp.prune_linear_in_channels
        prune(module, indices)
    elif side == "out" and module.groups > 1:
        _prune_groups(name, module, indices)
    else:
        prune = tp.prune_conv_out_channels if side == "out" else tp.prune_conv_in_channels
        prune(module, indices)


@torch.no_grad()
def _prune_groups(name: str, conv: nn.Module, indices: list[int]) -> None:
    """Remove whole groups of a grouped (or depthwise) conv, given their output channels.

    The channel flow couples each group's inputs and outputs, so ``indices`` covers whole
    groups; the inputs go with them (the previous layer loses the matching output channels).
    """
    per_out, per_in = conv.out_channels // conv.groups, conv.in_channels // conv.groups
    gone = sorted({i // per_out for i in indices})
    if len(indices) != len(gone) * per_out:
        raise PruningError(
            f"layer {name!r}: only whole groups of {per_out} output channels can "
            f"be pruned; got {len(indices)} channels over {len(gone)} groups"
        )
    keep = [g for g in range(conv.groups) if g not in set(gone)]
    out_idx = torch.tensor([g * per_out + k for g in keep for k in range(per_out)])
    conv.weight = nn.Parameter(
        conv.weight.detach()[out_idx].clone(), requires_grad=conv.weight.requires_grad
    )
    if conv.bias is not None:
        conv.bias = nn.Parameter(
            conv.bias.detach()[out_idx].clone(), requires_grad=conv.bias.requires_grad
        )
    conv.groups = len(keep)
    conv.out_channels, conv.in_channels = len(keep) * per_out, len(keep) * per_in


@torch.no_grad()
def _output_signature(model: nn.Module, example_inputs: Any) -> list[tuple[str, tuple[int, ...]]]:
    """Path and shape of every tensor of the eval-mode output structure, in order."""
    with eval_mode(model):
        out = model(*as_args(example_inputs))
    return output_signature(out)


def _param_map(original: nn.Module, new: nn.Module, tracker: _Tracker) -> dict[str, Any]:
    """Source references and kept indices of every parameter of the pruned model."""
    before = dict(original.named_parameters())
    sources: dict[str, weakref.ref[nn.Parameter]] = {}
    kept: dict[str, tuple[np.ndarray | None, ...]] = {}
    for name, param in new.named_parameters():
        if name not in before:
            continue  # a compensation bias: nothing to carry over
        sources[name] = weakref.ref(before[name])
        module = new.get_submodule(name.rpartition(".")[0])
        dims: list[np.ndarray | None] = []
        for dim, (old, now) in enumerate(zip(before[name].shape, param.shape, strict=True)):
            side = "out" if dim == 0 else "in"
            dims.append(None if old == now else np.asarray(tracker.alive_of(module, side)))
        kept[name] = tuple(dims)
    return {"sources": sources, "kept": kept}
