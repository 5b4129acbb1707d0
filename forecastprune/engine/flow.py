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
* comes from a conv/linear output that is used other than through its BatchNorm (a zero γ
  would not silence it), from a BN outside the layout, or from outside the traced layers.

Everything the tracer cannot follow therefore ends as a *reason*, never as an exception or a
hang: the pass costs one forward at the example input's size.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.overrides import TorchFunctionMode

from ..store.layout import ChannelLayout

#: channel-wise operations: one tensor in, same channels out
_UNARY = frozenset({
    "relu", "relu_", "relu6", "silu", "silu_", "sigmoid", "sigmoid_", "tanh", "tanh_", "hardswish",
    "hardswish_", "hardsigmoid", "hardtanh", "hardtanh_", "leaky_relu", "leaky_relu_", "gelu",
    "elu", "elu_", "selu", "celu", "mish", "softplus", "prelu_scalar", "dropout", "dropout1d",
    "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout", "clone", "contiguous",
    "detach", "float", "double", "half", "bfloat16", "to", "type", "abs", "neg", "__neg__", "exp",
    "sqrt", "rsqrt", "square", "clamp", "clamp_", "clip", "__pos__", "identity",
    "max_pool1d", "max_pool2d", "max_pool3d", "_max_pool1d", "_max_pool2d", "_max_pool3d",
    "avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
    "adaptive_avg_pool3d", "adaptive_max_pool1d", "adaptive_max_pool2d", "_adaptive_max_pool2d",
    "interpolate", "upsample", "upsample_nearest", "upsample_bilinear", "pixel_dropout",
})
#: channel-wise combinations of tensors (broadcasting), or with scalars
_BINARY = frozenset({
    "add", "add_", "__add__", "__radd__", "__iadd__", "sub", "sub_", "__sub__", "__rsub__",
    "__isub__", "mul", "mul_", "__mul__", "__rmul__", "__imul__", "div", "div_", "__truediv__",
    "__rtruediv__", "__itruediv__", "true_divide", "maximum", "minimum", "pow", "__pow__",
})
_RESHAPE = frozenset({"view", "reshape", "flatten", "squeeze", "unsqueeze", "unflatten",
                      "view_as", "reshape_as", "expand", "expand_as", "squeeze_", "unsqueeze_"})
_PERMUTE = frozenset({"permute", "transpose", "swapaxes", "swapdims", "movedim", "moveaxis"})
_SPLIT = frozenset({"chunk", "split", "split_with_sizes", "tensor_split", "unbind"})
_CAT = frozenset({"cat", "concat", "concatenate"})
_REDUCE = frozenset({"mean", "sum", "amax", "amin", "std", "var"})
_SOFTMAX = frozenset({"softmax", "log_softmax", "normalize"})
#: operations that read only a tensor's shape, dtype or device
_CREATE = frozenset({"zeros_like", "ones_like", "empty_like", "full_like", "rand_like",
                     "randn_like", "new_zeros", "new_ones", "new_empty", "new_full", "new_tensor"})


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


def trace_flow(model: nn.Module, example_inputs: tuple[Any, ...], layout: ChannelLayout,
               ) -> ChannelFlow:
    """Run ``model`` once in eval mode (no grad) and follow the layout's channels.

    Args:
        model: the model; its train/eval flags are restored and nothing else changes.
        example_inputs: positional inputs for one forward pass.
        layout: the BN layers whose channels to follow.

    Returns:
        The :class:`ChannelFlow`.
    """
    flags = {module: module.training for module in model.modules()}
    tracer = _Tracer(model, layout)
    try:
        model.eval()
        with torch.no_grad(), tracer, running_layer(model):
            out = model(*example_inputs)
        tracer.finish(out)
    finally:
        for module, flag in flags.items():
            module.training = flag
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

    handles = [h for name, module in model.named_modules() if name
               for h in (module.register_forward_pre_hook(enter(name)),
                         module.register_forward_hook(leave))]
    try:
        yield
    except Exception as exc:
        if stack and not hasattr(exc, "layer"):
            exc.layer = stack[-1]  # type: ignore[attr-defined]
        raise
    finally:
        for handle in handles:
            handle.remove()


