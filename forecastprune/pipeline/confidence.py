"""How far to trust a forecast now: the forecaster's own backtest inside the γ history.

The ``confidence`` timing rule (:mod:`~forecastprune.pipeline.timing`) prunes when the forecast
mask has settled *and* the forecaster has been right, inside this run, at the job it is about to
do. :func:`backtest_confidence` measures the second part:

1. **Backtests.** :func:`~forecastprune.forecasters.backtest.backtest_pairs` picks up to three
   (origin, target) pairs of snapshots already seen whose horizon-to-history ratio matches the
   real one, ``(t_final − t_now) / (t_now − t_0)``, on the run's clock (cumulative learning
   rate when the store knows it, else steps).
2. **Score.** The forecaster is fitted on the history up to the origin and predicts the target;
   both the prediction and the |γ| actually seen at the target go through the same
   :class:`~forecastprune.engine.spec.PruneSpec` (same ratio, policy and floors as the real
   prune), and the score is the IoU of the two *pruned* sets — how much of the cut the forecast
   got right.
3. **Honest horizon.** Origins are clamped (at least half of the history up to the target, and
   a few snapshots), so early in a run a backtest covers a *shorter* horizon than the real
   forecast: at 10 % of a run the real ratio is 9, a clamped backtest's about 1. A short
   backtest says little about a long forecast, so each IoU is discounted to the real horizon
   as ``IoU ** (real / backtest)`` (never raised: a backtest longer than needed counts as is).
   The exponent assumes the agreement decays geometrically with the horizon — each stretch of
   the run reshuffles about the same share of the cut. That is an assumption, not a fit; it
   errs on the side of waiting (a 0.95 backtest over a third of the real horizon counts as
   0.86), which is the safe side for a rule whose mistake is pruning too early.
4. **Confidence** is the *smallest* discounted IoU over the backtests: the forecast must have
   held at every origin, as ``auto`` requires of a trend before it trusts one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.metrics import iou
from ..engine.spec import PruneSpec
from ..engine.threshold import select_channels
from ..errors import ForecasterError
from ..forecasters.backtest import backtest_pairs
from ..predict import attach_layout, build_forecaster, predict_history

#: backtest origins (the most :func:`backtest_pairs` gives)
ORIGINS = 3


@dataclass(frozen=True)
class Backtest:
    """One backtest: fitted up to ``origin_step``, scored at ``target_step``.

    Attributes:
        origin_step: last step the forecaster saw.
        target_step: the seen step it predicted.
        iou: IoU of the predicted and the seen pruned sets.
        horizon: this backtest's horizon-to-history ratio on the clock.
        discounted: ``iou`` discounted to the real horizon.
    """

    origin_step: int
    target_step: int
    iou: float
    horizon: float
    discounted: float


@dataclass(frozen=True)
class Confidence:
    """The backtested confidence in a forecast made now.

    Attributes:
        value: the smallest discounted IoU over the backtests (what the rule compares).
        horizon: the real forecast's horizon-to-history ratio.
        backtests: every backtest, in :func:`backtest_pairs` order.
    """

    value: float
    horizon: float
    backtests: tuple[Backtest, ...]

    @property
    def coverage(self) -> float:
        """The shortest backtest horizon as a share of the real one (1 when all reach it)."""
        if self.horizon <= 0.0:
            return 1.0
        return min(1.0, min(b.horizon for b in self.backtests) / self.horizon)

    def to_json(self) -> dict[str, Any]:
        """Plain numbers for summaries and checkpoints."""
        return {
            "value": self.value,
            "horizon": self.horizon,
            "coverage": self.coverage,
            "backtests": [
                [b.origin_step, b.target_step, b.iou, b.horizon, b.discounted]
                for b in self.backtests
            ],
        }


def backtest_confidence(
    forecaster: Any,
    steps: np.ndarray,
    gammas: np.ndarray,
    target_step: int,
    plan: Any,
    spec: PruneSpec,
    clock: Any = None,
) -> Confidence | None:
    """Backtest ``forecaster`` inside the history at the real horizon (see the module docs).

    Args:
        forecaster: a registry spec or an instance (never fitted in place).
        steps: (T,) recorded steps up to now.
        gammas: (T, C) recorded signed γ.
        target_step: the step the real forecast targets (the planned end of training).
        plan: the :class:`~forecastprune.engine.coupling.ChannelPlan` of the real prune.
        spec: the real prune's :class:`PruneSpec` (ratio, floors).
        clock: maps steps to cumulative LR (None: measure horizons in steps).

    Returns:
        The :class:`Confidence`, or None while the history is too short for any backtest the
        forecaster can fit.
    """
    steps = np.asarray(steps)
    axis = _axis(steps, clock)
    target_t = float(_axis(np.array([target_step]), clock)[0])
    span = float(axis[-1] - axis[0])
    if span <= 0.0:
        return None
    real = max(target_t - float(axis[-1]), 0.0) / span
    fewest = int(build_forecaster(forecaster).get_tag("min_history"))
    backtests = []
    for origin, target in backtest_pairs(axis, target_t, ORIGINS):
        if origin + 1 < fewest:
            continue
        backtests.append(
            _backtest(forecaster, steps, gammas, origin, target, axis, real, plan, spec, clock)
        )
    if not backtests:
        return None
    return Confidence(min(b.discounted for b in backtests), real, tuple(backtests))


def _backtest(
    forecaster: Any,
    steps: np.ndarray,
    gammas: np.ndarray,
    origin: int,
    target: int,
    axis: np.ndarray,
    real: float,
    plan: Any,
    spec: PruneSpec,
    clock: Any,
) -> Backtest:
    """Fit up to ``origin``, predict ``target``, score the pruned sets, discount the score."""
    try:
        model = attach_layout(build_forecaster(forecaster), plan)
        prediction = predict_history(
            model, steps[: origin + 1], gammas[: origin + 1], int(steps[target]), clock=clock
        )
    except ForecasterError as exc:
        raise ForecasterError(
            f"backtesting the forecast from step {int(steps[origin])} to step "
            f"{int(steps[target])} failed: {exc}"
        ) from exc
    predicted = select_channels(prediction.scores, plan, spec).pruned
    seen = select_channels(np.abs(np.asarray(gammas[target], dtype=np.float64)), plan, spec).pruned
    score = iou(predicted, seen)
    horizon = float(axis[target] - axis[origin]) / max(float(axis[origin] - axis[0]), 1e-12)
    exponent = max(1.0, real / horizon) if horizon > 0.0 else float("inf")
    return Backtest(
        int(steps[origin]),
        int(steps[target]),
        score,
        horizon,
        float(score**exponent) if score > 0.0 else 0.0,
    )


def _axis(steps: np.ndarray, clock: Any) -> np.ndarray:
    """Time coordinates: the clock's cumulative LR, or the steps themselves."""
    values = steps if clock is None else clock(steps)
    return np.asarray(values, dtype=np.float64)
