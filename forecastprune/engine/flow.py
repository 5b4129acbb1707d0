"""Channel flow: where every BN channel goes, traced from one forward pass.

The engine used to ask torch-pruning's DependencyGraph for each BN's pruning group. On current
detectors that graph is not trustworthy: for C2f's ``chunk`` it returns indices past the end of
the layer, for C2PSA's attention reshapes its index mapping never finishes (memory grows by GBs
per minute), and a channel shuffle ends in a ZeroDivisionError. So the engine follows channels
itself, in one eval-mode forward pass under a :class:`~torch.overrides.TorchFunctionMode`.

Every tensor whose dim 1 holds channels carries a *label* per channel: an *atom* id. BN
channels, conv/linear output channels and anything the tracer cannot follow get atoms of their
own; operations that only move channels pass labels on (activations, pooling, upsampling,
``cat``/``chunk``/``split``/slices along dim 1, flattening before a linear layer), and
operations that combine tensors channel by channel (``+``, ``*``, ...) *unite* the atoms they
align, in a union-find. A depthwise conv unites each input channel with its output channel; a
grouped conv unites all input and output channels of one group, so that only whole groups go
and the groups stay equal. Each atom collects the *sites* that must be cut with it: a BN's or
conv's output index, or a conv/linear input index where a channel is read. A united set of atoms
is one *coupled set*: it is pruned whole or not at all.

A set is **blocked** (never prunable), with the first reason recorded, when any atom in it

* reaches a model output (every tensor of the output structure: tuples, lists, dicts),
* reaches an operation the tracer cannot follow channel by channel (a reshape that moves the
  channel axis, as attention heads and channel shuffles do; matmul, softmax over channels, ...),
* has its channel count read by a layer whose forward also reshapes channels unfollowably (an
  attention block that merges its heads back to the count it read: :mod:`.flow_shapes`),
* comes from a conv/linear output that is used other than through its BatchNorm (a zero γ
  would not silence it), from a BN outside the layout, or from outside the traced layers.

Everything the tracer cannot follow therefore ends as a *reason*, never as an exception or a
hang: the pass costs one forward at the example input's size.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.overrides import TorchFunctionMode

from ..core.layout import ChannelLayout
from ..core.modes import eval_mode
from .flow_ops import (
    BINARY,
    CAT,
    CREATE,
    PERMUTE,
    REDUCE,
    RESHAPE,
    SOFTMAX,
    SPLIT,
    UNARY,
    Atoms,
    ChannelMoves,
    Unfollowable,
    dim_arg,
    norm_dim,
    output_signature,
    tensors_in,
)
from .flow_shapes import ShapeReads, reads_channel_count

__all__ = ["ChannelFlow", "Site", "output_signature", "running_layer", "tensors_in", "trace_flow"]


@dataclass(frozen=True)
class Site:
    """One index of one layer that a coupled set cuts.

    Attributes:
        module: the layer's qualified name.
        side: ``"out"`` (a BN's or conv's output channel) or ``"in"`` (an input channel a
            conv or linear layer reads).
        index: the channel index in the unpruned layer.
    """

    module: str
    side: str
    index: int


@dataclass
class ChannelFlow:
    """What the forward pass showed about the layout's channels.

    Attributes:
        layout: the BN layers traced.
        root: (C,) the coupled set of each layout channel (a set id).
        blocked: set id -> why its channels can never be pruned.
        routed: set ids whose channels pass through a concat, split or slice.
        bns: set id -> names of the layout BNs with channels in it.
        sites: set id -> every layer index cut with it.
        bn_after: conv/linear name -> the BN reading its output directly (and alone).
        unreached: layout BNs the forward pass never ran.
    """

    layout: ChannelLayout
    root: np.ndarray
    blocked: dict[int, str]
    routed: set[int]
    bns: dict[int, list[str]]
    sites: dict[int, list[Site]]
    bn_after: dict[str, str]
    unreached: list[str] = field(default_factory=list)


def trace_flow(
    model: nn.Module,
    example_inputs: tuple[Any, ...],
    layout: ChannelLayout,
) -> ChannelFlow:
    """Run ``model`` once in eval mode (no grad) and follow the layout's channels.

    Args:
        model: the model; its train/eval flags are restored and nothing else changes.
        example_inputs: positional inputs for one forward pass.
        layout: the BN layers whose channels to follow.

    Returns:
        The :class:`ChannelFlow`.
    """
    tracer = _Tracer(model, layout)
    with eval_mode(model), torch.no_grad(), tracer, running_layer(model):
        out = model(*example_inputs)
    tracer.finish(out)
    return tracer.result()


@contextmanager
def running_layer(model: nn.Module) -> Iterator[None]:
    """Inside the block, an exception escaping a forward pass names the layer it came from.

    The qualified name of the innermost module whose forward was running is set as
    ``exc.layer``, so callers can say *where* a model failed.
    """
    stack: list[str] = []

    def enter(name: str) -> Any:
        return lambda module, inputs: stack.append(name)

    def leave(module: nn.Module, inputs: Any, output: Any) -> None:
        stack.pop()

    handles = [
        h
        for name, module in model.named_modules()
        if name
        for h in (
            module.register_forward_pre_hook(enter(name)),
            module.register_forward_hook(leave),
        )
    ]
    try:
        yield
    except Exception as exc:
        if stack and not hasattr(exc, "layer"):
            exc.layer = stack[-1]  # type: ignore[attr-defined]
        raise
    finally:
        for handle in handles:
            handle.remove()


class _Tracer(ChannelMoves, TorchFunctionMode):
    """Labels every tensor's channels with atoms while the model runs."""

    def __init__(self, model: nn.Module, layout: ChannelLayout) -> None:
        super().__init__()
        self.layout = layout
        self.atoms = Atoms()
        self.labels: dict[int, np.ndarray] = {}
        # per live tensor (by id; forgotten when the tensor dies, before its id can be reused)
        self.uses: dict[int, int] = {}
        self.pending: dict[int, tuple[str, np.ndarray]] = {}  # conv output -> (layer, atoms)
        self.readers: dict[int, list[str]] = {}  # conv output -> BNs reading it
        self.bn_after: dict[str, str] = {}
        self.owner: dict[int, tuple[str, nn.Module]] = {}
        for name, module in model.named_modules():
            for param in (*module.parameters(recurse=False), *module.buffers(recurse=False)):
                self.owner.setdefault(id(param), (name, module))
        self.layout_atoms: dict[str, np.ndarray] = {}
        self.produced: dict[str, np.ndarray] = {}
        self.grouped: dict[str, int] = {}
        self.model = model
        self.shapes = ShapeReads(self.atoms.block)

    def __enter__(self) -> _Tracer:
        self.shapes.install(self.model)
        return super().__enter__()

    def __exit__(self, *exc: object) -> None:
        self.shapes.remove()
        super().__exit__(*exc)

    # -- the hook ---------------------------------------------------------------------------
    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if name == "__setitem__":
            self._block_inputs(args, "it is written into another tensor by indexing")
            return out
        read = reads_channel_count(func, args, kwargs)
        if read is not None:
            self.shapes.read(self.label(read))
        if next(tensors_in(out), None) is None or name in CREATE:
            return out  # metadata reads (shape, dtype) and tensors built from a shape only
        for tensor in tensors_in((args[:1], kwargs) if name == "type_as" else (args, kwargs)):
            if id(tensor) in self.labels:
                self.uses[id(tensor)] = self.uses.get(id(tensor), 0) + 1
        try:
            self._dispatch(name, args, kwargs, out)
        except Unfollowable as exc:
            if name in RESHAPE:
                self.shapes.reshaped(name, out)
            self._block_inputs((args, kwargs), exc.reason)
            self._fresh(out, exc.reason)
        except (TypeError, ValueError, IndexError, KeyError, AttributeError) as exc:
            # an unusual signature of a known operation: refuse to follow it, never crash
            reason = f"its channels reach {name} called in a way the flow does not follow ({exc})"
            self._block_inputs((args, kwargs), reason)
            self._fresh(out, reason)
        return out

    def _dispatch(self, name: str, args: Any, kwargs: Any, out: Any) -> None:
        x = args[0] if args else None
        if name in ("conv1d", "conv2d", "conv3d"):
            self._conv(args, out)
        elif name == "linear":
            self._linear(args, out)
        elif name == "batch_norm":
            self._batch_norm(args, kwargs, out)
        elif name in UNARY:
            self._pass(x, out, name)
        elif name == "type_as":  # reads only the other tensor's dtype
            self._set(out, self.label(x))
        elif name in BINARY:
            self._binary(args, out, name)
        elif name in CAT:
            self._cat(args, kwargs, out)
        elif name in SPLIT:
            self._split(x, dim_arg(args, kwargs, 1 if name == "unbind" else 2, 0), out, name)
        elif name == "__getitem__":
            self._getitem(x, args[1], out)
        elif name in RESHAPE:
            self._reshape(x, out, name)
        elif name in PERMUTE:
            self._permute(x, args, kwargs, out, name)
        elif name in REDUCE:
            self._reduce(x, dim_arg(args, kwargs, 1, None), out, name)
        elif name in SOFTMAX:
            dim = dim_arg(args, kwargs, 1, None)
            if dim is None or norm_dim(dim, x.dim()) == 1:
                raise Unfollowable(f"its channels reach {name} across channels")
            self._pass(x, out, name)
        elif name == "pad":
            pad = args[1] if len(args) > 1 else kwargs["pad"]
            if len(pad) > 2 * (x.dim() - 2):
                raise Unfollowable("it is padded along the channel axis")
            self._pass(x, out, name)
        else:
            raise Unfollowable(
                f"its channels reach {name or 'an operation'}, which channel pruning cannot follow"
            )

    # -- labels -----------------------------------------------------------------------------
    def label(self, tensor: torch.Tensor) -> np.ndarray:
        """The atoms of ``tensor``'s channels; tensors from outside get blocked atoms."""
        key = id(tensor)
        if key not in self.labels:
            channels = tensor.shape[1] if tensor.dim() >= 2 else 1
            self._set(
                tensor, self.atoms.new(channels, "its channels come from outside the traced layers")
            )
        return self.labels[key]

    def _set(self, tensor: torch.Tensor, atoms: np.ndarray) -> None:
        key = id(tensor)
        if key not in self.labels:  # labels live as long as the tensor: memory stays that of
            weakref.finalize(tensor, self._forget, key)  # a plain forward pass
        self.labels[key] = atoms

    def _forget(self, key: int) -> None:
        if key in self.pending:
            self._settle(key)
        self.labels.pop(key, None)
        self.uses.pop(key, None)
        self.readers.pop(key, None)

    def _settle(self, key: int) -> None:
        """A conv output is done: its BN covers it only if the BN was its one and only reader."""
        name, atoms = self.pending.pop(key)
        readers = self.readers.get(key, [])
        if len(readers) == 1 and self.uses.get(key, 0) == 1:
            self.bn_after[name] = readers[0]
        else:
            self.atoms.block(
                atoms.tolist(),
                f"coupled with {name!r}, whose output has no BatchNorm of its own to zero",
            )

    def _fresh(self, out: Any, reason: str) -> None:
        for tensor in tensors_in(out):
            channels = tensor.shape[1] if tensor.dim() >= 2 else 1
            self._set(tensor, self.atoms.new(channels, reason))

    def _block_inputs(self, args: Any, reason: str) -> None:
        for tensor in tensors_in(args):
            if id(tensor) in self.labels:
                self.atoms.block(self.labels[id(tensor)].tolist(), reason)

    # -- layers -----------------------------------------------------------------------------
    def _module(self, weight: Any) -> tuple[str, nn.Module]:
        found = self.owner.get(id(weight)) if isinstance(weight, torch.Tensor) else None
        if found is None:
            raise Unfollowable(
                "it is read by a convolution or linear map that is not a layer of the model"
            )
        return found

    def _conv(self, args: Any, out: torch.Tensor) -> None:
        x, weight = args[0], args[1]
        name, conv = self._module(weight)
        labels = self.label(x)
        groups = conv.groups
        if groups == 1:
            self._read(labels, name)
            self._produce(out, name)
            return
        produced = self._produce(out, name)
        # a grouped conv keeps equal groups only if whole groups go: the group's input and output
        # channels form one unit (depthwise: one channel in, one out)
        for inputs, outputs in zip(
            np.split(labels, groups), np.split(produced, groups), strict=True
        ):
            unit = np.concatenate([inputs, outputs])
            self.atoms.unite(np.repeat(unit[:1], unit.size - 1), unit[1:])
        self.grouped[name] = groups

    def _linear(self, args: Any, out: torch.Tensor) -> None:
        x, weight = args[0], args[1]
        name, _ = self._module(weight)
        if x.dim() != 2:
            raise Unfollowable(
                f"its channels reach the linear layer {name!r} along an axis "
                "other than the features"
            )
        self._read(self.label(x), name)
        self._produce(out, name)

    def _read(self, labels: np.ndarray, name: str) -> None:
        for index, atom in enumerate(labels.tolist()):
            self.atoms.sites[atom].append(Site(name, "in", index))

    def _produce(self, out: torch.Tensor, name: str) -> np.ndarray:
        atoms = self.atoms.new(out.shape[1])
        for index, atom in enumerate(atoms.tolist()):
            self.atoms.sites[atom].append(Site(name, "out", index))
        self._once(name, atoms)
        self._set(out, atoms)
        self.pending[id(out)] = (name, atoms)
        return atoms

    def _once(self, name: str, atoms: np.ndarray) -> None:
        """A layer run twice cuts the same channels on both calls: unite them."""
        first = self.produced.setdefault(name, atoms)
        if first is not atoms:
            self.atoms.unite(first, atoms)

    def _batch_norm(self, args: Any, kwargs: Any, out: torch.Tensor) -> None:
        x = args[0]
        weight = args[3] if len(args) > 3 else kwargs.get("weight")
        running = args[1] if len(args) > 1 else kwargs.get("running_mean")
        found = self.owner.get(id(weight)) or self.owner.get(id(running))
        if found is None or not isinstance(found[1], _BatchNorm):
            raise Unfollowable("its channels reach a batch norm that is not a layer of the model")
        name = found[0]
        labels = self.label(x)
        if name in self.layout.names:
            atoms = self.atoms.new(out.shape[1])
            self.layout_atoms.setdefault(name, atoms)
        else:
            atoms = self.atoms.new(
                out.shape[1], f"coupled with BN {name!r}, which is not in the layout"
            )
        for index, atom in enumerate(atoms.tolist()):
            self.atoms.sites[atom].append(Site(name, "out", index))
        self._once(name, atoms)
        self.atoms.unite(atoms, labels)
        self.readers.setdefault(id(x), []).append(name)
        self._set(out, labels)

    # -- results ----------------------------------------------------------------------------
    def finish(self, out: Any) -> None:
        """Block what reaches the output and conv outputs that their BN does not cover."""
        for tensor in tensors_in(out):
            self.atoms.block(self.label(tensor).tolist(), "its channels reach the model's output")
        self.shapes.flush()
        for key in list(self.pending):
            self._settle(key)

    def result(self) -> ChannelFlow:
        find = self.atoms.find
        reasons, sites, routed = self.atoms.reason, self.atoms.sites, self.atoms.routed
        roots = [find(i) for i in range(len(self.atoms.parent))]
        blocked: dict[int, str] = {}
        set_sites: dict[int, list[Site]] = {}
        set_routed: set[int] = set()
        for atom, root in enumerate(roots):
            if reasons[atom] is not None and root not in blocked:
                blocked[root] = reasons[atom]
            set_sites.setdefault(root, []).extend(sites[atom])
            if routed[atom]:
                set_routed.add(root)
        root = np.full(self.layout.total, -1, dtype=np.int64)
        bns: dict[int, list[str]] = {}
        unreached = []
        for name in self.layout.names:
            atoms = self.layout_atoms.get(name)
            if atoms is None:
                unreached.append(name)
                continue
            mine = np.array([roots[a] for a in atoms.tolist()], dtype=np.int64)
            root[self.layout.slice(name)] = mine
            for r in set(mine.tolist()):
                bns.setdefault(r, []).append(name)
        used = set(root.tolist())
        return ChannelFlow(
            self.layout,
            root,
            {r: blocked[r] for r in used if r in blocked},
            set_routed & used,
            bns,
            {r: set_sites[r] for r in used if r >= 0},
            dict(self.bn_after),
            unreached,
        )