class _Atoms:
    """A union-find over channel atoms, each with its cut sites and flags."""

    def __init__(self) -> None:
        self.parent: list[int] = []
        self.reason: list[str | None] = []
        self.sites: list[list[Site]] = []
        self.routed: list[bool] = []

    def new(self, n: int, reason: str | None = None) -> np.ndarray:
        start = len(self.parent)
        self.parent.extend(range(start, start + n))
        self.reason.extend([reason] * n)
        self.sites.extend([] for _ in range(n))
        self.routed.extend([False] * n)
        return np.arange(start, start + n, dtype=np.int64)

    def find(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]  # path halving keeps the trees flat
            i = parent[i]
        return i

    def unite(self, a: np.ndarray, b: np.ndarray) -> None:
        for x, y in zip(a.tolist(), b.tolist(), strict=True):
            rx, ry = self.find(x), self.find(y)
            if rx != ry:
                self.parent[ry] = rx

    def block(self, atoms: Iterable[int], reason: str) -> None:
        for atom in atoms:
            if self.reason[atom] is None:
                self.reason[atom] = reason


class _Tracer(TorchFunctionMode):
    """Labels every tensor's channels with atoms while the model runs."""

    def __init__(self, model: nn.Module, layout: ChannelLayout) -> None:
        super().__init__()
        self.layout = layout
        self.atoms = _Atoms()
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

    # -- the hook ---------------------------------------------------------------------------
    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if name == "__setitem__":
            self._block_inputs(args, "it is written into another tensor by indexing")
            return out
        if next(tensors_in(out), None) is None or name in _CREATE:
            return out  # metadata reads (shape, dtype) and tensors built from a shape only
        for tensor in tensors_in((args[:1], kwargs) if name == "type_as" else (args, kwargs)):
            if id(tensor) in self.labels:
                self.uses[id(tensor)] = self.uses.get(id(tensor), 0) + 1
        try:
            self._dispatch(name, args, kwargs, out)
        except _Unfollowable as exc:
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
        elif name in _UNARY:
            self._pass(x, out, name)
        elif name == "type_as":  # reads only the other tensor's dtype
            self._set(out, self.label(x))
        elif name in _BINARY:
            self._binary(args, out, name)
        elif name in _CAT:
            self._cat(args, kwargs, out)
        elif name in _SPLIT:
            self._split(x, _dim_arg(args, kwargs, 1 if name == "unbind" else 2, 0), out, name)
        elif name == "__getitem__":
            self._getitem(x, args[1], out)
        elif name in _RESHAPE:
            self._reshape(x, out, name)
        elif name in _PERMUTE:
            self._permute(x, args, kwargs, out, name)
        elif name in _REDUCE:
            self._reduce(x, _dim_arg(args, kwargs, 1, None), out, name)
        elif name in _SOFTMAX:
            dim = _dim_arg(args, kwargs, 1, None)
            if dim is None or _norm_dim(dim, x.dim()) == 1:
                raise _Unfollowable(f"its channels reach {name} across channels")
            self._pass(x, out, name)
        elif name == "pad":
            pad = args[1] if len(args) > 1 else kwargs["pad"]
            if len(pad) > 2 * (x.dim() - 2):
                raise _Unfollowable("it is padded along the channel axis")
            self._pass(x, out, name)
        else:
            raise _Unfollowable(f"its channels reach {name or 'an operation'}, which channel "
                                "pruning cannot follow")

    # -- labels -----------------------------------------------------------------------------
    def label(self, tensor: torch.Tensor) -> np.ndarray:
        """The atoms of ``tensor``'s channels; tensors from outside get blocked atoms."""
        key = id(tensor)
        if key not in self.labels:
            channels = tensor.shape[1] if tensor.dim() >= 2 else 1
            self._set(tensor, self.atoms.new(channels, "its channels come from outside the "
                                                        "traced layers"))
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
            self.atoms.block(atoms.tolist(), f"coupled with {name!r}, whose output has no "
                                             "BatchNorm of its own to zero")

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
            raise _Unfollowable("it is read by a convolution or linear map that is not a layer "
                                "of the model")
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
        for inputs, outputs in zip(np.split(labels, groups), np.split(produced, groups),
                                   strict=True):
            unit = np.concatenate([inputs, outputs])
            self.atoms.unite(np.repeat(unit[:1], unit.size - 1), unit[1:])
        self.grouped[name] = groups

    def _linear(self, args: Any, out: torch.Tensor) -> None:
        x, weight = args[0], args[1]
        name, _ = self._module(weight)
        if x.dim() != 2:
            raise _Unfollowable(f"its channels reach the linear layer {name!r} along an axis "
                                "other than the features")
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
            raise _Unfollowable("its channels reach a batch norm that is not a layer of the model")
        name = found[0]
        labels = self.label(x)
        if name in self.layout.names:
            atoms = self.atoms.new(out.shape[1])
            self.layout_atoms.setdefault(name, atoms)
        else:
            atoms = self.atoms.new(out.shape[1], f"coupled with BN {name!r}, which is not in "
                                                 "the layout")
        for index, atom in enumerate(atoms.tolist()):
            self.atoms.sites[atom].append(Site(name, "out", index))
        self._once(name, atoms)
        self.atoms.unite(atoms, labels)
        self.readers.setdefault(id(x), []).append(name)
        self._set(out, labels)

    # -- channel movers ---------------------------------------------------------------------
    def _pass(self, x: Any, out: Any, name: str) -> None:
        if not isinstance(x, torch.Tensor):
            raise _Unfollowable(f"{name} takes no tensor first")
        labels = self.label(x)
        for tensor in tensors_in(out):
            if tensor.dim() < 2 or tensor.shape[1] != labels.size:
                raise _Unfollowable(f"{name} changes the channel axis")
            self._set(tensor, labels)

    def _binary(self, args: Any, out: Any, name: str) -> None:
        if not isinstance(out, torch.Tensor) or out.dim() < 2:
            raise _Unfollowable(f"its channels reach {name} without a channel axis")
        aligned = []
        for operand in args[:2]:
            if not isinstance(operand, torch.Tensor):
                continue
            axis = 1 - (out.dim() - operand.dim())
            if axis < 0 or operand.shape[axis] == 1:
                continue  # broadcast along the channels: every channel sees the same value
            if axis != 1:
                raise _Unfollowable(f"{name} aligns channels with another axis")
            aligned.append(self.label(operand))
        if not aligned:
            raise _Unfollowable(f"{name} broadcasts a tensor without channels")
        for other in aligned[1:]:
            self.atoms.unite(aligned[0], other)
        self._set(out, aligned[0])

    def _cat(self, args: Any, kwargs: Any, out: torch.Tensor) -> None:
        tensors = list(args[0]) if args else list(kwargs["tensors"])
        dim = _norm_dim(_dim_arg(args, kwargs, 1, 0), out.dim())
        labels = [self.label(t) for t in tensors]
        if dim == 1:
            joined = np.concatenate(labels)
            self._route(joined)
            self._set(out, joined)
        elif dim == 0 or out.dim() < 2:
            raise _Unfollowable("its channels are concatenated along the batch axis")
        else:
            for other in labels[1:]:
                self.atoms.unite(labels[0], other)
            self._set(out, labels[0])

    def _split(self, x: torch.Tensor, dim: int, out: Any, name: str) -> None:
        labels = self.label(x)
        dim = _norm_dim(dim, x.dim())
        parts = list(tensors_in(out))
        if dim != 1:
            for part in parts:
                if part.dim() != x.dim() and dim < 2:
                    raise _Unfollowable("its batch axis is unbound")
                self._set(part, labels)
            return
        widths = [part.shape[1] for part in parts]
        if name != "chunk" or any(part.dim() != x.dim() for part in parts) \
                or len(set(widths)) != 1:
            raise _Unfollowable(
                f"its channels are split into fixed sizes {widths} by {name}; pruning would "
                "change the sizes the model splits by")
        # chunk splits whatever width it gets evenly: channel k of every chunk goes together,
        # so every chunk keeps the same channels and the pruned tensor still splits right
        pieces = np.split(labels, len(parts))
        for piece in pieces[1:]:
            self.atoms.unite(pieces[0], piece)
        self._route(labels)
        for part, piece in zip(parts, pieces, strict=True):
            self._set(part, piece)

    def _getitem(self, x: torch.Tensor, index: Any, out: Any) -> None:
        if not isinstance(out, torch.Tensor) or not isinstance(x, torch.Tensor):
            raise _Unfollowable("it is indexed")
        items = list(index) if isinstance(index, tuple) else [index]
        if Ellipsis in items:
            at = items.index(Ellipsis)
            items[at:at + 1] = [slice(None)] * (x.dim() - len(items) + 1)
        items += [slice(None)] * (x.dim() - len(items))
        if not all(isinstance(i, slice) for i in items[:2]) or items[0] != slice(None) \
                or items[1].step not in (None, 1):
            raise _Unfollowable("it is indexed along the batch or channel axis")
        labels = self.label(x)
        if out.dim() < 2 or out.shape[1] != labels.size:
            # fixed slice bounds would select other channels once some are pruned
            raise _Unfollowable("its channels are sliced by fixed bounds")
        self._set(out, labels)

    def _reshape(self, x: torch.Tensor, out: torch.Tensor, name: str) -> None:
        labels = self.label(x)
        shape_in, shape_out = tuple(x.shape), tuple(out.shape)
        if len(shape_out) >= 2 and shape_out[:2] == shape_in[:2]:
            self._set(out, labels)  # only the positions are regrouped
            return
        spatial = int(np.prod(shape_in[2:], dtype=np.int64))
        if len(shape_out) == 2 and shape_out == (shape_in[0], shape_in[1] * spatial):
            self._set(out, np.repeat(labels, spatial))  # flatten: channel-major features
            return
        raise _Unfollowable(
            f"its channels are rearranged by {name} from {list(shape_in)} to {list(shape_out)} "
            "(e.g. split into attention heads or shuffled), which channel pruning cannot follow")

    def _permute(self, x: torch.Tensor, args: Any, kwargs: Any, out: torch.Tensor,
                 name: str) -> None:
        dims = [_norm_dim(d, x.dim()) for d in _flat_ints([*args[1:], *kwargs.values()])]
        keeps = dims[:2] == [0, 1] if name == "permute" else not {0, 1} & set(dims)
        if not keeps:
            raise _Unfollowable(f"its channel axis is moved by {name}")
        self._set(out, self.label(x))

    def _reduce(self, x: torch.Tensor, dim: Any, out: Any, name: str) -> None:
        if dim is None:
            raise _Unfollowable(f"its channels are reduced by {name}")
        dims = {_norm_dim(d, x.dim()) for d in _flat_ints([dim])}
        if dims & {0, 1}:
            raise _Unfollowable(f"{name} reduces the batch or channel axis")
        self._pass(x, out, name)

    def _route(self, labels: np.ndarray) -> None:
        for atom in labels.tolist():
            self.atoms.routed[atom] = True

    # -- results ----------------------------------------------------------------------------
    def finish(self, out: Any) -> None:
        """Block what reaches the output and conv outputs that their BN does not cover."""
        for tensor in tensors_in(out):
            self.atoms.block(self.label(tensor).tolist(), "its channels reach the model's output")
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
        return ChannelFlow(self.layout, root, {r: blocked[r] for r in used if r in blocked},
                           set_routed & used, bns, {r: set_sites[r] for r in used if r >= 0},
                           dict(self.bn_after), unreached)


