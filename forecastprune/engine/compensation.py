"""β compensation: fold the constant output of pruned channels into the layers that read them.

A channel whose BN has γ = 0 outputs β in eval mode, whatever the input; after its activation
and any chain of shortcut adds, pooling or upsampling it is still one constant per channel.
Simply deleting it would drop that constant from every layer reading it, so — as the YOLOv3
pruning repositories do — its contribution is folded into the reader (the *consumer*: the
conv or linear layer whose input channels are removed):

* a consumer with a bias (or no BN after it) gets ``bias += shift`` (a bias is created when
  absent);
* a bias-free conv followed directly by a BN gets ``running_mean -= shift`` instead, which is
  the same shift seen through the BN and keeps the conv bias-free.

Here ``shift`` is what the removed constant inputs added to each output channel: for a linear
layer ``W[:, j] · c_j``; for a conv, the constant map pushed through the conv itself (padding,
stride, dilation, groups included) and averaged over output positions.

The constants ``c_j`` are not derived symbolically from the graph: they are *measured* in one
eval-mode forward pass of the model with the pruned channels' γ set to 0, reading each
consumer's input channel (mean over batch and positions). So whatever sits between the BN and
the consumer is supported as long as it keeps a constant channel constant: ReLU, ReLU6,
LeakyReLU, SiLU, identity, shortcut adds across any number of blocks, max pooling, nearest
upsampling, concat, flatten.

Exactness: folding is exact for 1×1 convs (without padding) and linear layers. A k×k conv with
zero padding sees the constant only partly at the borders (padded taps read 0, not ``c_j``), so
its true shift varies over positions while a bias is one number per channel. The YOLOv3 repos
fold the full kernel sum (exact in the interior, over-correcting at the borders — worse than no
compensation on tiny maps, e.g. 2×2 digits features); we fold the *mean* shift over the positions
at the example input's size, the least-squares best bias, which is never worse than no
compensation in the mean-square sense and converges to the kernel sum on large maps. So pass
example inputs of the size the model will run at. Average pooling that counts padding has the
same border effect.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

Consumer = nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Linear


@dataclass(frozen=True)
class MeasuredInput:
    """What a consumer read in the measuring pass.

    Attributes:
        mean: (in_channels,) float64 per-channel mean (over batch and positions).
        size: the spatial size of the input map (empty for linear layers).
    """

    mean: torch.Tensor
    size: tuple[int, ...]


@contextmanager
def recorded_inputs(consumers: Iterable[Consumer]) -> Iterator[dict[nn.Module, MeasuredInput]]:
    """Record what each consumer reads during the forward passes run inside the block.

    The surgery records during the eval-mode forward that traces the dependency graph, so the
    measurement costs no extra pass.

    Args:
        consumers: the conv/linear layers whose input channels will be removed.

    Yields:
        consumer -> :class:`MeasuredInput`, filled in by the forward passes inside the block.
    """
    seen: dict[nn.Module, MeasuredInput] = {}

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        x = inputs[0].detach().double()
        if isinstance(module, nn.Linear):
            seen[module] = MeasuredInput(x.reshape(-1, x.shape[-1]).mean(dim=0), ())
        else:
            per_channel = x.movedim(1, 0).reshape(x.shape[1], -1)
            seen[module] = MeasuredInput(per_channel.mean(dim=1), tuple(x.shape[2:]))

    handles = [c.register_forward_pre_hook(hook) for c in set(consumers)]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def fold_constants(
    consumer: Consumer,
    channels: list[int],
    constants: torch.Tensor,
    size: tuple[int, ...],
    next_bn: _BatchNorm | None,
) -> None:
    """Fold constant inputs on ``channels`` into ``consumer`` (or the BN right after it).

    Args:
        consumer: the conv/linear layer, in its *current* shape, about to lose ``channels``.
        channels: current input-channel indices to be removed.
        constants: the constant value of each of those channels, same order.
        size: the spatial size of the consumer's input map (ignored for linear layers).
        next_bn: the BN directly after a bias-free conv consumer, or None.
    """
    delta = _output_shift(consumer, channels, constants, size)
    if next_bn is not None and consumer.bias is None and next_bn.running_mean is not None:
        next_bn.running_mean.sub_(delta.to(next_bn.running_mean))
    elif consumer.bias is None:
        consumer.bias = nn.Parameter(delta.to(consumer.weight))
    else:
        consumer.bias.add_(delta.to(consumer.bias))


def _output_shift(
    consumer: Consumer, channels: list[int], constants: torch.Tensor, size: tuple[int, ...]
) -> torch.Tensor:
    """The output shift caused by constant inputs on ``channels``, averaged over positions.

    For a conv the constant map is pushed through the layer itself (its padding mode, stride,
    dilation and groups included), so padded border taps count as they really do at this input
    size; the mean over output positions is the bias that reproduces it best (least squares).
    """
    weight = consumer.weight.detach()
    if isinstance(consumer, nn.Linear):
        return weight[:, channels].double() @ constants.double()
    plane = torch.zeros(1, consumer.in_channels, *size, dtype=weight.dtype)
    plane[0, channels] = constants.to(weight.dtype).reshape(-1, *([1] * len(size)))
    out = consumer._conv_forward(plane, weight, None)
    return out.double().flatten(2).mean(dim=2)[0]
