"""Residual blocks that can be removed whole: depth pruning, planned from the traced forward.

Channel pruning thins layers, but per-layer costs (BN and activation passes, kernel launches,
Python calls) stay, so latency falls less than MACs. A residual block ``y = x + f(x)`` whose
branch ``f`` ends in a BatchNorm (then, optionally, an activation with ``act(0) = 0``) outputs
exactly ``x`` once that BN has γ = β = 0, and can then be removed whole — the YOLOv3 pruning
projects' *layer pruning*.

Blocks are found from what the model runs, not from class names: :func:`plan_blocks` runs the
channel tracer of :mod:`~forecastprune.engine.flow` once, recording besides the channel flow
every torch operation (with its tensors) and every module call. A module is a **block** when

* its output is made, in its own ``forward``, by an ``add`` of its input (the very tensor it
  was called with: an identity shortcut) and a branch, optionally followed by a ReLU (ResNet's
  ``relu(out + identity)``);
* the branch ends in a BatchNorm inside the module, after which only activations with
  ``act(0) = 0`` (ReLU, LeakyReLU, SiLU, GELU, ...) run; that BN *scores* the block;
* it runs once per forward.

How a block goes (:attr:`Block.mode`), chosen so the cut stays exact and the model's code
still runs:

* ``delete`` — it sits in an ``nn.Sequential`` that is itself called: the entry is removed
  (the other entries keep their names, so layouts and stores still match);
* ``fold`` — it sits in an ``nn.ModuleList`` whose outputs are concatenated with its input
  and read by one conv (ultralytics C2f/C3k2: ``cv2(cat([a, b, m0(b), m1(...)]))``): the entry
  is removed and its columns of that conv are added to its input's columns, which is exact
  because the two slots carried the same tensor;
* ``identity`` — anywhere else (e.g. ultralytics' top-level layer list): an ``nn.Identity``
  takes its place, keeping the plain attributes (``f``, ``i``, ...) its container reads;
* ``relu`` — a ReLU after the add whose input is not provably non-negative: an ``nn.ReLU``
  takes its place (when the input comes from a ReLU, as in ResNets, the block just goes).

Modules that add a residual but cannot go get a reason in :attr:`BlockPlan.reasons`.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..core.bn_layers import unwrap_model
from ..core.layout import ChannelLayout
from ..core.modes import eval_mode
from ..errors import PruningError
from .coupling import as_args, check_layout, default_layout
from .flow import _Tracer, running_layer
from .flow_ops import CAT, tensors_in

__all__ = ["Block", "BlockPlan", "Fold", "plan_blocks"]

#: the residual add (``out += identity`` included)
ADDS = frozenset({"add", "add_", "__add__", "__radd__", "__iadd__"})
#: activations with act(0) = 0: a zeroed BN stays zero through them
ZERO_ACTS = frozenset(
    {
        "relu",
        "relu_",
        "relu6",
        "silu",
        "silu_",
        "leaky_relu",
        "leaky_relu_",
        "hardswish",
        "hardswish_",
        "gelu",
        "tanh",
        "tanh_",
        "mish",
        "elu",
        "elu_",
        "selu",
        "celu",
        "hardtanh",
        "hardtanh_",
        "dropout",
        "dropout2d",
        "identity",
        "clone",
        "contiguous",
    }
)
RELUS = frozenset({"relu", "relu_"})
#: outputs that are never negative, and operations that keep a non-negative input so
_NONNEG = frozenset({"relu", "relu_", "relu6", "sigmoid", "sigmoid_", "softmax", "abs"})
_KEEPS_SIGN = frozenset(
    {
        "max_pool1d",
        "max_pool2d",
        "max_pool3d",
        "_max_pool2d",
        "adaptive_max_pool2d",
        "avg_pool2d",
        "adaptive_avg_pool2d",
        "interpolate",
        "clone",
        "contiguous",
        "dropout",
    }
)
MODES = ("delete", "fold", "identity", "relu")
_CONVS = frozenset({"conv1d", "conv2d", "conv3d"})


@dataclass(frozen=True)
class Fold:
    """The concat slots a ``fold`` removal merges: columns of ``conv`` read by the block.

    Attributes:
        conv: the conv reading the concat.
        source: first input channel of the block's output slot (removed).
        target: first input channel of the block's input slot (receives the columns).
        width: channels per slot.
    """

    conv: str
    source: int
    target: int
    width: int


@dataclass(frozen=True)
class Block:
    """One removable residual block.

    Attributes:
        name: the module's qualified name.
        bn: the BN ending its branch; the block is zero when this BN has γ = β = 0.
        mode: how it is removed (``delete``, ``fold``, ``identity`` or ``relu``).
        params: parameters removed with it.
        fold: the conv columns merged for a ``fold`` removal, else None.
    """

    name: str
    bn: str
    mode: str
    params: int
    fold: Fold | None = None


@dataclass(frozen=True)
class BlockPlan:
    """The residual blocks of a model that can be removed exactly.

    Attributes:
        layout: the BN layers that may score blocks.
        blocks: the removable blocks, in the order the forward pass finishes them.
        reasons: module name -> why a module with a residual add cannot be removed.
    """

    layout: ChannelLayout
    blocks: tuple[Block, ...]
    reasons: dict[str, str] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        """The removable blocks' module names."""
        return tuple(block.name for block in self.blocks)

    def get(self, name: str) -> Block:
        """The block called ``name``.

        Raises:
            KeyError: with the valid names (and the reason, if the module cannot go).
        """
        for block in self.blocks:
            if block.name == name:
                return block
        why = self.reasons.get(name)
        raise KeyError(
            f"{name!r} is not a removable block ({why})"
            if why
            else f"{name!r} is not a removable block; removable: {list(self.names)[:8]}"
        )


