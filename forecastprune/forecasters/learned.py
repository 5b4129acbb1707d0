"""Learned cross-channel forecasters: one regression over all channels instead of one model each.

All read the channel features of :mod:`forecastprune.forecasters.features` and turn a
regression's output back into |γ|:

- ``global_ridge`` fits a ridge regression (:mod:`forecastprune.forecasters.ridge`) of each
  channel's scale-free change ``(γ_target − γ_last) / scale`` on *this* run, on backtests
  inside its history (the same ratio-matched origin → target pairs ``auto`` uses), pooling
  every channel: what moved, and how, between earlier points of the run predicts what moves
  after the cutoff.
- ``learned`` applies a ridge *ranking* regression fitted on *other* recorded runs
  (``forecastprune fit-forecaster``, :func:`forecastprune.forecasters.training.fit_learned`),
  read from a JSON model file; by default the one fitted on the corpus's tuning families. It
  predicts each channel's final percentile, turned into |γ| as ``learned_gbr``'s is.
- ``learned_gbr`` applies a gradient-boosted *ranking* model fitted on other runs, over the
  same features plus the channel's layer, how its percentile has moved, and how far the run
  is and how settled its ranking (:func:`.features.ranking_features`; it needs the run's
  layout, which every store-based command and :class:`EarlyPruner` hand over). It
  predicts each channel's final percentile; the forecast gives the channels the current |γ|
  values in that order (:func:`.features.from_ranks`), so ratio thresholds cut exactly the
  predicted bottom share.

``learned`` and ``learned_gbr`` know where they were fitted: a model file carries its feature
**domain** (:mod:`forecastprune.forecasters.domain`), and when too many of a run's channels lie
outside it they forecast ``naive`` instead, saying so in their note (``compare`` shows it).
Inside it, each passes a run-level **gate** (:mod:`forecastprune.forecasters.gate`, fitted
family-out on the corpus): on runs unlike those where it gained over naive on other families it
forecasts naive too, and it gives calibrated intervals (``gated=False`` turns the gate off).
"""

from __future__ import annotations

from functools import lru_cache, partial
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ForecasterError
from .backtest import backtest_pairs
from .boosted import BoostedModel
from .candidates import Window
from .domain import Domain, Verdict
from .features import (
    FEATURES,
    RANKING_FEATURES,
    change_target,
    channel_features,
    from_change,
    from_ranks,
    ranking_features,
    ranking_scores,
)
from .gate import ForecastFn
from .gated import GatedForecaster
from .registry import register_forecaster
from .ridge import RidgeModel
from .validate import check_bool, check_real
from .windowed import WindowForecaster

#: the model ``learned`` uses when none is named: fitted on the corpus's tuning families (see
#: :data:`BUNDLED_GBR_MODEL`)
BUNDLED_MODEL = "learned-corpus.json"
#: the model ``learned_gbr`` uses when none is named: fitted on the 123 runs of the corpus's 33
#: tuning families, every run weighing the same, on :data:`.features.RANKING_FEATURES`
#: (scripts/fit_bundled_models.py). Fitted nested family-out, the same fit gained +0.020
#: [+0.016, +0.024] IoU over naive at 10–20 % ungated and behind its gate (+0.016 on the four
#: held-out families fixed before their runs were made); ungated it loses on runs of more than
#: 10,000 channels (−0.005 tuning, −0.014 held out), so its gate keeps it naive from 5,200
#: channels on (docs/corpus.md)
BUNDLED_GBR_MODEL = "learned-gbr-corpus.skops"
#: the columns ``learned_gbr`` reads
LAYERED = RANKING_FEATURES


def bundled_model_path(name: str = BUNDLED_MODEL) -> Path:
    """Where a bundled model lives inside the package."""
    return Path(str(resources.files("forecastprune") / "data" / name))


def learned_gbr_forecast(model: str | None = None) -> ForecastFn:
    """``learned_gbr``'s forecast as a function of a history window, naive outside the
    model's domain (``model``: None for the bundled); what ``auto`` gates. A bound
    module-level function, so forecasters holding it pickle."""
    path = bundled_model_path(BUNDLED_GBR_MODEL) if model is None else Path(model)
    _domain(str(path))  # a bad file fails here, not at the first forecast
    return partial(_gbr_apply, path=str(path))


