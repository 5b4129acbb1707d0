"""Adapters: ``sktime:<EstimatorName>`` and ``statsforecast:<Model>`` as forecasters.

Both run a foreign library on every channel at once: the history is resampled onto an even grid
(:mod:`.evengrid`, the same mapping ARIMA uses), handed over in one table, and forecast
``H`` grid intervals ahead, fractional ``H`` interpolated between ``⌊H⌋`` and ``⌊H⌋ + 1``.

* sktime gets one wide ``DataFrame`` (T rows × C columns, integer index) and ``fh=[H]``; it
  vectorizes univariate forecasters over the columns itself. The class is resolved by name
  through ``sktime.registry.all_estimators`` (cached) and built with ``cls(**params)`` from a
  dict — never sktime's ``craft``, which evaluates strings.
* statsforecast gets one long frame (``unique_id``, ``ds``, ``y``) and ``h = H``; the model
  class comes from ``statsforecast.models`` by name. statsforecast is an optional extra.

Both libraries loop over channels in Python (milliseconds per channel), so the adapters carry
the tag ``vectorized=False`` and are meant for comparisons on modest layouts, not 100,000 channels.
What they assume about γ is whatever the chosen model assumes.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from .._util import closest
from ..errors import ForecasterError, UnknownForecasterError
from .base import Forecaster
from .evengrid import at_horizon, resample_even
from .registry import register_prefix
from .validate import check_choice

STATSFORECAST_EXTRA = "pip install 'forecastprune[statsforecast]'"


@functools.lru_cache(maxsize=1)
def sktime_forecasters() -> dict[str, type]:
    """sktime's forecaster classes by name (the registry scan takes seconds: cached)."""
    from sktime.registry import all_estimators

    return dict(all_estimators("forecaster", return_names=True))


@functools.lru_cache(maxsize=1)
def statsforecast_models() -> dict[str, type]:
    """statsforecast's model classes by name.

    Raises:
        ForecasterError: statsforecast is not installed (names the extra to install).
    """
    try:
        import statsforecast.models as models
    except ImportError as exc:
        raise ForecasterError(
            f"statsforecast:<Model> needs statsforecast, which is not installed: "
            f"{STATSFORECAST_EXTRA}"
        ) from exc
    return {name: getattr(models, name) for name in models.__all__}


def _resolve(library: str, name: str, catalogue: Mapping[str, type]) -> type:
    if name in catalogue:
        return catalogue[name]
    raise UnknownForecasterError(
        f"{library} has no forecaster called {name!r}.{closest(name, catalogue, 0.5)} Valid "
        f"names: {sorted(catalogue)}"
    )


def _construct(library: str, cls: type, params: Mapping[str, Any]) -> Any:
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise ForecasterError(
            f"cannot build {library}:{cls.__name__} with {dict(params)}: {exc}. Check the "
            f"parameter names and values in the {library} documentation of {cls.__name__}"
        ) from exc


