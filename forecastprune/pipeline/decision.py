"""One prune decision from a γ history: forecast the final |γ|, then threshold it.

This is the single place where the pipeline turns a recorded history into a
:class:`~forecastprune.engine.threshold.PruneDecision`, so the fixed, Early-Bird and automatic
timings and the final prune all see masks made the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.threshold import PruneDecision, select_channels
from ..errors import PruningError
from ..forecasters import get_forecaster
from ..forecasters.base import Clock


@dataclass(frozen=True)
class MaskRule:
    """How forecasts become masks.

    Args:
        ratio: fraction of the prunable channels to prune.
        min_keep: channels every layer keeps at least.
        uncertainty: prune only channels whose forecast upper bound is below the cut too
            (needs a forecaster with intervals; ignored otherwise).
        coverage: the central coverage of the forecast intervals.
    """

    ratio: float = 0.5
    min_keep: int = 1
    uncertainty: bool = False
    coverage: float = 0.9

    def __post_init__(self) -> None:
        if not 0.0 < self.ratio < 1.0:
            raise PruningError(
                f"ratio is the fraction of prunable channels to prune and must lie in (0, 1); "
                f"got {self.ratio}"
            )


@dataclass(frozen=True)
class ForecastMask:
    """A decision plus what the timing rules need to know about it.

    Attributes:
        decision: the engine's decision on the forecast |γ|.
        predicted: (C,) the forecast end-of-training |γ| (clipped at 0).
        ambiguous: fraction of prunable channels whose forecast interval straddles the cut
            (None when the forecaster gives no intervals).
        seconds: fit + predict time.
    """

    decision: PruneDecision
    predicted: np.ndarray
    ambiguous: float | None
    seconds: float


def forecast_mask(
    forecaster: str | Any,
    steps: np.ndarray,
    gammas: np.ndarray,
    target_step: int,
    plan: Any,
    rule: MaskRule,
    clock: Clock | None = None,
) -> ForecastMask:
    """Forecast every channel's |γ| at ``target_step`` and threshold the forecast.

    Args:
        forecaster: a registry spec (``"sma"``, ``"arima(p=2,d=1,q=1)"``) — a fresh instance
            is made per call so no state leaks between checks.
        steps: (T,) recorded steps.
        gammas: (T, C) recorded signed γ (its absolute value is forecast, as slimming ranks
            channels by |γ|).
        target_step: the step whose γ is predicted (the planned end of training).
        plan: a :class:`~forecastprune.engine.coupling.ChannelPlan` (layout, prunable, groups).
        rule: ratio, floors and the uncertainty policy.
        clock: maps steps to cumulative LR for forecasters on the ``lr`` time axis.

    Returns:
        The :class:`ForecastMask`.
    """
    import time

    start = time.perf_counter()
    model = get_forecaster(forecaster) if isinstance(forecaster, str) else forecaster
    model.fit(steps, np.abs(gammas), clock)
    predicted = np.clip(model.predict(target_step), 0.0, None)
    lower = upper = None
    if model.supports_interval():
        lower, upper = model.predict_interval(target_step, rule.coverage)
    decision = select_channels(
        predicted, plan.layout, ratio=rule.ratio, prunable=plan.prunable, groups=plan.groups,
        min_keep=rule.min_keep, upper=upper if rule.uncertainty else None,
    )
    ambiguous = _ambiguous(lower, upper, decision.threshold, plan.prunable)
    return ForecastMask(decision, predicted, ambiguous, time.perf_counter() - start)


def _ambiguous(lower: np.ndarray | None, upper: np.ndarray | None, cut: float,
               prunable: np.ndarray) -> float | None:
    """Share of prunable channels whose interval [lower, upper] contains the cut."""
    if lower is None or upper is None or not math.isfinite(cut):
        return None
    straddle = np.asarray(prunable) & (lower <= cut) & (upper >= cut)
    return float(np.count_nonzero(straddle)) / max(1, int(np.count_nonzero(prunable)))