def _gbr_apply(
    window: Window, path: str, seen: tuple[Window, np.ndarray] | None = None
) -> np.ndarray:
    """The model's forecast of ``window`` (``seen``: a window whose columns were already
    computed, with them: the forecaster's own domain check computes them first)."""
    x = seen[1] if seen is not None and seen[0] is window else ranking_features(window)
    domain = _domain(path)
    if domain is not None and not domain.check(x).inside:
        return window.values[-1].copy()
    booster = _booster(path)
    return from_ranks(window, ranking_scores(x, booster.predict(x), booster.target))


@register_forecaster("learned")
class LearnedForecaster(GatedForecaster):
    """A ridge ranking regression over channel features, fitted on other runs, behind a gate.

    Args:
        model: path of a model JSON written by ``forecastprune fit-forecaster`` (None: the
            bundled model, fitted on the corpus's tuning families).
        use_clock: measure slopes and horizons in cumulative LR when the clock is known (the
            model should have been fitted the same way).
        gated: pass the forecast through the model's gate (:mod:`.gate`): naive on runs
            unlike those where it gained family-out.
        gates: the gates file (None: the bundled one).
    """

    description = "ridge ranking over channel features, fitted on other runs (fit-forecaster)"
    _tags = {"min_history": 1}
    gate_name = "learned"

    def __init__(
        self,
        model: str | None = None,
        use_clock: bool = True,
        gated: bool = True,
        gates: str | None = None,
    ) -> None:
        self.model = model
        self.use_clock = use_clock
        self.gated = gated
        self.gates = gates
        check_bool("learned", "use_clock", use_clock)
        check_bool("learned", "gated", gated)
        self._regression = RidgeModel.load(self.model_path, expected=FEATURES)
        self._domain = Domain.from_info(self._regression.info, str(self.model_path), FEATURES)
        self.gate()  # a bad gates file fails here, not at the first forecast

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        return [{}, {"gated": False}]

    @property
    def model_path(self) -> Path:
        return bundled_model_path() if self.model is None else Path(self.model)

    def _forecast(self, window: Window) -> np.ndarray:
        self.verdict_ = None  # a shut gate decides before the domain is checked
        if self._shut_without_model(window):
            return window.values[-1].copy()
        self.gate_open_ = None  # outside the domain, the note is the domain's alone
        x = channel_features(window)
        if not _trusted(self, self._domain, x):
            return window.values[-1].copy()
        return self._gated(window, partial(_ridge_apply, regression=self._regression))

    def describe_choice(self) -> str:
        """Whether the run lay inside what the model was fitted on (see :mod:`.domain`) and
        what its gate decided."""
        return _joined(_describe(self, "learned"), self.gate_note())


def _ridge_apply(window: Window, regression: RidgeModel) -> np.ndarray:
    return from_ranks(window, regression.predict(channel_features(window)))


def _joined(*notes: str) -> str:
    return "; ".join(n for n in notes if n)


def _trusted(forecaster: WindowForecaster, domain: Domain | None, x: np.ndarray) -> bool:
    """Check ``x`` against the domain, keep the verdict in ``verdict_``, and say whether the
    model may forecast (always, for a model saved without a domain)."""
    forecaster.verdict_ = None if domain is None else domain.check(x)
    return forecaster.verdict_ is None or forecaster.verdict_.inside


def _describe(forecaster: WindowForecaster, name: str) -> str:
    verdict: Verdict | None = getattr(forecaster, "verdict_", None)
    return "" if verdict is None else verdict.describe(name)


