"""Channel counts a layer reads and then reshapes by: the tie the channel flow cannot see.

An attention block splits channels into heads and merges them back with the channel count it
read from its input: ultralytics' ``Attention`` (C2PSA, YOLO26's C3k2 attention, YOLOE) does
``B, C, H, W = x.shape`` and later ``(v @ attn).view(B, C, H, W)``. The tensor reshaped there
(``v``) is already unfollowable, but nothing in its flow connects it to ``x``: the tie is an
``int``. Prune ``x`` and the reshape asks for the new ``C`` while ``v`` still holds the old one,
so the pruned model no longer runs.

:class:`ShapeReads` closes that gap per layer call: it notes whose channel count the running
layer's own forward reads (``tensor.shape``, ``tensor.size()``, ``tensor.size(1)``), and when
the same forward also reshapes channels in a way the flow cannot follow *to that count on the
channel axis*, the tensors whose count it is are blocked too. The ``int`` itself cannot be
followed, so the width is the evidence: YOLOv12's area attention reads ``x.shape`` only for
``B, H, W`` and merges its heads to a fixed width on another axis, and stays prunable; reads in
a layer that only reshapes what the flow follows stay prunable, so convolutional blocks lose
nothing. A tie the width does not show (a count used on another axis, or after arithmetic)
still fails loudly in the surgery's check run, never silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["ShapeReads", "reads_channel_count"]

_SHAPE = torch.Tensor.shape.__get__  # what ``tensor.shape`` reaches a TorchFunctionMode as


def reads_channel_count(func: Any, args: Any, kwargs: Any) -> torch.Tensor | None:
    """The tensor whose channel count (dim 1) this call reads, if it is such a read."""
    if not args or not isinstance(args[0], torch.Tensor) or args[0].dim() < 2:
        return None
    if func == _SHAPE:
        return args[0]
    if getattr(func, "__name__", "") != "size":
        return None
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    if dim is None or (isinstance(dim, int) and dim % args[0].dim() == 1):
        return args[0]
    return None


@dataclass
class _Frame:
    name: str
    reads: list[np.ndarray] = field(default_factory=list)
    reshapes: list[tuple[str, int]] = field(default_factory=list)  # (what, width of dim 1)

    def tied(self) -> tuple[list[np.ndarray], str] | None:
        """The reads whose width an unfollowable reshape put back on the channel axis, and the
        first such reshape (for the reason)."""
        widths = {width: what for what, width in reversed(self.reshapes)}
        tied = [atoms for atoms in self.reads if atoms.size in widths]
        return (tied, widths[tied[0].size]) if tied else None


class ShapeReads:
    """Per running layer: the channel counts it read and the widths it reshaped channels to.

    Args:
        block: called as ``block(atoms, reason)`` by :meth:`flush` for the atoms of every layer
            call that reshaped channels unfollowably to a width it read.
    """

    def __init__(self, block: Callable[[list[int], str], None]) -> None:
        self.block = block
        self.frames: list[_Frame] = []
        self.handles: list[Any] = []
        self.found: list[tuple[list[int], str]] = []

    def install(self, model: nn.Module) -> None:
        """Follow which layer is running (forward hooks on every module)."""
        for name, module in model.named_modules():
            self.handles.append(module.register_forward_pre_hook(self._enter(name)))
            self.handles.append(module.register_forward_hook(self._leave))

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles.clear()
        self.frames.clear()

    def flush(self) -> None:
        """Block what was found. Called after the outputs are blocked, so that a channel that
        reaches the output keeps that (first) reason."""
        for atoms, reason in self.found:
            self.block(atoms, reason)
        self.found.clear()

    def read(self, atoms: np.ndarray) -> None:
        """The running layer read the channel count of a tensor with these atoms."""
        if self.frames:
            self.frames[-1].reads.append(atoms)

    def reshaped(self, name: str, out: torch.Tensor) -> None:
        """The running layer reshaped channels (``name`` gave ``out``) unfollowably."""
        if self.frames:
            width = out.shape[1] if out.dim() >= 2 else 0
            self.frames[-1].reshapes.append((f"{name} to {list(out.shape)}", width))

    def _enter(self, name: str) -> Callable[..., None]:
        def enter(module: nn.Module, inputs: Any) -> None:
            self.frames.append(_Frame(name or "the model"))

        return enter

    def _leave(self, module: nn.Module, inputs: Any, output: Any) -> None:
        frame = self.frames.pop()
        found = frame.tied()
        if found is None:
            return
        tied, what = found
        reason = (
            f"its channel count is read by {frame.name!r}, whose forward also rearranges "
            f"channels back to that count ({what}; e.g. attention heads merged); pruning "
            "it would change that layer's shapes"
        )
        self.found.append((np.unique(np.concatenate(tied)).tolist(), reason))