class _Unfollowable(Exception):
    """An operation the tracer cannot follow channel by channel (becomes a block reason)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def tensors_in(obj: Any) -> Iterator[torch.Tensor]:
    """Every tensor in a nested structure of tuples, lists and dicts (outputs included)."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from tensors_in(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            yield from tensors_in(value)


def output_signature(obj: Any, path: str = "") -> list[tuple[str, tuple[int, ...]]]:
    """(path, shape) of every tensor in a nested output structure, e.g. ``[1]['feats'][0]``."""
    if isinstance(obj, torch.Tensor):
        return [(path, tuple(obj.shape))]
    if isinstance(obj, dict):
        return [e for k, v in obj.items() for e in output_signature(v, f"{path}[{k!r}]")]
    if isinstance(obj, (list, tuple)):
        return [e for i, v in enumerate(obj) for e in output_signature(v, f"{path}[{i}]")]
    return []


def _dim_arg(args: Any, kwargs: Any, position: int, default: Any) -> Any:
    if "dim" in kwargs:
        return kwargs["dim"]
    return args[position] if len(args) > position else default


def _norm_dim(dim: int, ndim: int) -> int:
    return dim + ndim if dim < 0 else dim


def _flat_ints(values: Iterable[Any]) -> list[int]:
    flat: list[int] = []
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool):
            flat.append(value)
        elif isinstance(value, (list, tuple, torch.Size)):
            flat.extend(_flat_ints(value))
    return flat

