"""``auto``: choose a forecaster per run and per cutoff by backtesting inside the history.

Pruning needs the *ranking* of the final |γ|, and on many runs the ranking at the cutoff already
is the final one: then ``naive`` is the best forecast and every trend model loses by
extrapolating noise. On others, channels still cross the cut after the cutoff and a trend helps.
Which case a run is in shows inside its own history, so ``auto`` asks the history:

1. **Backtests.** For a few target points ``p`` already seen (the last snapshot and two earlier
   ones), it picks an origin ``o`` so that ``(t_p − t_o) / (t_o − t_0)`` — the horizon over the
   history length — equals the real one, ``(t_target − t_last) / (t_last − t_0)``. With a clock
   the time ``t`` is cumulative learning rate, so a horizon that lies mostly after an LR drop
   counts as short, as it is for γ.
2. **Candidates.** Each candidate (see :mod:`forecastprune.forecasters.candidates`) is fitted on
   the history up to ``o`` and predicts ``p``; the score is how well the predicted *ranking*
   matches the seen one: the mean IoU of the bottom-``q`` channel sets over
   ``q ∈ {0.3, …, 0.7}``.
3. **Choice.** The best candidate wins only if it beats ``naive`` by the required margin on
   average and loses to it at no backtest origin; otherwise the forecast is ``naive``. A
   trend's shrink toward the last value (``λ`` in ``level + λ·slope·h``) is itself a candidate
   parameter, so the backtest decides how much of the trend to believe.
4. **Safety.** Two rules keep ``auto`` from trusting backtests that cannot speak for the real
   horizon; both were set on the suite's tuning runs, where without them the backtest winner
   lost up to 0.068 IoU to ``naive`` in single cells (``docs/suite.md``):

   - *The margin grows with the extrapolation.* Early in a run the real horizon is many times
     the history, but a backtest origin keeps half of its target's history
     (:data:`MIN_ORIGIN_SHARE`), so no backtest spans more than about one history. The margin
     is multiplied by how many times the real horizon exceeds the longest backtested one: a
     forecast that reaches 7× past anything tested needs 7× the evidence.
   - *A settled run stays naive.* Once less than :data:`SETTLED_HORIZON` times the history's
     span lies ahead (in cumulative LR when the clock is known: a run past its LR drops has
     little movement left), the ranking has mostly settled; on the tuning runs the backtest
     winners at such cutoffs gained nothing on average and lost up to 0.068 in single cells.

Everything is batched over channels; 13,376 channels × 200 snapshots take well under a second.
What was chosen is kept in ``chosen_`` and spelled out by :meth:`describe_choice`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ForecasterError
from .backtest import TARGET_FRACTIONS, backtest_pairs, horizon_ratio
from .candidates import Candidate, Window, default_candidates, rank_agreement
from .gated import GatedForecaster
from .registry import register_forecaster
from .validate import check_bool, check_int, check_real

#: below this horizon-to-history ratio (on the forecast's time axis) the forecast is naive
SETTLED_HORIZON = 1.5


@register_forecaster("auto")
class AutoForecaster(GatedForecaster):
    """Naive unless ``learned_gbr`` passes its in-history backtest gate; then its forecast,
    shrunk toward naive's order (see the module docs). The bundled gate is closed: fitted
    family-out with today's ``learned_gbr``, no backtest threshold kept every corpus cell
    above naive − 0.01 (docs/corpus.md), so with the bundled files ``auto`` forecasts naive.

    Args:
        margin: with ``learned=False``, the mean backtest IoU a closed-form candidate must gain
            over ``naive`` to be used.
        origins: backtest target points (1–3: the last snapshot, then earlier ones).
        use_clock: forecast over cumulative learning rate when the run's clock is known.
        learned: use the gated ``learned_gbr`` (default); False: the backtest choice among the
            closed-form candidates instead.
        model: the ``learned_gbr`` model file (None: the bundled one).
        gated: pass the learned forecast through the gate (False: always use it, shrunk by
            nothing — for experiments; it loses up to 0.08 family-out).
        gates: the gates file (None: the bundled one, ``forecastprune/data/gates.json``).
    """

    description = "naive unless learned_gbr passes its backtest gate (fitted family-out)"
    _tags = {"min_history": 1, "uses_layout": True}
    gate_name = "auto"

    def __init__(
        self,
        margin: float = 0.01,
        origins: int = 3,
        use_clock: bool = True,
        learned: bool = True,
        model: str | None = None,
        gated: bool = True,
        gates: str | None = None,
    ) -> None:
        self.margin = margin
        self.origins = origins
        self.use_clock = use_clock
        self.learned = learned
        self.model = model
        self.gated = gated
        self.gates = gates
        check_bool("auto", "learned", learned)
        check_bool("auto", "gated", gated)
        check_real("auto", "margin", margin, 0.0, 1.0, low_open=False)
        check_int("auto", "origins", origins, 1)
        if origins > len(TARGET_FRACTIONS):
            raise ForecasterError(
                f"auto: origins must be between 1 and {len(TARGET_FRACTIONS)}; got {origins}"
            )
        check_bool("auto", "use_clock", use_clock)
        if learned:
            from .learned import learned_gbr_forecast  # learned imports this module's base

            self._learned = learned_gbr_forecast(model)
            if gated:
                self.gate()  # a bad gates file fails here, not at the first forecast

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        return [{}, {"margin": 0.0, "origins": 1, "learned": False}, {"gated": False}]

    # ---------------------------------------------------------------- fit / predict
    def _fit(self, t: np.ndarray, values: np.ndarray) -> None:
        super()._fit(t, values)
        self.candidates_ = default_candidates()
        self.scores_: dict[str, float] = {}
        self.chosen_ = self.candidates_[0]  # naive until a target is known

    def _forecast(self, window: Window) -> np.ndarray:
        if self.learned:
            return self._learned_forecast(window)
        self.chosen_, self.scores_ = self._choose(window)
        return self.chosen_.forecast(window)

    def _learned_forecast(self, window: Window) -> np.ndarray:
        """The gated, shrunk ``learned_gbr``, or naive with the reason in ``skipped_``."""
        self.skipped_, self.gate_open_ = "", None
        naive = self.candidates_[0]
        self.chosen_ = naive
        reach = horizon_ratio(self.t_, window.target_t)
        if window.layers is None:
            self.skipped_ = "no layout given (learned_gbr reads each channel's layer)"
        elif not backtest_pairs(self.t_, window.target_t, self.origins):
            self.skipped_ = "history too short to backtest"
        elif reach < SETTLED_HORIZON:
            self.skipped_ = (
                f"run settled ({reach:.2f}× the history left to forecast, under "
                f"{SETTLED_HORIZON:g}×)"
            )
        else:
            forecast = self._gated(window, self._learned, self.origins)
            if self.gate_open_ is not False:  # open, or no gate asked for
                self.chosen_ = Candidate("learned_gbr", self._learned)
            return forecast
        return naive.forecast(window)

    def _choose(self, window: Window) -> tuple[Candidate, dict[str, float]]:
        """Backtest every candidate; return the chosen one and every mean backtest score."""
        naive = self.candidates_[0]
        self.required_, self.skipped_ = float("nan"), ""
        pairs = backtest_pairs(self.t_, window.target_t, self.origins)
        reach = horizon_ratio(self.t_, window.target_t)
        if not pairs:
            self.skipped_ = "history too short to backtest"
            return naive, {}
        if reach < SETTLED_HORIZON:
            self.skipped_ = (
                f"run settled ({reach:.2f}× the history left to forecast, under "
                f"{SETTLED_HORIZON:g}×)"
            )
            return naive, {}
        table = np.array(
            [[self._score(c, window.head(o, p)) for o, p in pairs] for c in self.candidates_]
        )
        means = table.mean(axis=1)
        scores = {c.name: float(m) for c, m in zip(self.candidates_, means)}
        gains = table - table[0]
        tested = max(horizon_ratio(self.t_[: o + 1], self.t_[p]) for o, p in pairs)
        # no backtest spans any time (a stretch of zero LR): nothing can earn its place
        self.required_ = self.margin * max(1.0, reach / tested) if tested > 0 else float("inf")
        # strictly better on average: a candidate that only ties naive is not worth its risk
        mean_gain = gains.mean(axis=1)
        eligible = (mean_gain >= self.required_) & (mean_gain > 0.0) & (gains.min(axis=1) >= 0.0)
        if not eligible.any():
            return naive, scores
        best = int(np.argmax(np.where(eligible, means, -np.inf)))
        return self.candidates_[best], scores

    def _score(self, candidate: Candidate, head: Window) -> float:
        target = int(np.searchsorted(self.steps_, head.target_step))
        return rank_agreement(candidate.forecast(head), self.values_[target])

    def describe_choice(self) -> str:
        """What was chosen and why, e.g. ``learned_gbr: gate open (backtest_gain +0.0120,
        opens > +0.0040), shrink 0.2`` or ``ar1(w=1, step, λ=1): backtest IoU .912 vs naive
        .880 (needed +0.020)``."""
        if not hasattr(self, "chosen_"):
            return "auto: not fitted"
        if self.learned:
            reason = getattr(self, "skipped_", "") or self.gate_note() or "ungated"
            return f"{self.chosen_.name}: {reason}"
        if not self.scores_:
            return f"{self.chosen_.name}: {getattr(self, 'skipped_', '') or 'not backtested'}"
        naive = self.scores_[self.candidates_[0].name]
        mine = self.scores_[self.chosen_.name]
        return (
            f"{self.chosen_.name}: backtest IoU {mine:.3f} vs naive {naive:.3f}, "
            f"needed +{self.required_:.3f} ({len(self.scores_)} candidates)"
        )
