"""Recording a run: γ snapshots into a store, the L1 penalty on γ, and the LR clock.

- :mod:`.recorder` — :class:`GammaRecorder`, snapshots of every recorded BN layer's γ;
- :mod:`.sparsity` — :class:`BNSparsity`, the network-slimming L1 penalty added to γ's gradient;
- :mod:`.bn_layers` — which BatchNorm layers are recorded (and the model fingerprint);
- :mod:`.lr_clock` — steps → cumulative learning rate, the time axis of ``time_axis="lr"``.
"""

from __future__ import annotations

from ..core.lr_clock import Clock, clock_for_store, cumulative_lr_clock, planned_lr_schedule
from .recorder import GammaRecorder
from .sparsity import BNSparsity

__all__ = [
    "BNSparsity",
    "Clock",
    "GammaRecorder",
    "clock_for_store",
    "cumulative_lr_clock",
    "planned_lr_schedule",
]
