"""Which BN channels may be pruned, and which must be pruned together.

Discovery is torch-pruning's :class:`~torch_pruning.DependencyGraph`, not a tracer of our own:
for every BN of the layout we ask the graph for the pruning group of *all* its channels
(``DG.get_pruning_group(bn, prune_batchnorm_out_channels, idxs=range(n))``) and read the group's
items. Each item carries the indices it prunes in its own layer *and* the root channel they come
from, so two layout BNs appearing in one group are coupled channel by channel (a residual add,
a depthwise conv, a BN after a concat...). Channels are then merged into coupled sets with a
union-find over the global channel axis.

A coupled set is **prunable** (both policies) only when every group touching it:

* prunes the out-channels of conv/linear layers that each feed a BN of the group (so a zero γ
  really makes the channel constant, and β compensation is exact),
* touches only BNs of the layout (a BN that is not recorded has no score),
* touches no other parameterised layer type (LayerNorm, PReLU, ...), and
* does not reach the model's output (pruning would change the output's shape).

The two policies:

* ``grouped`` — every prunable coupled set is one unit (:attr:`ChannelPlan.groups`); the
  threshold scores it by the max (or mean) of its members.
* ``seed`` — the YOLOv3 write-up's rule, derived from the same groups: a BN is prunable iff its
  group touches no other BN at all (no shortcut add or depthwise coupling ties its channels to
  another layer's) and passes through no concat/split (a route: this is what excludes the CBL
  right before an upsample that feeds a route). On the standard yolov3.cfg this leaves the 42
  layers / 13,376 channels the write-up quotes. No groups: every channel is its own unit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch_pruning as tp
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from ..errors import LayoutError, PruningError
from ..store.layout import ChannelLayout
from .rule import POLICIES, check_policy
from ..record.bn_layers import is_prunable_bn, layout_of, select_bn_layers, unwrap_model


#: graph node types that stand for a route (concat / split) in the write-up's sense
_ROUTE_TYPES = (tp.ops.OPTYPE.CONCAT, tp.ops.OPTYPE.SPLIT, tp.ops.OPTYPE.SLICE,
                tp.ops.OPTYPE.UNBIND)
#: graph node types that carry channels through without parameters of their own
_PASS_TYPES = (*_ROUTE_TYPES, tp.ops.OPTYPE.ELEMENTWISE, tp.ops.OPTYPE.RESHAPE,
               tp.ops.OPTYPE.EXPAND)
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


def check_layout(model: nn.Module, layout: ChannelLayout) -> dict[str, _BatchNorm]:
    """The layout's BN modules, after checking the model has them with the same widths.

    Args:
        model: the model the layout should describe.
        layout: layer names and channel counts (from a store, a decision or a plan).

    Returns:
        Layer name -> BN module, in layout order.

    Raises:
        LayoutError: naming the first layer that is missing, not an affine BN, or of another
            width.
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
    return found


def as_args(example_inputs: Any) -> tuple[Any, ...]:
    """Example inputs as a tuple of positional arguments.

    torch-pruning tries ``model(*inputs)`` first, which would unpack a lone batch tensor along
    its batch axis (and a batch of one would then trace as an unbatched input), so a single
    tensor is always wrapped.
    """
    return tuple(example_inputs) if isinstance(example_inputs, (tuple, list)) else (
        example_inputs,)


@contextmanager
def traced_graph(model: nn.Module, example_inputs: Any) -> Iterator[tp.DependencyGraph]:
    """A DependencyGraph of ``model``, leaving its train/eval flags as they were.

    Tracing runs one forward pass in eval mode (so running statistics are not updated) with
    autograd on, as torch-pruning requires.

    Args:
        model: the model to trace (its weights are not changed).
        example_inputs: a tensor or a tuple of tensors the model accepts.

    Yields:
        The graph, built on ``model`` itself.

    Raises:
        PruningError: if the forward pass fails on ``example_inputs``.
    """
    flags = {module: module.training for module in model.modules()}
    try:
        with torch.enable_grad():
            graph = tp.DependencyGraph().build_dependency(
                model, example_inputs=as_args(example_inputs), verbose=False
            )
    except (RuntimeError, TypeError, ValueError) as exc:
        raise PruningError(
            f"tracing the model on the example inputs failed ({exc}); pass inputs the model "
            "accepts, e.g. a tensor of shape (1, channels, height, width)"
        ) from exc
    try:
        yield graph
    finally:
        for module, flag in flags.items():
            module.training = flag


def plan_channels(
    model: nn.Module,
    example_inputs: Any,
    layout: ChannelLayout | None = None,
    policy: str = "seed",
) -> ChannelPlan:
    """Work out which channels of ``layout`` may be pruned and which are coupled.

    Args:
        model: the model (not modified; its train/eval flags are restored).
        example_inputs: inputs for one traced forward pass; the structure must not depend on
            their size, so small ones (e.g. 1×3×64×64 for YOLOv3) keep tracing fast.
        layout: the BN layers to plan for; defaults to every affine BN in module order.
        policy: ``"seed"`` (the YOLOv3 write-up's rule) or ``"grouped"``.

    Returns:
        The :class:`ChannelPlan`.

    Raises:
        PruningError: on an unknown policy or inputs the model does not accept.
        LayoutError: if the layout names layers the model does not have (or other widths).
    """
    check_policy(policy)
    model = unwrap_model(model)
    layout = default_layout(model) if layout is None else layout
    bns = check_layout(model, layout)
    with traced_graph(model, example_inputs) as graph:
        sets, verdicts = _coupled_sets(graph, model, layout, bns)
    return _apply_policy(layout, policy, sets, verdicts)


