"""When to prune: a fixed point, Early-Bird's mask-stability rule, or our forecast-based rule.

Three timings share one small interface so :class:`~forecastprune.pipeline.EarlyPruner` never
branches on which one it holds:

- :class:`FixedTiming` fires at one step (given directly or as a fraction of the planned run).
- :class:`MaskStabilityTiming` looks at a prune mask at every check (every ``check_every``
  steps) and fires once the newest mask is within normalized Hamming distance ``tolerance`` of
  each of the previous ``window`` masks. With masks built from the *current* |γ| (the ``naive``
  forecaster), ``window=4`` and ``tolerance=0.1`` this is exactly the Early-Bird criterion
  (You et al., ICLR 2020) — :func:`early_bird_timing` builds it.
- :func:`auto_timing` is the rule of ours: the same stability test, but on masks built from the
  *forecast* end-of-training |γ| — by default with Early-Bird's tolerance (0.1) over a shorter
  window (3 previous checks, since the forecasters already smooth over their own window), so
  the two rules differ in the masks they compare and in one comparison, not in the threshold.
  Optionally (``max_ambiguous``), for forecasters with intervals, it also requires that at most
  that share of the prunable channels have a forecast interval straddling the cut — the
  forecast must separate the channels below the cut from those above. (Off by default: on the
  digits runs ARIMA's intervals straddle the cut for most channels until the very end, and the
  linear forecaster's are narrow from the start, so neither says when to prune.) A
  ``deadline`` (fraction of the run) makes the rule fire eventually even when the masks never
  settle, so a run always ends pruned.
- ``auto_timing(..., min_confidence=c)`` is the ``confidence`` rule: stability as above *and*
  the forecaster's own backtest inside the history (:mod:`~forecastprune.pipeline.confidence`:
  the IoU of its predicted pruned set at the real ratio and horizon, discounted where the
  backtest horizon falls short of the real one) at least ``c``. Stability alone says the
  forecast stopped moving, not that it is right; the backtest says whether this forecaster,
  on this run, got the cut right over a horizon like the one ahead. The backtest costs a few
  forecaster fits, so it runs only at checks where the masks are already stable.

Masks arrive as bool arrays of *pruned* channels. The pruner passes only the *prunable*
channels (in layout order): channels the coupling policy never prunes would always agree and
dilute the distance by their share — on the Darknet demo under the ``seed`` policy, 288 of 448
channels — whereas Early-Bird's paper computes it over a network whose channels are all
candidates.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.metrics import early_bird_step, mask_distance
from ..errors import ConfigError

#: where the stability and confidence rules fire whatever the masks say (fraction of the run)
DEFAULT_DEADLINE = 0.6
#: the backtested IoU the confidence rule needs by default
DEFAULT_MIN_CONFIDENCE = 0.9

#: computes the backtested confidence at the current check (None: history too short)
ConfidenceFn = Callable[[], Any]


class PruneTiming:
    """Interface every timing implements.

    ``needs_masks`` tells the pruner whether it must build a mask at each check,
    ``needs_confidence`` whether it must pass ``observe`` a way to compute the backtested
    confidence (timings written before it existed keep working without); ``is_check``
    whether ``step`` is such a check; ``observe`` feeds one check's mask and says whether to
    prune now; ``fires_without_masks`` answers for timings that need no masks.
    """

    needs_masks: bool = False
    needs_confidence: bool = False

    def is_check(self, step: int) -> bool:
        """Whether the pruner must evaluate this step."""
        raise NotImplementedError

    def observe(
        self,
        step: int,
        pruned: np.ndarray | None,
        ambiguous: float | None,
        confidence: ConfidenceFn | None = None,
    ) -> bool:
        """Record one check and return True when pruning should happen at ``step``.

        Args:
            step: the current step.
            pruned: (C,) bool mask of the channels the current forecast would prune (None for
                timings that need no masks).
            ambiguous: fraction of prunable channels whose forecast interval straddles the
                threshold, or None when the forecaster gives no intervals.
            confidence: computes the forecast's backtested confidence now (called only by
                rules that need it, and only when they do: it costs forecaster fits).

        Returns:
            True to prune now.
        """
        raise NotImplementedError

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary of the rule and what it has seen (for logs and reports)."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """What a resumed run needs: :meth:`summary` plus any remembered masks."""
        return self.summary()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict` output (nothing to restore by default)."""

    def describe(self) -> str:
        """One line saying what the rule is."""
        raise NotImplementedError


