"""Training-compute accounting: how many multiply-accumulates a run spent.

A training step on a batch of ``B`` samples costs about ``3 × MACs(model) × B``: one forward
pass and a backward pass that costs about twice the forward (one product for the gradient with
respect to the activations, one for the gradient with respect to the weights — the usual
estimate, e.g. in the scaling-law literature). The factor is the same for every method, so it
cancels in every ratio we report; it only matters for absolute figures. The per-sample MACs are
measured on the *current* model, so after pruning every later step is charged at the smaller
model's cost. Evaluation passes are not training compute and are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..core.bn_layers import unwrap_model

#: forward + backward ≈ 3 forward passes
TRAIN_MAC_FACTOR = 3


@dataclass
class ComputeMeter:
    """Accumulates training compute over a run.

    Args:
        example_input: one input batch (any batch size) the MAC counter traces the model with.

    Attributes:
        total_macs: Σ over steps of 3 × per-sample MACs × batch size.
        steps: steps counted so far.
        segments: ``[(first_step, per_sample_macs), ...]``: the model's cost from each step on.
    """

    example_input: torch.Tensor
    total_macs: float = 0.0
    steps: int = 0
    segments: list[tuple[int, int]] = field(default_factory=list)
    _per_sample: int | None = field(default=None, repr=False)

    def set_model(self, model: nn.Module, step: int = 0) -> int:
        """Measure a (new) model's per-sample MACs; later steps are charged at that cost.

        Args:
            model: the model now being trained (a DDP wrapper is unwrapped).
            step: the first step charged at this cost.

        Returns:
            The per-sample MACs.
        """
        self._per_sample = per_sample_macs(model, self.example_input)
        self.segments.append((int(step), self._per_sample))
        return self._per_sample

    def add_step(self, batch_size: int) -> None:
        """Charge one training step on ``batch_size`` samples."""
        if self._per_sample is None:
            raise RuntimeError("ComputeMeter.set_model must be called before add_step")
        self.total_macs += TRAIN_MAC_FACTOR * self._per_sample * int(batch_size)
        self.steps += 1

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary: total MACs, steps and per-segment cost."""
        return {
            "train_macs": self.total_macs,
            "steps": self.steps,
            "mac_factor": TRAIN_MAC_FACTOR,
            "segments": [{"from_step": s, "macs_per_sample": m} for s, m in self.segments],
        }


def per_sample_macs(model: nn.Module, example_input: torch.Tensor) -> int:
    """MACs of one sample's forward pass through ``model`` (DDP wrappers are unwrapped).

    Args:
        model: the model.
        example_input: an input batch; only its first sample is used.

    Returns:
        Multiply-accumulates of one forward pass on one sample.
    """
    from ..engine.stats import count_macs

    return int(count_macs(unwrap_model(model), example_input[:1]))
