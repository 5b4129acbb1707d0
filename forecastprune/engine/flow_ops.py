"""The pieces of the channel flow (:mod:`.flow`) that do not depend on the tracer's state.

- which torch operations are channel-wise, combine channels, regroup or reduce them;
- :class:`Atoms`, the union-find over channel atoms with their cut sites and block reasons;
- :class:`ChannelMoves`, the rules for operations that only move channels (activations,
  ``+``/``*``, ``cat``, ``chunk``, slices, reshapes, permutes, reductions), mixed into the
  tracer;
- small helpers over nested tensor structures and dim arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from .flow import Site

#: channel-wise operations: one tensor in, same channels out
UNARY = frozenset(
    {
        "relu",
        "relu_",
        "relu6",
        "silu",
        "silu_",
        "sigmoid",
        "sigmoid_",
        "tanh",
        "tanh_",
        "hardswish",
        "hardswish_",
        "hardsigmoid",
        "hardtanh",
        "hardtanh_",
        "leaky_relu",
        "leaky_relu_",
        "gelu",
        "elu",
        "elu_",
        "selu",
        "celu",
        "mish",
        "softplus",
        "prelu_scalar",
        "dropout",
        "dropout1d",
        "dropout2d",
        "dropout3d",
        "alpha_dropout",
        "feature_alpha_dropout",
        "clone",
        "contiguous",
        "detach",
        "float",
        "double",
        "half",
        "bfloat16",
        "to",
        "type",
        "abs",
        "neg",
        "__neg__",
        "exp",
        "sqrt",
        "rsqrt",
        "square",
        "clamp",
        "clamp_",
        "clip",
        "__pos__",
        "identity",
        "max_pool1d",
        "max_pool2d",
        "max_pool3d",
        "_max_pool1d",
        "_max_pool2d",
        "_max_pool3d",
        "avg_pool1d",
        "avg_pool2d",
        "avg_pool3d",
        "adaptive_avg_pool1d",
        "adaptive_avg_pool2d",
        "adaptive_avg_pool3d",
        "adaptive_max_pool1d",
        "adaptive_max_pool2d",
        "_adaptive_max_pool2d",
        "interpolate",
        "upsample",
        "upsample_nearest",
        "upsample_bilinear",
        "pixel_dropout",
    }
)
#: channel-wise combinations of tensors (broadcasting), or with scalars
BINARY = frozenset(
    {
        "add",
        "add_",
        "__add__",
        "__radd__",
        "__iadd__",
        "sub",
        "sub_",
        "__sub__",
        "__rsub__",
        "__isub__",
        "mul",
        "mul_",
        "__mul__",
        "__rmul__",
        "__imul__",
        "div",
        "div_",
        "__truediv__",
        "__rtruediv__",
        "__itruediv__",
        "true_divide",
        "maximum",
        "minimum",
        "pow",
        "__pow__",
    }
)
RESHAPE = frozenset(
    {
        "view",
        "reshape",
        "flatten",
        "squeeze",
        "unsqueeze",
        "unflatten",
        "view_as",
        "reshape_as",
        "expand",
        "expand_as",
        "squeeze_",
        "unsqueeze_",
    }
)
PERMUTE = frozenset({"permute", "transpose", "swapaxes", "swapdims", "movedim", "moveaxis"})
SPLIT = frozenset({"chunk", "split", "split_with_sizes", "tensor_split", "unbind"})
CAT = frozenset({"cat", "concat", "concatenate"})
REDUCE = frozenset({"mean", "sum", "amax", "amin", "std", "var"})
SOFTMAX = frozenset({"softmax", "log_softmax", "normalize"})
#: operations that read only a tensor's shape, dtype or device
CREATE = frozenset(
    {
        "zeros_like",
        "ones_like",
        "empty_like",
        "full_like",
        "rand_like",
        "randn_like",
        "new_zeros",
        "new_ones",
        "new_empty",
        "new_full",
        "new_tensor",
    }
)


class Atoms:
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


class ChannelMoves:
    """Tracer rules for operations that move channels without weights of their own.

    Mixed into the tracer, which provides ``atoms`` (:class:`Atoms`), ``label(tensor)`` and
    ``_set(tensor, atoms)``.
    """

    atoms: Atoms

    def label(self, tensor: torch.Tensor) -> np.ndarray:  # provided by the tracer
        raise NotImplementedError

    def _set(self, tensor: torch.Tensor, atoms: np.ndarray) -> None:  # provided by the tracer
        raise NotImplementedError

    def _pass(self, x: Any, out: Any, name: str) -> None:
        if not isinstance(x, torch.Tensor):
            raise Unfollowable(f"{name} takes no tensor first")
        labels = self.label(x)
        for tensor in tensors_in(out):
            if tensor.dim() < 2 or tensor.shape[1] != labels.size:
                raise Unfollowable(f"{name} changes the channel axis")
            self._set(tensor, labels)

    def _binary(self, args: Any, out: Any, name: str) -> None:
        if not isinstance(out, torch.Tensor) or out.dim() < 2:
            raise Unfollowable(f"its channels reach {name} without a channel axis")
        aligned = []
        for operand in args[:2]:
            if not isinstance(operand, torch.Tensor):
                continue
            axis = 1 - (out.dim() - operand.dim())
            if axis < 0 or operand.shape[axis] == 1:
                continue  # broadcast along the channels: every channel sees the same value
            if axis != 1:
                raise Unfollowable(f"{name} aligns channels with another axis")
            aligned.append(self.label(operand))
        if not aligned:
            raise Unfollowable(f"{name} broadcasts a tensor without channels")
        for other in aligned[1:]:
            self.atoms.unite(aligned[0], other)
        self._set(out, aligned[0])

    def _cat(self, args: Any, kwargs: Any, out: torch.Tensor) -> None:
        tensors = list(args[0]) if args else list(kwargs["tensors"])
        dim = norm_dim(dim_arg(args, kwargs, 1, 0), out.dim())
        labels = [self.label(t) for t in tensors]
        if dim == 1:
            joined = np.concatenate(labels)
            self._route(joined)
            self._set(out, joined)
        elif dim == 0 or out.dim() < 2:
            raise Unfollowable("its channels are concatenated along the batch axis")
        else:
            for other in labels[1:]:
                self.atoms.unite(labels[0], other)
            self._set(out, labels[0])

    def _split(self, x: torch.Tensor, dim: int, out: Any, name: str) -> None:
        labels = self.label(x)
        dim = norm_dim(dim, x.dim())
        parts = list(tensors_in(out))
        if dim != 1:
            for part in parts:
                if part.dim() != x.dim() and dim < 2:
                    raise Unfollowable("its batch axis is unbound")
                self._set(part, labels)
            return
        widths = [part.shape[1] for part in parts]
        if name != "chunk" or any(part.dim() != x.dim() for part in parts) or len(set(widths)) != 1:
            raise Unfollowable(
                f"its channels are split into fixed sizes {widths} by {name}; pruning would "
                "change the sizes the model splits by"
            )
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
            raise Unfollowable("it is indexed")
        items = list(index) if isinstance(index, tuple) else [index]
        if Ellipsis in items:
            at = items.index(Ellipsis)
            items[at : at + 1] = [slice(None)] * (x.dim() - len(items) + 1)
        items += [slice(None)] * (x.dim() - len(items))
        if (
            not all(isinstance(i, slice) for i in items[:2])
            or items[0] != slice(None)
            or items[1].step not in (None, 1)
        ):
            raise Unfollowable("it is indexed along the batch or channel axis")
        labels = self.label(x)
        if out.dim() < 2 or out.shape[1] != labels.size:
            # fixed slice bounds would select other channels once some are pruned
            raise Unfollowable("its channels are sliced by fixed bounds")
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
        raise Unfollowable(
            f"its channels are rearranged by {name} from {list(shape_in)} to {list(shape_out)} "
            "(e.g. split into attention heads or shuffled), which channel pruning cannot follow"
        )

    def _permute(
        self, x: torch.Tensor, args: Any, kwargs: Any, out: torch.Tensor, name: str
    ) -> None:
        dims = [norm_dim(d, x.dim()) for d in flat_ints([*args[1:], *kwargs.values()])]
        keeps = dims[:2] == [0, 1] if name == "permute" else not {0, 1} & set(dims)
        if not keeps:
            raise Unfollowable(f"its channel axis is moved by {name}")
        self._set(out, self.label(x))

    def _reduce(self, x: torch.Tensor, dim: Any, out: Any, name: str) -> None:
        if dim is None:
            raise Unfollowable(f"its channels are reduced by {name}")
        dims = {norm_dim(d, x.dim()) for d in flat_ints([dim])}
        if dims & {0, 1}:
            raise Unfollowable(f"{name} reduces the batch or channel axis")
        self._pass(x, out, name)

    def _route(self, labels: np.ndarray) -> None:
        for atom in labels.tolist():
            self.atoms.routed[atom] = True


class Unfollowable(Exception):
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


def dim_arg(args: Any, kwargs: Any, position: int, default: Any) -> Any:
    if "dim" in kwargs:
        return kwargs["dim"]
    return args[position] if len(args) > position else default


def norm_dim(dim: int, ndim: int) -> int:
    return dim + ndim if dim < 0 else dim


def flat_ints(values: Iterable[Any]) -> list[int]:
    flat: list[int] = []
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool):
            flat.append(value)
        elif isinstance(value, (list, tuple, torch.Size)):
            flat.extend(flat_ints(value))
    return flat
