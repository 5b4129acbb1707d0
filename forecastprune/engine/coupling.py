"""Which BN channels may be pruned, and which must be pruned together.

Discovery is :func:`~forecastprune.engine.flow.trace_flow`: one eval-mode forward pass that
follows every BN channel through the operations the model really runs and unites channels that
an operation combines element by element (a residual add, a depthwise conv, a broadcast
product) into *coupled sets*. It replaces torch-pruning's DependencyGraph for planning, whose
index mapping is wrong for ``chunk`` (C2f), does not finish on attention reshapes (C2PSA) and
raises on channel shuffles; see :mod:`~forecastprune.engine.flow`.

A coupled set is **prunable** (both policies) unless the flow blocked it, i.e. unless some
channel of it reaches a model output, an operation the tracer cannot follow (a reshape across
the channel axis, matmul, ...), a BN outside the layout, or comes
from a conv/linear layer whose output does not go through its own BN (a zero γ would not make
it constant, and β compensation would be wrong). The reason lands in :attr:`ChannelPlan.reasons`.

The two policies:

* ``grouped`` — every prunable coupled set is one unit (:attr:`ChannelPlan.groups`); the
  threshold scores it by the max (or mean) of its members.
* ``seed`` — the YOLOv3 write-up's rule, derived from the same sets: a BN is prunable iff none
  of its channels is blocked, none is coupled with another BN channel (no shortcut add,
  depthwise or grouped conv ties it to another layer) and none passes through a concat/split
  (a route: this is what excludes the CBL right before an upsample that feeds a route). On the
  standard yolov3.cfg this leaves the 42 layers / 13,376 channels the write-up quotes. No
  groups: every channel is its own unit.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..core.bn_layers import (
    is_prunable_bn,
    layout_of,
    model_fingerprint,
    select_bn_layers,
    unwrap_model,
)
from ..core.layout import ChannelLayout
from ..errors import LayoutError, PruningError
from .flow import ChannelFlow, trace_flow
from .spec import check_coupling_policy

#: layers the engine cuts and compensates (transposed convs are not among them)
WEIGHTED = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


@dataclass(frozen=True)
class ChannelPlan:
    """Which channels of a layout may be pruned and which move together.

    Attributes:
        layout: the BN layers the plan covers, in order.
        policy: ``"seed"`` or ``"grouped"``.
        prunable: (C,) bool, False for channels that must never be pruned.
        groups: disjoint int arrays of global channel indices pruned together (prunable coupled
            sets of two or more channels); channels in no group are units of their own.
        reasons: layer name -> why (some of) its channels are not prunable.
    """

    layout: ChannelLayout
    policy: str
    prunable: np.ndarray
    groups: list[np.ndarray] = field(default_factory=list)
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def prunable_layers(self) -> tuple[str, ...]:
        """Names of the layers with at least one prunable channel, in layout order."""
        per_layer = self.layout.split(self.prunable)
        return tuple(name for name in self.layout.names if per_layer[name].any())

    @property
    def prunable_channels(self) -> int:
        """Number of prunable channels."""
        return int(self.prunable.sum())


def default_layout(model: nn.Module) -> ChannelLayout:
    """Every affine BatchNorm of ``model`` in module order."""
    return layout_of(select_bn_layers(model))


def check_layout(
    model: nn.Module, layout: ChannelLayout, fingerprint: str | None = None
) -> dict[str, _BatchNorm]:
    """The layout's BN modules, after checking the model has them with the same widths.

    Args:
        model: the model the layout should describe.
        layout: layer names and channel counts (from a store, a decision or a plan).
        fingerprint: the store's model fingerprint, if it has one. One written by a recorder
            (``sha256:...``) must equal this model's over the layout's layers, and the layout
            must list them in the model's order, as a recorder does: widths alone cannot tell
            two equally wide layers apart, so a store whose layout entries were swapped would
            otherwise cut channels chosen from the wrong γ columns.

    Returns:
        Layer name -> BN module, in layout order.

    Raises:
        LayoutError: naming the first layer that is missing, not an affine BN, of another
            width or out of order, or the fingerprints when they differ.
    """
    modules = dict(unwrap_model(model).named_modules())
    found: dict[str, _BatchNorm] = {}
    for name, size in layout.layers:
        module = modules.get(name)
        if module is None or not is_prunable_bn(module):
            bns = [n for n, m in modules.items() if is_prunable_bn(m)]
            raise LayoutError(
                f"layer {name!r} of the layout is not an affine BatchNorm of this model "
                f"(found {type(module).__name__ if module is not None else 'nothing'}); the "
                f"model's BNs are {bns[:8]}{'...' if len(bns) > 8 else ''}. Use scores or "
                "masks recorded on this model"
            )
        if module.num_features != size:
            raise LayoutError(
                f"layer {name!r} has {module.num_features} channels in the model but {size} in "
                "the layout; the scores or masks were recorded on a differently sized model"
            )
        found[name] = module
    if fingerprint is not None and fingerprint.startswith("sha256:"):
        _check_recorded_on(model, layout, fingerprint, list(modules))
    return found


def _check_recorded_on(
    model: nn.Module, layout: ChannelLayout, fingerprint: str, order: list[str]
) -> None:
    """A recorder's store: the same architecture, and the layout in the model's order."""
    position = {name: i for i, name in enumerate(order)}
    for before, after in itertools.pairwise(layout.names):
        if position[before] > position[after]:
            raise LayoutError(
                f"the store lists layer {after!r} after {before!r}, but the model has them the "
                "other way round; a recorder writes layers in model order, so the store's "
                "layout was edited or belongs to another model. Re-record, or re-import the "
                "trajectories with the right layer names"
            )
    exact = [re.sub(r"([*?\[])", r"[\1]", name) for name in layout.names]  # names, not globs
    mine = model_fingerprint(model, exact)
    if mine != fingerprint:
        raise LayoutError(
            f"the store was recorded on a model with fingerprint {fingerprint[:19]}…, this "
            f"model's is {mine[:19]}… (same BN layers and widths, other modules or parameter "
            "shapes); prune the model the store was recorded on"
        )


def as_args(example_inputs: Any) -> tuple[Any, ...]:
    """Example inputs as a tuple of positional arguments.

    torch-pruning tries ``model(*inputs)`` first, which would unpack a lone batch tensor along
    its batch axis (and a batch of one would then trace as an unbatched input), so a single
    tensor is always wrapped.
    """
    return tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (example_inputs,)


def traced_flow(model: nn.Module, example_inputs: Any, layout: ChannelLayout) -> ChannelFlow:
    """The :class:`~forecastprune.engine.flow.ChannelFlow` of ``model`` on ``example_inputs``.

    Raises:
        PruningError: if the forward pass fails on ``example_inputs``.
    """
    try:
        return trace_flow(model, as_args(example_inputs), layout)
    except (RuntimeError, TypeError, ValueError, IndexError) as exc:
        where = f" in layer {exc.layer!r}" if hasattr(exc, "layer") else ""
        raise PruningError(
            f"tracing the model on the example inputs failed{where} ({type(exc).__name__}: "
            f"{_first_line(exc)}); pass inputs the model accepts, e.g. a tensor of shape "
            "(1, channels, length) for Conv1d or (1, channels, height, width) for Conv2d"
        ) from exc


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0]


def plan_channels(
    model: nn.Module,
    example_inputs: Any,
    layout: ChannelLayout | None = None,
    policy: str = "seed",
) -> ChannelPlan:
    """Work out which channels of ``layout`` may be pruned and which are coupled.

    Args:
        model: the model (not modified; its train/eval flags are restored).
        example_inputs: inputs for one forward pass; the structure must not depend on their
            size, so small ones (e.g. 1×3×64×64 for a detector) keep planning fast.
        layout: the BN layers to plan for; defaults to every affine BN in module order.
        policy: ``"seed"`` (the YOLOv3 write-up's rule) or ``"grouped"``.

    Returns:
        The :class:`ChannelPlan`.

    Raises:
        PruningError: on an unknown policy or inputs the model does not accept.
        LayoutError: if the layout names layers the model does not have (or other widths).
    """
    check_coupling_policy(policy)
    model = unwrap_model(model)
    layout = default_layout(model) if layout is None else layout
    check_layout(model, layout)
    return apply_policy(traced_flow(model, example_inputs, layout), policy)


def apply_policy(flow: ChannelFlow, policy: str) -> ChannelPlan:
    """Turn a channel flow into the policy's prunable mask, groups and reasons."""
    layout = flow.layout
    prunable = np.zeros(layout.total, dtype=bool)
    reasons: dict[str, str] = {}
    for name in layout.names:
        span = layout.slice(name)
        reason = _layer_reason(flow, name, policy)
        roots = flow.root[span]
        free = np.array([r >= 0 and r not in flow.blocked for r in roots.tolist()], dtype=bool)
        if reason is None and not free.all():
            problem = next(flow.blocked[r] for r in roots.tolist() if r in flow.blocked)
            reason = (
                problem
                if policy == "seed" or not free.any()
                else (f"{int((~free).sum())} of {free.size} channels: {problem}")
            )
        if reason is not None:
            reasons[name] = reason
        if reason is None or (policy == "grouped" and free.any()):
            prunable[span] = free
    groups: list[np.ndarray] = []
    if policy == "grouped":
        order = np.argsort(flow.root, kind="stable")
        split_at = np.flatnonzero(np.diff(flow.root[order])) + 1
        groups = [g for g in np.split(order, split_at) if len(g) > 1 and prunable[g].all()]
    return ChannelPlan(layout, policy, prunable, groups, reasons)


def _layer_reason(flow: ChannelFlow, name: str, policy: str) -> str | None:
    """Why the whole layer is out (unreached, or the seed rule), else None."""
    if name in flow.unreached:
        return "the traced forward pass never reaches it"
    if policy != "seed":
        return None
    roots = set(flow.root[flow.layout.slice(name)].tolist())
    if any(r in flow.blocked for r in roots):
        return None  # reported with the blocking reason
    width = flow.layout.slice(name).stop - flow.layout.slice(name).start
    others = sorted({bn for r in roots for bn in flow.bns[r] if bn != name})
    if others or len(roots) < width:
        tied = others[:3] or [name]
        return (
            f"seed rule: tied to {tied}{'...' if len(others) > 3 else ''} by a shortcut add "
            "or a depthwise or grouped conv"
        )
    if roots & flow.routed:
        return "seed rule: its channels reach a route (concat/split)"
    return None