def plan_blocks(
    model: nn.Module,
    example_inputs: Any,
    layout: ChannelLayout | None = None,
) -> BlockPlan:
    """Find the residual blocks of ``model`` that can be removed when their branch is zero.

    Args:
        model: the model (not modified; its train/eval flags are restored).
        example_inputs: inputs for one forward pass (small ones are fine).
        layout: the BN layers that may score a block (a block scored by another BN gets a
            reason); by default every affine BN.

    Returns:
        The :class:`BlockPlan`.

    Raises:
        LayoutError: if the layout names layers the model does not have.
        PruningError: if the forward pass fails on ``example_inputs``.
    """
    model = unwrap_model(model)
    layout = default_layout(model) if layout is None else layout
    check_layout(model, layout)
    trace = _trace(model, as_args(example_inputs), layout)
    return _Analysis(model, trace, layout).plan()


# -- recording ---------------------------------------------------------------------------------
@dataclass
class _Event:
    """One torch operation: its inputs and outputs (strong references) and who ran it."""

    name: str
    ins: tuple[torch.Tensor, ...]
    outs: tuple[torch.Tensor, ...]
    owner: str
    layer: str  # the BN or conv whose weights it used, else ""
    operands: tuple[torch.Tensor, ...]  # cat: the tensors concatenated, in order


@dataclass
class _Call:
    """One module call: first tensor in, the tensor out, and its span of events."""

    name: str
    x: torch.Tensor | None
    out: torch.Tensor | None
    start: int
    end: int = -1


