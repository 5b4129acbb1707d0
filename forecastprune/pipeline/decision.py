"""One prune decision from a γ history: predict the final |γ|, then threshold it.

The pipeline's fixed, Early-Bird and automatic timings and its final prune all see masks made
here, through the library's single prediction path (:func:`forecastprune.predict.predict_history`)
and the shared :class:`~forecastprune.engine.spec.PruneSpec`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..engine.spec import PruneSpec
from ..engine.threshold import PruneDecision, ambiguous_share, select_channels
from ..predict import Prediction, attach_layout, build_forecaster, predict_history

__all__ = ["ForecastMask", "forecast_mask"]


@dataclass(frozen=True)
class ForecastMask:
    """A decision plus what the timing rules need to know about it.

    Attributes:
        decision: the engine's decision on the forecast |γ|.
        prediction: the forecast it was made from (scores clipped at 0, intervals).
        ambiguous: fraction of prunable channels whose forecast interval straddles the cut
            (None when the forecaster gives no intervals).
    """

    decision: PruneDecision
    prediction: Prediction
    ambiguous: float | None

    @property
    def predicted(self) -> np.ndarray:
        """(C,) the forecast end-of-training |γ|."""
        return self.prediction.scores

    @property
    def seconds(self) -> float:
        """Fit + predict time."""
        return self.prediction.seconds


def forecast_mask(
    forecaster: Any,
    steps: np.ndarray,
    gammas: np.ndarray,
    target_step: int,
    plan: Any,
    spec: PruneSpec,
    clock: Any = None,
) -> ForecastMask:
    """Forecast every channel's |γ| at ``target_step`` and threshold the forecast.

    Args:
        forecaster: a registry spec or an instance (never fitted in place).
        steps: (T,) recorded steps.
        gammas: (T, C) recorded signed γ.
        target_step: the step whose γ is predicted (the planned end of training).
        plan: a :class:`~forecastprune.engine.coupling.ChannelPlan`.
        spec: the ratio, floors and uncertainty rule of the cut.
        clock: maps steps to cumulative LR for forecasters on the ``lr`` time axis.

    Returns:
        The :class:`ForecastMask`.
    """
    model = attach_layout(build_forecaster(forecaster), plan)
    prediction = predict_history(
        model, steps, gammas, target_step, clock=clock, coverage=spec.coverage
    )
    decision = select_channels(prediction.scores, plan, spec, upper=prediction.upper)
    ambiguous = ambiguous_share(
        prediction.lower, prediction.upper, decision.threshold, plan.prunable
    )
    return ForecastMask(decision, prediction, ambiguous)
