"""Model size and speed: parameters, multiply-accumulates and measured CPU latency.

MACs count the convolutions (1d/2d/3d; not transposed) and linear layers, the layers channel
pruning shrinks and that dominate a CNN's compute (BN, activations and pooling are left out, as
in most pruning papers):
a conv output element costs ``in_channels / groups × kernel volume`` MACs, a linear output
element ``in_features``. They are measured with forward hooks on one pass, so any input size
and any architecture the hooks see is handled without tracing.

Latency is wall-clock time of eval-mode forward passes under ``torch.inference_mode()`` (no
autograd bookkeeping at all, as in deployment), the median of several repeats after warm-up (or
their minimum, steadier on a shared machine). :func:`measure_latencies` interleaves the models
(A, B, C, then B, C, A, ...: the order rotates so no model always runs right after a bigger one,
on cold caches), so a machine that slows down or speeds up during the measurement affects all
alike.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.bn_layers import unwrap_model
from ..core.modes import eval_mode
from ..errors import PruningError
from .coupling import WEIGHTED, as_args

#: how the timed passes of a model are summarised
_STATISTICS = {"median": statistics.median, "min": min}


@dataclass(frozen=True)
class ModelStats:
    """Size and cost of one model on one input.

    Attributes:
        params: number of parameters.
        macs: multiply-accumulates of one forward pass on the example input (whole batch).
        latency_s: median forward latency in seconds, or None when not measured.
    """

    params: int
    macs: int
    latency_s: float | None = None


def count_params(model: nn.Module) -> int:
    """Number of parameters (shared ones counted once)."""
    return sum(p.numel() for p in unwrap_model(model).parameters())


def count_macs(model: nn.Module, example_inputs: Any) -> int:
    """Conv and linear multiply-accumulates of one eval-mode forward pass.

    Args:
        model: the model (its train/eval flags are restored afterwards).
        example_inputs: a tensor or tuple of tensors; MACs scale with its batch size.

    Returns:
        The MAC count.
    """
    total = 0

    def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Linear):
            total += output.numel() * module.in_features
        else:
            kernel = module.weight.shape[2:].numel()
            total += output.numel() * (module.in_channels // module.groups) * kernel

    model = unwrap_model(model)
    layers = [m for m in model.modules() if isinstance(m, WEIGHTED)]
    handles = [m.register_forward_hook(hook) for m in layers]
    try:
        with eval_mode(model), torch.no_grad():
            model(*as_args(example_inputs))
    finally:
        for handle in handles:
            handle.remove()
    return int(total)


def measure_latencies(
    models: Sequence[nn.Module],
    example_inputs: Any,
    *,
    repeats: int = 10,
    warmup: int = 2,
    statistic: str = "median",
) -> list[float]:
    """Median (or best) eval-mode forward latency of each model, in seconds, measured interleaved.

    Args:
        models: the models to time on the same input (TorchScript modules too).
        example_inputs: a tensor or tuple of tensors.
        repeats: timed passes per model (≥ 1).
        warmup: untimed passes per model first (allocator and kernel caches).
        statistic: ``"median"``, or ``"min"`` on a shared machine: other processes only ever
            add time to a pass, so the fastest pass is the closest to the model's own cost.

    Returns:
        One latency per model, in order.

    Raises:
        PruningError: if ``repeats`` < 1, ``warmup`` < 0 or ``statistic`` is unknown.
    """
    if int(repeats) < 1 or int(warmup) < 0:
        raise PruningError(f"repeats must be >= 1 and warmup >= 0; got {repeats}, {warmup}")
    if statistic not in _STATISTICS:
        raise PruningError(f"statistic must be one of {sorted(_STATISTICS)}; got {statistic!r}")
    args = as_args(example_inputs)
    plain = [unwrap_model(m) for m in models]
    times: list[list[float]] = [[] for _ in plain]
    with torch.inference_mode(), eval_mode(*plain):
        for _ in range(int(warmup)):
            for model in plain:
                model(*args)
        for r in range(int(repeats)):
            # rotate the order every round: the model run right after a bigger one finds the
            # caches cold, and no model should always take that place
            for i in (np.arange(len(plain)) + r) % len(plain):
                start = time.perf_counter()
                plain[i](*args)
                times[i].append(time.perf_counter() - start)
    return [_STATISTICS[statistic](t) for t in times]


def model_stats(model: nn.Module, example_inputs: Any, *, latency_repeats: int = 0) -> ModelStats:
    """Parameters, MACs and (with ``latency_repeats`` > 0) the median latency of a model."""
    latency = None
    if latency_repeats > 0:
        latency = measure_latencies([model], example_inputs, repeats=latency_repeats)[0]
    return ModelStats(count_params(model), count_macs(model, example_inputs), latency)


def compare_stats(before: ModelStats, after: ModelStats) -> str:
    """A before → after table of params, MACs and (if both measured) latency."""
    rows = [
        ("params", f"{before.params:,}", f"{after.params:,}", _ratio(before.params, after.params)),
        ("MACs", f"{before.macs:,}", f"{after.macs:,}", _ratio(before.macs, after.macs)),
    ]
    if before.latency_s is not None and after.latency_s is not None:
        rows.append(
            (
                "latency",
                f"{1e3 * before.latency_s:.2f} ms",
                f"{1e3 * after.latency_s:.2f} ms",
                _ratio(before.latency_s, after.latency_s),
            )
        )
    header = ("", "before", "after", "reduction")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    return "\n".join(
        "  ".join(
            [r[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True))]
        )
        for r in [header, *rows]
    )


def _ratio(before: float, after: float) -> str:
    if after <= 0:
        return "-"
    return f"{before / after:.2f}x ({100 * (1 - after / before):.1f} % less)"