class _GridAdapter(Forecaster):
    """Shared plumbing: even grid, horizon mapping, interpolation, last value at H = 0."""

    library: str = ""
    # supports_interval on the class: some members give intervals; each instance asks its
    # model in __init__, so callers only request intervals that exist.
    _tags = {
        "time_axis_param": True,
        "vectorized": False,
        "supports_interval": True,
        "min_history": 3,
    }

    def __init__(
        self, estimator: str, params: dict[str, Any] | None = None, time_axis: str = "step"
    ) -> None:
        self.estimator = estimator
        self.params = params
        self.time_axis = time_axis
        check_choice(f"{self.library}:{estimator}", "time_axis", time_axis, ("step", "lr"))
        if params is not None and not isinstance(params, dict):
            raise ForecasterError(
                f"{self.library}:{estimator}: params must be a dict of parameters; got {params!r}"
            )
        self._make()  # a bad name or parameter fails here, at get_forecaster
        self.set_tags(
            needs_clock=time_axis == "lr", supports_interval=self._model_gives_intervals()
        )

    def _catalogue(self) -> Mapping[str, type]:
        raise NotImplementedError

    def _model_gives_intervals(self) -> bool:
        raise NotImplementedError

    def _make(self) -> Any:
        cls = _resolve(self.library, self.estimator, self._catalogue())
        return _construct(self.library, cls, self.params or {})

    def _fit(self, t: np.ndarray, values: np.ndarray) -> None:
        self.grid_, y = resample_even(t, values)
        self.last_ = y[-1].copy()
        self._fit_grid(y)

    def _fit_grid(self, y: np.ndarray) -> None:
        raise NotImplementedError

    def _forecast(self, horizons: list[int], coverage: float | None) -> tuple[np.ndarray, ...]:
        """Forecast (and interval bounds when ``coverage`` is set) at whole horizons."""
        outputs = 1 if coverage is None else 3
        arrays = [np.repeat(self.last_[None, :], len(horizons), axis=0) for _ in range(outputs)]
        ahead = sorted({h for h in horizons if h > 0})
        if ahead:
            foreign = self._foreign_forecast(ahead, coverage)
            for row, horizon in enumerate(horizons):
                if horizon > 0:
                    for array, result in zip(arrays, foreign):
                        array[row] = result[ahead.index(horizon)]
        return tuple(arrays)

    def _foreign_forecast(
        self, horizons: list[int], coverage: float | None
    ) -> tuple[np.ndarray, ...]:
        raise NotImplementedError

    def _predict(self, target_t: float) -> np.ndarray:
        (mean,) = at_horizon(lambda h: self._forecast(h, None), self.grid_.horizon(target_t))
        return mean

    def _predict_interval(self, target_t: float, coverage: float) -> tuple[np.ndarray, np.ndarray]:
        horizon = self.grid_.horizon(target_t)
        _, lower, upper = at_horizon(lambda h: self._forecast(h, coverage), horizon)
        return lower, upper


class SktimeForecaster(_GridAdapter):
    """Any sktime forecaster, fitted on all channels at once (one wide DataFrame).

    Args:
        estimator: the sktime class name, e.g. ``"NaiveForecaster"``, ``"ThetaForecaster"``.
        params: its parameters as a dict (never strings evaluated as code).
        time_axis: ``"step"`` or ``"lr"``: the axis the even grid is laid on.
    """

    library = "sktime"
    description = "any sktime forecaster, all channels in one wide DataFrame"

    def _catalogue(self) -> Mapping[str, type]:
        return sktime_forecasters()

    def _make(self) -> Any:
        return self._quiet(super()._make)

    def _model_gives_intervals(self) -> bool:
        return bool(self._make().get_tag("capability:pred_int"))

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        return [
            {"estimator": "NaiveForecaster"},
            {"estimator": "NaiveForecaster", "params": {"strategy": "mean", "window_length": 3}},
        ]

    def _fit_grid(self, y: np.ndarray) -> None:
        self.frame_ = pd.DataFrame(y)
        model = self._make()
        # Forecasters that must know the horizon while fitting are fitted at predict time.
        self.model_ = (
            None
            if model.get_tag("requires-fh-in-fit")
            else self._quiet(lambda: model.fit(self.frame_))
        )

    def _foreign_forecast(
        self, horizons: list[int], coverage: float | None
    ) -> tuple[np.ndarray, ...]:
        model = self.model_ or self._quiet(lambda: self._make().fit(self.frame_, fh=horizons))
        mean = self._quiet(lambda: model.predict(fh=horizons)).to_numpy(dtype=np.float64)
        if coverage is None:
            return (mean,)
        bounds = self._quiet(lambda: model.predict_interval(fh=horizons, coverage=coverage))
        return (
            mean,
            bounds.xs("lower", axis=1, level=-1).to_numpy(dtype=np.float64),
            bounds.xs("upper", axis=1, level=-1).to_numpy(dtype=np.float64),
        )

    def _quiet(self, call: Any) -> Any:
        """Run an sktime call; its value errors (bad parameter values) become user errors."""
        # sktime 1.2 warns once per column that a config default will change; not actionable.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"sktime\.")
            try:
                return call()
            except (TypeError, ValueError) as exc:
                raise ForecasterError(
                    f"sktime:{self.estimator} with {self.params or {}} failed: {exc}"
                ) from exc


