"""The replay's settings: light to import, so the CLI validates arguments before the heavy work.

``compare``'s config and flags take their defaults from :class:`ReplaySettings`, so the two can
never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine.block_rule import BlockSpec
from ..engine.rule import POLICIES as COUPLING_POLICIES
from ..engine.rule import check_policy
from ..errors import ConfigError, PruningError

#: ``none`` replays without the model: every recorded channel is prunable on its own
POLICIES = ("none", *COUPLING_POLICIES)
DEFAULT_CUTOFFS = (0.05, 0.1, 0.2, 0.3, 0.5)
#: seconds per forecaster, all cutoffs together: long enough for every built-in on a COCO-length
#: YOLOv3 store, short enough that a hung plugin cannot stall a comparison for good
DEFAULT_TIMEOUT = 300.0
#: the longest timeout accepted (a year): beyond it the OS timers overflow; None means no limit
MAX_TIMEOUT = 365 * 24 * 3600.0
#: the largest min_keep accepted: more channels than any layer has (and an int32, so the
#: threshold engine's integer arrays never overflow)
MAX_MIN_KEEP = 2**31 - 1
#: how each forecaster run is isolated (see :mod:`forecastprune.compare.worker`)
ISOLATIONS = ("process", "thread")


@dataclass(frozen=True)
class ReplaySettings:
    """How a replay cuts, thresholds and judges.

    Attributes:
        cutoffs: fractions of the run in (0, 1), or explicit steps written ``"step:N"``
            (see :mod:`forecastprune.predict`).
        ratios: fractions of the prunable channels to prune; one set of metrics per ratio.
        policy: ``none`` (every recorded channel prunable on its own), ``seed`` or ``grouped``
            (see :mod:`forecastprune.engine.coupling`; needs the store's model in the zoo).
        min_keep: channels every layer keeps at least.
        group_reduce: ``max`` or ``mean``: a coupled group's score under ``grouped``.
        eps: the collapsed set is final |γ| < ``eps`` × the largest final |γ|.
        timeout: seconds per forecaster for all cutoffs together; one past it fails its
            remaining cells while the others complete (None: no limit).
        eb_spacing: steps between Early-Bird masks (None: one epoch if the metadata has
            ``steps_per_epoch``, else 5 % of the run).
        isolation: ``process`` or ``thread`` (None: process where fork exists).
        blocks: also judge which residual blocks each prediction removes (depth pruning,
            :class:`~forecastprune.engine.block_rule.BlockSpec`); needs the store's model in
            the zoo. None: channels only.
    """

    cutoffs: tuple[float | str, ...] = DEFAULT_CUTOFFS
    ratios: tuple[float, ...] = (0.5,)
    policy: str = "none"
    min_keep: int = 1
    group_reduce: str = "max"
    eps: float = 1e-3
    timeout: float | None = DEFAULT_TIMEOUT
    eb_spacing: int | None = None
    isolation: str | None = None
    blocks: BlockSpec | None = None

    def validate(self) -> None:
        """Check every setting's range.

        Raises:
            ConfigError: naming the setting, the value received and what is expected.
        """
        problems = []
        if not self.ratios or not all(0.0 <= r <= 1.0 for r in self.ratios):
            problems.append(f"ratios must be one or more fractions in [0, 1]; got {self.ratios}")
        try:
            check_policy(self.policy, POLICIES)
        except PruningError as exc:
            problems.append(str(exc))
        if self.group_reduce not in ("max", "mean"):
            problems.append(f"group_reduce must be max or mean; got {self.group_reduce!r}")
        if not 1 <= self.min_keep <= MAX_MIN_KEEP:
            problems.append(
                f"min_keep must be a whole number from 1 (a layer is never emptied) to "
                f"{MAX_MIN_KEEP}; got {self.min_keep}"
            )
        if not 0.0 <= self.eps < 1.0:
            problems.append(f"eps must be a fraction in [0, 1) of the largest final |γ|; got "
                            f"{self.eps}")
        if self.timeout is not None and not 0 < self.timeout <= MAX_TIMEOUT:
            problems.append(f"timeout must be a positive number of seconds up to {MAX_TIMEOUT:g} "
                            f"(None: no limit); got {self.timeout}")
        if self.eb_spacing is not None and self.eb_spacing < 1:
            problems.append(f"eb_spacing must be a whole number of steps ≥ 1; got "
                            f"{self.eb_spacing}")
        if self.isolation not in (None, *ISOLATIONS):
            problems.append(f"isolation must be one of {ISOLATIONS}; got {self.isolation!r}")
        if self.blocks is not None and not isinstance(self.blocks, BlockSpec):
            problems.append(f"blocks must be a BlockSpec or None; got "
                            f"{type(self.blocks).__name__}")
        if problems:
            raise ConfigError("; ".join(problems))