@dataclass
class _Verdict:
    """What one DG group says about the channels it touches."""

    problem: str | None  # why the channels cannot be pruned at all (None: they can)
    tie: str | None = None  # why the seed rule excludes them (None: solitary, seed-prunable)


def _coupled_sets(
    graph: tp.DependencyGraph, model: nn.Module, layout: ChannelLayout,
    bns: dict[str, _BatchNorm],
) -> tuple[np.ndarray, dict[str, _Verdict]]:
    """Union-find the layout's channels into coupled sets and judge each BN's group."""
    names = {module: name for name, module in model.named_modules()}
    parent = np.arange(layout.total)
    verdicts: dict[str, _Verdict] = {}
    for name, bn in bns.items():
        if bn not in graph.module2node:
            verdicts[name] = _Verdict("the traced forward pass never reaches it")
            continue
        group = graph.get_pruning_group(
            bn, tp.prune_batchnorm_out_channels, idxs=list(range(bn.num_features))
        )
        verdicts[name] = _judge(graph, group, names, layout)
        by_root: dict[int, list[int]] = {}
        for item in group.items:
            member = names.get(item.dep.target.module)
            if isinstance(item.dep.target.module, _BatchNorm) and member in layout.names:
                offset = layout.slice(member).start
                for idx, root in zip(item.idxs, item.root_idxs, strict=True):
                    by_root.setdefault(int(root), []).append(offset + int(idx))
        for members in by_root.values():
            _union(parent, members)
    return _roots(parent), verdicts


def _judge(graph: tp.DependencyGraph, group: Any, names: dict[nn.Module, str],
           layout: ChannelLayout) -> _Verdict:
    """Decide whether one BN's DG group may be pruned, and whether it is solitary."""
    producers, group_bns, routes = [], [], False
    for item in group.items:
        node, module = item.dep.target, item.dep.target.module
        consumer = is_consumer(graph, module, item.dep.handler)
        if node.type == tp.ops.OPTYPE.OUTPUT or (not node.outputs and not consumer):
            return _Verdict("its channels reach the model's output")
        if isinstance(module, _BatchNorm):
            if names.get(module) not in layout.names:
                return _Verdict(f"coupled with BN {names.get(module)!r}, which is not in the "
                                "layout")
            group_bns.append(module)
        elif isinstance(module, WEIGHTED):
            if not consumer:
                producers.append(node)
        elif node.type in _ROUTE_TYPES:
            routes = True
        elif node.type not in _PASS_TYPES:
            return _Verdict(f"coupled with a {type(module).__name__} layer, which the engine "
                            "does not prune")
    for node in producers:
        if not any(out.module in group_bns for out in node.outputs):
            return _Verdict(f"coupled with {names.get(node.module)!r}, whose output has no "
                            "BatchNorm to zero")
    if len(group_bns) > 1:
        others = [names[bn] for bn in group_bns[1:4]]
        return _Verdict(None, f"tied to {others}{'...' if len(group_bns) > 4 else ''} by a "
                              "shortcut add or a depthwise conv")
    return _Verdict(None, "its channels reach a route (concat/split)" if routes else None)


def is_consumer(graph: tp.DependencyGraph, module: Any, handler: Any) -> bool:
    """True when a group item removes input channels of a (non-depthwise) conv/linear layer.

    A depthwise conv loses its channels as a whole (it is coupled, not a reader).
    """
    if not isinstance(module, WEIGHTED) or _is_depthwise(module):
        return False
    return handler == graph.get_pruner_of_module(module).prune_in_channels


def _is_depthwise(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.conv._ConvNd) and module.groups == module.out_channels \
        and module.groups > 1


def _union(parent: np.ndarray, members: Sequence[int]) -> None:
    first = _find(parent, members[0])
    for other in members[1:]:
        parent[_find(parent, other)] = first


def _find(parent: np.ndarray, i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]  # path halving keeps the trees flat
        i = int(parent[i])
    return i


def _roots(parent: np.ndarray) -> np.ndarray:
    return np.array([_find(parent, i) for i in range(len(parent))], dtype=np.int64)


def _apply_policy(layout: ChannelLayout, policy: str, roots: np.ndarray,
                  verdicts: dict[str, _Verdict]) -> ChannelPlan:
    """Turn coupled sets and per-BN verdicts into the policy's prunable mask and groups."""
    ok = np.ones(layout.total, dtype=bool)
    reasons: dict[str, str] = {}
    for name in layout.names:
        verdict = verdicts[name]
        if verdict.problem is not None:
            reasons[name] = verdict.problem
        elif policy == "seed" and verdict.tie is not None:
            reasons[name] = f"seed rule: {verdict.tie}"
        else:
            continue
        ok[layout.slice(name)] = False
    # a coupled set is prunable only if every member is: prune all of it or none of it
    blocked = np.unique(roots[~ok])
    prunable = ok & ~np.isin(roots, blocked)
    for name in layout.names:
        if not prunable[layout.slice(name)].all() and name not in reasons:
            reasons[name] = "coupled with channels that cannot be pruned"
    groups: list[np.ndarray] = []
    if policy == "grouped":
        order = np.argsort(roots, kind="stable")
        split_at = np.flatnonzero(np.diff(roots[order])) + 1
        groups = [g for g in np.split(order, split_at) if len(g) > 1 and prunable[g].all()]
    return ChannelPlan(layout, policy, prunable, groups, reasons)
