"""Network slimming's L1 penalty on BatchNorm γ, applied on the gradient.

The penalty ``s·Σ|γ|`` is not added to the loss: its (sub)gradient ``s·sign(γ)`` is added to
``γ.grad`` after ``backward()``, as the network-slimming reference does. That keeps it out of the
autograd graph and gives three properties for free:

- **AMP**: apply it to *unscaled* gradients, i.e. after ``GradScaler.unscale_``::

      scaler.scale(loss).backward()
      scaler.unscale_(optimizer)        # grads are now true gradients
      sparsity.apply(step)              # adds exactly s·sign(γ)
      scaler.step(optimizer)            # skips the step (and our addition) on inf/NaN grads
      scaler.update()

  Applied before ``unscale_`` the penalty would be divided by the loss scale.
- **DDP**: gradients are averaged across ranks during ``backward()``; ``apply`` then adds the same
  ``s·sign(γ)`` on every rank (DDP keeps γ identical), so the penalty is carried exactly once,
  not ``world_size`` times and not divided by it.
- **Exclusions**: a layer left out of the selection simply gets no penalty.

A BN whose γ received no gradient this step (``grad is None``) is left alone, as the optimizer
leaves it alone.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch
from torch import nn

from .._util import check_step, positive_int
from ..core.bn_layers import Selection, layout_of, select_bn_layers
from ..core.layout import ChannelLayout
from ..errors import ConfigError

#: constant s; s × factor once step ≥ at × total_steps; relieve the top channels by |γ| then.
SCHEDULES = ("constant", "step", "relieve")


class BNSparsity:
    """Adds ``s_eff · sign(γ)`` to the γ gradients of the selected BatchNorm layers.

    Args:
        model: the model (possibly wrapped in DDP/DataParallel); only ``γ.grad`` is touched.
        s: the L1 strength (network slimming used 1e-4; short runs on digits need ~5e-3).
        schedule: ``"constant"``; ``"step"`` (``s × factor`` once ``step ≥ at × total_steps``);
            ``"relieve"`` (from then on the top ``top_fraction`` of all selected channels by
            ``|γ|`` get ``s × factor``, the rest keep ``s``, so the channels that will survive
            stop being pushed down).
        total_steps: planned number of optimizer updates; required by ``"step"``/``"relieve"``.
        factor: multiplier of ``s`` after the switch (≥ 0; 0 turns the penalty off).
        at: fraction of training at which the schedule switches, in [0, 1].
        top_fraction: for ``"relieve"``, the fraction of channels relieved, in (0, 1];
            ``round(top_fraction × C)`` channels, ranked globally by ``|γ|`` at each step.
        layers: BN names or fnmatch patterns to penalize (default: every affine BatchNorm).
        exclude: BN names or patterns to leave unpenalized.

    Raises:
        ConfigError: on an invalid argument (the message names it and the accepted range).
        LayoutError: when the layer selection is empty or a pattern matches nothing.
    """

    def __init__(
        self,
        model: nn.Module,
        s: float,
        schedule: str = "constant",
        total_steps: int | None = None,
        factor: float = 0.1,
        at: float = 0.5,
        top_fraction: float = 0.3,
        layers: Selection = None,
        exclude: Selection = None,
    ) -> None:
        if schedule not in SCHEDULES:
            raise ConfigError(f"schedule must be one of {SCHEDULES}; got {schedule!r}")
        if schedule != "constant" and total_steps is None:
            raise ConfigError(
                f"schedule={schedule!r} switches at a fraction of training and needs "
                "total_steps=<planned optimizer updates>"
            )
        self.s = _number(s, "s", low=0.0)
        self.schedule = schedule
        self.total_steps = None if total_steps is None else positive_int(total_steps, "total_steps")
        self.factor = _number(factor, "factor", low=0.0)
        self.at = _number(at, "at", low=0.0, high=1.0)
        self.top_fraction = _number(top_fraction, "top_fraction", low=0.0, high=1.0)
        if self.top_fraction == 0.0:
            raise ConfigError("top_fraction must be in (0, 1]; got 0 (use schedule='step')")
        selected = select_bn_layers(model, layers, exclude)
        self._bns = [bn for _, bn in selected]
        self.layout: ChannelLayout = layout_of(selected)

    def switched(self, step: int) -> bool:
        """True once ``step ≥ at × total_steps`` (always False for ``"constant"``)."""
        if self.schedule == "constant":
            return False
        assert self.total_steps is not None  # enforced in __init__
        return check_step(step) >= self.at * self.total_steps

    def strength(self, step: int) -> float:
        """The ``s`` applied at ``step`` (for ``"relieve"``: to the channels not relieved)."""
        return self.s * self.factor if self.schedule == "step" and self.switched(step) else self.s

    def apply(self, step: int) -> None:
        """Add the penalty's gradient in place; call after ``backward()`` (and ``unscale_``).

        Args:
            step: completed optimizer updates so far (drives the schedule).

        Raises:
            ConfigError: if ``step`` is not an integer >= 0.
        """
        step = check_step(step)
        with torch.no_grad():
            if self.schedule == "relieve" and self.switched(step):
                self._apply_relieved()
                return
            s = self.strength(step)
            for bn in self._bns:
                if bn.weight.grad is not None:
                    bn.weight.grad.add_(torch.sign(bn.weight), alpha=s)

    def relieved_mask(self) -> torch.Tensor:
        """(C,) bool in layout order: the top ``top_fraction`` of channels by current ``|γ|``."""
        magnitudes = torch.cat([bn.weight.detach().abs().flatten() for bn in self._bns])
        k = math.floor(self.top_fraction * magnitudes.numel() + 0.5)
        mask = torch.zeros_like(magnitudes, dtype=torch.bool)
        mask[torch.topk(magnitudes, k, sorted=False).indices] = True
        return mask

    def _apply_relieved(self) -> None:
        mask = self.relieved_mask()
        low = torch.full(mask.shape, self.s, dtype=torch.float32, device=mask.device)
        coefficients = torch.where(mask, self.s * self.factor, low)
        for bn, part in zip(self._bns, coefficients.split(list(self.layout.sizes))):
            if bn.weight.grad is not None:
                bn.weight.grad.add_(torch.sign(bn.weight) * part.to(bn.weight.grad.dtype))

    def __repr__(self) -> str:
        return (
            f"BNSparsity(s={self.s:g}, schedule={self.schedule!r}, layers={len(self.layout)}, "
            f"channels={self.layout.total})"
        )


def _number(value: Any, what: str, low: float, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{what} must be a number; got {value!r}")
    if not (math.isfinite(value) and low <= value <= high):
        bounds = f">= {low:g}" if high == math.inf else f"in [{low:g}, {high:g}]"
        raise ConfigError(f"{what} must be finite and {bounds}; got {value!r}")
    return float(value)