@register_forecaster("global_ridge")
class GlobalRidgeForecaster(WindowForecaster):
    """A ridge regression over channel features, fitted on backtests inside this run's history.

    Falls back to the last value when the history is too short for a backtest.

    Args:
        alpha: the ridge penalty (per sample, on standardized features).
        use_clock: measure slopes and horizons in cumulative LR when the clock is known.
    """

    description = "ridge over channel features, fitted on in-history backtests of this run"
    _tags = {"min_history": 1}

    def __init__(self, alpha: float = 0.01, use_clock: bool = True) -> None:
        self.alpha = alpha
        self.use_clock = use_clock
        check_real("global_ridge", "alpha", alpha, 0.0, float("inf"), low_open=False)
        check_bool("global_ridge", "use_clock", use_clock)

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        return [{}, {"alpha": 0.0, "use_clock": False}]

    def _forecast(self, window: Window) -> np.ndarray:
        pairs = backtest_pairs(window.t, window.target_t, 3)
        if not pairs:
            self.fitted_on_ = 0
            return window.values[-1].copy()
        heads = [window.head(o, p) for o, p in pairs]
        x = np.vstack([channel_features(h) for h in heads])
        y = np.concatenate([change_target(h, window.values[p]) for h, (_, p) in zip(heads, pairs)])
        self.regression_ = RidgeModel.fit(x, y, FEATURES, self.alpha)
        self.fitted_on_ = len(pairs)
        # no domain check: its training rows are backtests over shorter histories, so the
        # cutoff's step-axis trends always lie outside them (measured: 54–100 % of channels
        # on the suite's runs), whether or not the forecast is good
        now = channel_features(window)
        return from_change(window, self.regression_.predict(now))


@lru_cache(maxsize=4)
def _booster(path: str) -> BoostedModel:
    """Each model file is read once per process (forecasters are copied per prediction)."""
    return BoostedModel.load(path, LAYERED)


@lru_cache(maxsize=4)
def _domain(path: str) -> Domain | None:
    return Domain.from_info(_booster(path).info, path, LAYERED)


@register_forecaster("learned_gbr")
class LearnedBoostedForecaster(GatedForecaster):
    """Gradient-boosted ranking over channel and layer features, fitted on other runs, behind
    a gate.

    Args:
        model: path of a model written by ``forecastprune fit-forecaster --kind gbr`` (None:
            the bundled model, fitted on the corpus's tuning families).
        use_clock: measure slopes and horizons in cumulative LR when the clock is known.
        gated: pass the forecast through the model's gate (:mod:`.gate`): naive on runs
            unlike those where it gained family-out.
        gates: the gates file (None: the bundled one).
    """

    description = "gradient-boosted ranking over channel + layer features, fitted on other runs"
    _tags = {"min_history": 1, "uses_layout": True}
    gate_name = "learned_gbr"

    def __init__(
        self,
        model: str | None = None,
        use_clock: bool = True,
        gated: bool = True,
        gates: str | None = None,
    ) -> None:
        self.model = model
        self.use_clock = use_clock
        self.gated = gated
        self.gates = gates
        check_bool("learned_gbr", "use_clock", use_clock)
        check_bool("learned_gbr", "gated", gated)
        _domain(str(self.model_path))  # a bad file fails here, not at the first forecast
        self.gate()

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        return [{}, {"gated": False}]

    @property
    def model_path(self) -> Path:
        return bundled_model_path(BUNDLED_GBR_MODEL) if self.model is None else Path(self.model)

    def _forecast(self, window: Window) -> np.ndarray:
        if window.layers is None:
            raise ForecasterError(
                "learned_gbr reads each channel's BN layer but was given no layout; forecast "
                "through a store (compare, prune, forecast, benchmark) or EarlyPruner, or call "
                "set_layout(layer_sizes) first"
            )
        self.verdict_ = None  # a shut gate decides before the domain is checked
        if self._shut_without_model(window):
            return window.values[-1].copy()
        self.gate_open_ = None  # outside the domain, the note is the domain's alone
        path = str(self.model_path)
        x = ranking_features(window)
        if not _trusted(self, _domain(path), x):
            return window.values[-1].copy()
        return self._gated(window, partial(_gbr_apply, path=path, seen=(window, x)))

    def describe_choice(self) -> str:
        """Whether the run lay inside what the model was fitted on (see :mod:`.domain`) and
        what its gate decided."""
        return _joined(_describe(self, "learned_gbr"), self.gate_note())