class _BlockTracer(_Tracer):
    """The channel tracer, also keeping every operation and module call for block finding.

    Tensors are kept alive until the trace ends, so tensor identity is unambiguous (ids are
    never reused); the memory is that of one forward pass without freeing, at the example size.
    """

    def __init__(self, model: nn.Module, layout: ChannelLayout) -> None:
        super().__init__(model, layout)
        self.events: list[_Event] = []
        self.calls: list[_Call] = []
        self.stack: list[str] = []

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None):
        out = super().__torch_function__(func, types, args, kwargs)
        outs = tuple(tensors_in(out))
        if outs:
            name = getattr(func, "__name__", "")
            ins = tuple(tensors_in((args, kwargs or {})))
            layer = ""
            if name == "batch_norm" or name in _CONVS:
                found = next((self.owner.get(id(t)) for t in ins[1:] if id(t) in self.owner), None)
                layer = found[0] if found else ""
            operands = tuple(tensors_in(args[0])) if name in CAT and args else ()
            self.events.append(
                _Event(name, ins, outs, self.stack[-1] if self.stack else "", layer, operands)
            )
        return out

    def hooks(self, model: nn.Module) -> list[Any]:
        """Forward hooks recording each module call and the running module stack."""
        open_calls: list[_Call] = []

        def enter(name: str) -> Any:
            def pre(module: nn.Module, inputs: Any) -> None:
                first = next(tensors_in(inputs), None)
                open_calls.append(_Call(name, first, None, len(self.events)))
                self.stack.append(name)

            return pre

        def leave(module: nn.Module, inputs: Any, output: Any) -> None:
            self.stack.pop()
            call = open_calls.pop()
            call.out = output if isinstance(output, torch.Tensor) else None
            call.end = len(self.events)
            self.calls.append(call)

        return [
            h
            for name, module in model.named_modules()
            if name
            for h in (
                module.register_forward_pre_hook(enter(name)),
                module.register_forward_hook(leave),
            )
        ]


def _trace(model: nn.Module, args: tuple[Any, ...], layout: ChannelLayout) -> _BlockTracer:
    """One eval-mode, no-grad forward under the block tracer (flags restored after)."""
    tracer = _BlockTracer(model, layout)
    handles = tracer.hooks(model)
    try:
        with eval_mode(model), torch.no_grad(), tracer, running_layer(model):
            out = model(*args)
        tracer.finish(out)
    except (RuntimeError, TypeError, ValueError, IndexError) as exc:
        where = f" in layer {exc.layer!r}" if hasattr(exc, "layer") else ""
        raise PruningError(
            f"tracing the model on the example inputs failed{where} ({type(exc).__name__}: "
            f"{(str(exc).strip().splitlines() or [''])[0]}); pass inputs the model accepts, "
            "e.g. a tensor of shape (1, channels, length) for Conv1d or (1, channels, height, "
            "width) for Conv2d"
        ) from exc
    finally:
        for handle in handles:
            handle.remove()
    return tracer