class StatsforecastForecaster(_GridAdapter):
    """A statsforecast model run on every channel (one long frame, one series per channel).

    Args:
        estimator: the model class name in ``statsforecast.models``, e.g. ``"Naive"``,
            ``"ARIMA"`` (with ``params={"order": (2, 1, 1)}``), ``"AutoARIMA"``.
        params: its parameters as a dict.
        time_axis: ``"step"`` or ``"lr"``: the axis the even grid is laid on.

    Raises:
        ForecasterError: statsforecast is not installed.
    """

    library = "statsforecast"
    description = "a statsforecast model on every channel (extra: statsforecast)"

    def _catalogue(self) -> Mapping[str, type]:
        return statsforecast_models()

    def _model_gives_intervals(self) -> bool:
        # statsforecast has no capability flag: some models raise unless built with conformal
        # settings. Ask one on a short random walk (a too-regular series trips its ARIMA).
        probe = 10.0 + np.cumsum(np.random.default_rng(0).normal(size=30))
        try:
            self._make().forecast(y=probe, h=1, level=[50])
        except Exception:  # noqa: BLE001 - any refusal means "no intervals"
            return False
        return True

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        return [
            {"estimator": "Naive"},
            {"estimator": "WindowAverage", "params": {"window_size": 3}},
        ]

    def _fit_grid(self, y: np.ndarray) -> None:
        from statsforecast import StatsForecast

        n_rows, n_channels = y.shape
        frame = pd.DataFrame(
            {
                "unique_id": np.repeat(np.arange(n_channels), n_rows),
                "ds": np.tile(np.arange(n_rows), n_channels),
                "y": y.T.ravel(),
            }
        )
        self.model_ = StatsForecast(models=[self._make()], freq=1, n_jobs=1).fit(frame)

    def _foreign_forecast(
        self, horizons: list[int], coverage: float | None
    ) -> tuple[np.ndarray, ...]:
        levels = None if coverage is None else [100.0 * coverage]
        try:
            table = self.model_.predict(h=max(horizons), level=levels)
        except Exception as exc:  # noqa: BLE001 - e.g. models without intervals
            raise ForecasterError(
                f"statsforecast:{self.estimator} could not forecast"
                f"{'' if levels is None else ' with intervals'}: {exc}"
            ) from exc
        table = table.sort_values(["unique_id", "ds"])
        # Columns: the model's alias, then "<alias>-lo-<level>" and "<alias>-hi-<level>".
        forecasts = [c for c in table.columns if c not in ("unique_id", "ds")]
        columns = forecasts[:1] + [
            next(c for c in forecasts if f"-{side}-" in c)
            for side in (("lo", "hi") if levels else ())
        ]
        rows = np.asarray(horizons) - 1
        return tuple(
            table[column].to_numpy(dtype=np.float64).reshape(self.n_channels_, -1)[:, rows].T
            for column in columns
        )


def _factory(cls: type[_GridAdapter]) -> Any:
    def build(name: str, params: dict[str, Any]) -> Forecaster:
        time_axis = params.pop("time_axis", "step")
        return cls(estimator=name, params=params, time_axis=time_axis)

    return build


register_prefix(
    "sktime",
    _factory(SktimeForecaster),
    description=SktimeForecaster.description + " (sktime:ThetaForecaster(sp=1))",
    examples=("sktime:NaiveForecaster",),
)
register_prefix(
    "statsforecast",
    _factory(StatsforecastForecaster),
    description=StatsforecastForecaster.description + " (statsforecast:AutoARIMA)",
    examples=("statsforecast:Naive",),
)