@dataclass
class FixedTiming(PruneTiming):
    """Prune at one step.

    Args:
        at_step: the step at (or after) which to prune.
    """

    at_step: int

    def is_check(self, step: int) -> bool:
        return step >= self.at_step

    def observe(
        self,
        step: int,
        pruned: np.ndarray | None,
        ambiguous: float | None,
        confidence: ConfidenceFn | None = None,
    ) -> bool:
        return step >= self.at_step

    def summary(self) -> dict[str, Any]:
        return {"kind": "fixed", "at_step": self.at_step}

    def describe(self) -> str:
        return f"fixed: prune at step {self.at_step}"


@dataclass
class MaskStabilityTiming(PruneTiming):
    """Prune once successive masks stop changing (and, optionally, intervals separate).

    Args:
        check_every: steps between checks (Early-Bird checks once per epoch).
        window: how many previous masks the newest one is compared with.
        tolerance: the largest normalized Hamming distance allowed to each of them.
        min_step: no check fires before this step (forecasters need some history).
        deadline: fire at this step whatever the masks say (None: never force).
        max_ambiguous: when the forecaster gives intervals, also require that at most this
            fraction of prunable channels straddle the threshold (None: ignore intervals).
        min_confidence: also require the forecast's backtested confidence (see
            :mod:`~forecastprune.pipeline.confidence`) to reach this (None: no backtest).
        name: ``"early-bird"``, ``"auto"`` or ``"confidence"``, for reports.
    """

    check_every: int
    window: int = 4
    tolerance: float = 0.1
    min_step: int = 0
    deadline: int | None = None
    max_ambiguous: float | None = None
    min_confidence: float | None = None
    name: str = "mask-stability"
    needs_masks: bool = True
    history: deque = field(init=False, repr=False)
    distances: list[tuple[int, float]] = field(init=False, repr=False)
    confidences: list[tuple[int, dict[str, Any] | None]] = field(init=False, repr=False)
    fired_by: str | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        if self.check_every < 1 or self.window < 1:
            raise ConfigError(
                f"{self.name} timing needs check_every >= 1 and window >= 1; got "
                f"check_every={self.check_every}, window={self.window}"
            )
        if not 0.0 <= self.tolerance <= 1.0:
            raise ConfigError(f"{self.name} tolerance must lie in [0, 1]; got {self.tolerance}")
        if self.min_confidence is not None and not 0.0 <= self.min_confidence <= 1.0:
            raise ConfigError(
                f"{self.name} min_confidence is a backtested IoU and must lie in [0, 1]; got "
                f"{self.min_confidence}"
            )
        self.history = deque(maxlen=self.window + 1)
        self.distances = []
        self.confidences = []
        self.needs_confidence = self.min_confidence is not None

    def is_check(self, step: int) -> bool:
        if self.deadline is not None and step >= self.deadline:
            return True
        return step >= self.min_step and step % self.check_every == 0

    def observe(
        self,
        step: int,
        pruned: np.ndarray | None,
        ambiguous: float | None,
        confidence: ConfidenceFn | None = None,
    ) -> bool:
        if pruned is None:
            raise ConfigError(f"{self.name} timing needs a prune mask at every check")
        pruned = np.asarray(pruned, dtype=bool)
        self.history.append((int(step), pruned))
        previous = list(self.history)[:-1]
        worst = max((mask_distance(pruned, old) for _, old in previous), default=math.nan)
        self.distances.append((int(step), worst))
        steps = np.array([s for s, _ in self.history])
        masks = np.stack([m for _, m in self.history])
        # the newest mask is the only one early_bird_step can accept in a window+1 history
        stable = early_bird_step(steps, masks, self.window, self.tolerance) is not None
        separated = (
            self.max_ambiguous is None or ambiguous is None or (ambiguous <= self.max_ambiguous)
        )
        if stable and separated and self._confident(step, confidence):
            self.fired_by = "stability" if ambiguous is None else "stability+intervals"
            if self.min_confidence is not None:
                self.fired_by += "+confidence"
            return True
        if self.deadline is not None and step >= self.deadline:
            self.fired_by = "deadline"
            return True
        return False

    def _confident(self, step: int, confidence: ConfidenceFn | None) -> bool:
        """Whether the backtested confidence reaches ``min_confidence`` (True without one)."""
        if self.min_confidence is None:
            return True
        if confidence is None:
            raise ConfigError(
                f"the {self.name} timing needs the forecast's backtested "
                "confidence at every check; the caller passed none"
            )
        result = confidence()
        self.confidences.append((int(step), None if result is None else result.to_json()))
        return result is not None and result.value >= self.min_confidence

    def summary(self) -> dict[str, Any]:
        return {
            "kind": self.name,
            "check_every": self.check_every,
            "window": self.window,
            "tolerance": self.tolerance,
            "min_step": self.min_step,
            "deadline": self.deadline,
            "max_ambiguous": self.max_ambiguous,
            "min_confidence": self.min_confidence,
            "confidences": [[s, c] for s, c in self.confidences],
            "fired_by": self.fired_by,
            "distances": [[s, None if math.isnan(d) else d] for s, d in self.distances],
        }

    def state_dict(self) -> dict[str, Any]:
        # the masks as pruned-channel indices: compact when few channels are cut, and plain
        # lists load with torch.load(weights_only=True)
        history = [
            [step, np.flatnonzero(mask).tolist(), int(mask.size)] for step, mask in self.history
        ]
        return {**self.summary(), "history": history}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the remembered masks, distances and firing reason.

        Raises:
            ConfigError: if ``state`` comes from a rule of another kind.
        """
        if state.get("kind") != self.name or "history" not in state:
            raise ConfigError(
                f"the saved timing state is of kind {state.get('kind')!r} but this pruner's "
                f"rule is {self.name!r}; resume with the same prune_at"
            )
        self.history.clear()
        for step, pruned, size in state["history"]:
            mask = np.zeros(int(size), dtype=bool)
            mask[np.asarray(pruned, dtype=np.int64)] = True
            self.history.append((int(step), mask))
        self.distances = [
            (int(s), math.nan if d is None else float(d)) for s, d in state["distances"]
        ]
        self.confidences = [(int(s), c) for s, c in state.get("confidences", [])]
        self.fired_by = state["fired_by"]

    def describe(self) -> str:
        rule = (
            f"{self.name}: every {self.check_every} steps from step {self.min_step}, prune when "
            f"the newest mask is within Hamming {self.tolerance} of each of the previous "
            f"{self.window}"
        )
        if self.max_ambiguous is not None:
            rule += f" and at most {self.max_ambiguous:.0%} of channels straddle the threshold"
        if self.min_confidence is not None:
            rule += (
                f" and the forecaster's backtested pruned-set IoU (discounted to the real "
                f"horizon) is at least {self.min_confidence}"
            )
        if self.deadline is not None:
            rule += f"; forced at step {self.deadline}"
        return rule


def early_bird_timing(
    check_every: int, min_step: int = 0, deadline: int | None = None
) -> MaskStabilityTiming:
    """Early-Bird's criterion: distance ≤ 0.1 to each of the previous 4 masks.

    Args:
        check_every: steps between masks (one epoch in the paper).
        min_step: no firing before this step.
        deadline: force pruning at this step (None: never).

    Returns:
        The timing; feed it masks of the *current* |γ| (the ``naive`` forecaster).
    """
    return MaskStabilityTiming(
        check_every=check_every,
        window=4,
        tolerance=0.1,
        min_step=min_step,
        deadline=deadline,
        name="early-bird",
    )


def auto_timing(
    check_every: int,
    *,
    window: int = 3,
    tolerance: float = 0.1,
    max_ambiguous: float | None = None,
    min_step: int = 0,
    deadline: int | None = None,
    min_confidence: float | None = None,
) -> MaskStabilityTiming:
    """Our rules: forecast masks stable over ``window`` checks, intervals separated, and (the
    ``confidence`` rule) the forecaster's backtest at least ``min_confidence``.

    Args:
        check_every: steps between checks.
        window: previous forecast masks the newest must agree with.
        tolerance: largest normalized Hamming distance to each of them.
        max_ambiguous: largest fraction of prunable channels whose forecast interval may
            straddle the threshold (applies only to forecasters with intervals; None: ignore).
        min_step: no firing before this step.
        deadline: force pruning at this step (None: never).
        min_confidence: the backtested confidence the forecast must reach (None: the
            ``stability`` rule, no backtest).

    Returns:
        The timing; feed it masks of the *forecast* end-of-training |γ| (and, with
        ``min_confidence``, a way to compute the confidence).
    """
    return MaskStabilityTiming(
        check_every=check_every,
        window=window,
        tolerance=tolerance,
        min_step=min_step,
        deadline=deadline,
        max_ambiguous=max_ambiguous,
        min_confidence=min_confidence,
        name="stability" if min_confidence is None else "confidence",
    )