# -- analysis ----------------------------------------------------------------------------------
class _Analysis:
    """Walks the recorded operations backwards from each module's output."""

    def __init__(self, model: nn.Module, trace: _BlockTracer, layout: ChannelLayout) -> None:
        self.model = model
        self.events = trace.events
        self.calls = trace.calls
        self.layout = layout
        self.modules = dict(model.named_modules())
        self.called = {call.name for call in self.calls}
        self.made: dict[int, list[int]] = {}  # tensor id -> indices of the events outputting it
        for index, event in enumerate(self.events):
            for out in event.outs:
                self.made.setdefault(id(out), []).append(index)
        self.runs: dict[str, int] = {}
        for call in self.calls:
            self.runs[call.name] = self.runs.get(call.name, 0) + 1

    def plan(self) -> BlockPlan:
        blocks: list[Block] = []
        reasons: dict[str, str] = {}
        for call in self.calls:
            if call.name in reasons or any(b.name == call.name for b in blocks):
                continue
            found = self._block(call)
            if isinstance(found, Block):
                blocks.append(found)
            elif found is not None:
                reasons[call.name] = found
        return BlockPlan(self.layout, tuple(blocks), reasons)

    def producer(self, tensor: torch.Tensor, before: int) -> int | None:
        """Index of the last operation before ``before`` that output ``tensor`` (in place too)."""
        indices = self.made.get(id(tensor), [])
        at = bisect.bisect_left(indices, before)
        return indices[at - 1] if at else None

    def _block(self, call: _Call) -> Block | str | None:
        """The block ``call`` is, a reason it is not, or None when it adds no residual."""
        if call.x is None or call.out is None:
            return None
        at = self.producer(call.out, call.end)
        if at is None or at < call.start:
            return None
        relu_after = self.events[at].name in RELUS
        if relu_after:
            at = self.producer(self.events[at].ins[0], at)
            if at is None or at < call.start:
                return None
        add = self.events[at]
        if add.name not in ADDS or add.owner != call.name or len(add.ins) != 2:
            return None
        if self.runs[call.name] > 1:
            return "it runs more than once per forward pass"
        shortcut = [t is call.x for t in add.ins]
        if not any(shortcut) or all(shortcut):
            return (
                "its shortcut is not its own input (a projection or downsampling shortcut); "
                "only blocks with an identity shortcut can be removed"
            )
        bn = self._branch_bn(add.ins[shortcut.index(False)], at)
        if not bn.startswith("bn:"):
            return bn
        bn = bn[3:]
        if not bn.startswith(call.name + "."):
            return f"its branch ends in BN {bn!r}, which lies outside the block"
        if bn not in self.layout.names:
            return f"its branch ends in BN {bn!r}, which is not in the layout"
        mode, fold = self._mode(call, relu_after)
        params = sum(p.numel() for p in self.modules[call.name].parameters())
        return Block(call.name, bn, mode, params, fold)

    def _branch_bn(self, branch: torch.Tensor, before: int) -> str:
        """``"bn:<name>"`` of the BN ending the branch, else the reason it has none."""
        at = self.producer(branch, before)
        while at is not None and self.events[at].name in ZERO_ACTS:
            at = self.producer(self.events[at].ins[0], at)
        if at is None:
            return "its branch comes from outside the traced layers"
        event = self.events[at]
        if event.name != "batch_norm" or not event.layer:
            return (
                f"its branch ends in {event.name or 'an operation'}, not in a BatchNorm "
                "(followed only by activations with act(0) = 0)"
            )
        return "bn:" + event.layer

    def _mode(self, call: _Call, relu_after: bool) -> tuple[str, Fold | None]:
        if relu_after and not self._nonnegative(call.x, call.start):
            return "relu", None
        parent, _, _ = call.name.rpartition(".")
        container = self.modules.get(parent)
        if isinstance(container, nn.Sequential) and parent in self.called:
            return "delete", None
        if isinstance(container, nn.ModuleList):
            fold = self._fold(call)
            if fold is not None:
                return "fold", fold
        return "identity", None

    def _nonnegative(self, tensor: torch.Tensor, before: int, depth: int = 8) -> bool:
        at = self.producer(tensor, before)
        if at is None or depth == 0:
            return False
        event = self.events[at]
        if event.name in _NONNEG:
            return True
        if event.name in _KEEPS_SIGN:
            return self._nonnegative(event.ins[0], at, depth - 1)
        if event.name in ADDS:
            return all(self._nonnegative(t, at, depth - 1) for t in event.ins)
        return False

    def _fold(self, call: _Call) -> Fold | None:
        """The concat-into-conv slots of a C2f-style block, if that is how its output is read."""
        cats = [
            (i, e)
            for i, e in enumerate(self.events)
            if e.name in CAT and any(t is call.out for t in e.operands)
        ]
        if len(cats) != 1:
            return None
        at, cat = cats[0]
        slots = [(t, sum(o.shape[1] for o in cat.operands[:k])) for k, t in enumerate(cat.operands)]
        source = [start for t, start in slots if t is call.out]
        target = [start for t, start in slots if t is call.x]
        joined = cat.outs[0]
        readers = [e for e in self.events[at + 1 :] if any(t is joined for t in e.ins)]
        if len(source) != 1 or len(target) != 1 or len(readers) != 1:
            return None
        conv = readers[0]
        module = self.modules.get(conv.layer)
        if (
            conv.name not in _CONVS
            or conv.ins[0] is not joined
            or getattr(module, "groups", 0) != 1
        ):
            return None
        return Fold(conv.layer, source[0], target[0], int(call.out.shape[1]))
