"""The replay's settings: light to import, so the CLI validates arguments before the heavy work.

``compare``'s config and flags take their defaults from :class:`ReplaySettings`, so the two can
never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..engine.block_rule import BlockSpec
from ..engine.spec import PruneSpec
from ..errors import ConfigError, ForecastPruneError
from ..isolation import DEFAULT_TIMEOUT, MAX_TIMEOUT
from ..runpoint import RunPoint

DEFAULT_CUTOFFS = (0.05, 0.1, 0.2, 0.3, 0.5)
#: how each forecaster run is isolated (see :mod:`forecastprune.compare.worker`)
ISOLATIONS = ("process", "thread")


@dataclass(frozen=True)
class ReplaySettings:
    """How a replay cuts, thresholds and judges.

    Attributes:
        cutoffs: fractions of the run in (0, 1), or explicit steps written ``"step:N"``
            (parsed as :class:`~forecastprune.runpoint.RunPoint`).
        spec: how channels are chosen — the same :class:`PruneSpec` ``prune`` cuts with, so
            a forecaster is scored on the set ``prune`` would remove. Its policy needs the
            store's model; a store without one is scored under ``none`` and the result says so.
        ratios: one set of metrics per ratio (empty: the spec's ratio).
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
    spec: PruneSpec = PruneSpec()
    ratios: tuple[float, ...] = ()
    eps: float = 1e-3
    timeout: float | None = DEFAULT_TIMEOUT
    eb_spacing: int | None = None
    isolation: str | None = None
    blocks: BlockSpec | None = None

    @property
    def scored_ratios(self) -> tuple[float, ...]:
        """The ratios scored, in order, without repeats."""
        return tuple(dict.fromkeys(self.ratios or (self.spec.ratio,)))  # type: ignore[arg-type]

    def spec_at(self, ratio: float) -> PruneSpec:
        """The spec at one of the scored ratios."""
        return self.spec.replace(ratio=ratio)

    def validate(self) -> None:
        """Check every setting's range (the prune settings were checked by :class:`PruneSpec`).

        Raises:
            ConfigError: naming the setting, the value received and what is expected.
        """
        problems = []
        if self.spec.threshold is not None:
            problems.append(
                "compare scores forecasters at ratios, where forecast and finished "
                "run prune the same number of channels; give a ratio, not a "
                f"threshold (got threshold={self.spec.threshold})"
            )
        if self.spec.uncertainty:
            problems.append(
                "compare scores point forecasts against the finished run; the "
                "uncertainty rule is not replayed (drop uncertainty)"
            )
        for ratio in self.ratios:
            try:
                self.spec_at(ratio)
            except ForecastPruneError as exc:
                problems.append(str(exc))
        for cutoff in self.cutoffs:
            try:
                RunPoint.parse(cutoff, rules=False, what="cutoff")
            except ConfigError as exc:
                problems.append(str(exc))
        if not 0.0 <= self.eps < 1.0:
            problems.append(
                f"eps must be a fraction in [0, 1) of the largest final |γ|; got {self.eps}"
            )
        if self.timeout is not None and not 0 < self.timeout <= MAX_TIMEOUT:
            problems.append(
                f"timeout must be a positive number of seconds up to {MAX_TIMEOUT:g} "
                f"(None: no limit); got {self.timeout}"
            )
        if self.eb_spacing is not None and self.eb_spacing < 1:
            problems.append(
                f"eb_spacing must be a whole number of steps ≥ 1; got {self.eb_spacing}"
            )
        if self.isolation not in (None, *ISOLATIONS):
            problems.append(f"isolation must be one of {ISOLATIONS}; got {self.isolation!r}")
        if self.blocks is not None and not isinstance(self.blocks, BlockSpec):
            problems.append(f"blocks must be a BlockSpec or None; got {type(self.blocks).__name__}")
        if problems:
            raise ConfigError("; ".join(problems))
