"""The public conformance suite over every registered forecaster, and on broken ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from forecastprune.errors import ForecasterError, ForecastPruneError
from forecastprune.forecasters import (
    Forecaster,
    get_forecaster,
    get_forecaster_class,
    list_forecasters,
    load_plugins,
)
from forecastprune.testing import (
    CHECKS,
    PASSED,
    ConformanceError,
    StepDecayClock,
    check_forecaster,
    isolated_registry,
)

SINGLE_FILE_PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "single_file_plugin.py"
#: forecasters whose conformance run takes over a second (statsmodels fits, learned models);
#: the adapters' example specs (sktime, statsforecast) are slow too
SLOW_CASES = ("arima", "learned_gbr", "global_ridge")


def _cases() -> list[Any]:
    """Every registered forecaster (built-ins, installed plugins, the single-file plugin) by
    name, and every example spec of every prefix family (adapters)."""
    cases: list[Any] = []
    with isolated_registry():  # the file plugin must not leak into other test modules
        load_plugins(SINGLE_FILE_PLUGIN)
        for info in list_forecasters(include_broken=False):
            if info.is_prefix:
                cases += [
                    pytest.param(("spec", spec), id=spec, marks=pytest.mark.slow)
                    for spec in info.examples
                ]
            else:
                marks = pytest.mark.slow if info.name in SLOW_CASES else ()
                cases.append(pytest.param(("class", info.name), id=info.name, marks=marks))
    return cases


CASES = _cases()


def test_cases_cover_builtins_adapters_and_the_file_plugin() -> None:
    ids = {case.id for case in CASES}
    assert {"naive", "sma", "ema", "linear", "arima", "median", "sktime:NaiveForecaster"} <= ids


def _build_example(spec: str) -> Forecaster:
    """A prefix family's example; skipped (with the reason) only when its optional library is
    missing, e.g. statsforecast, which CI does not install."""
    try:
        return get_forecaster(spec)
    except ForecasterError as exc:
        if isinstance(exc.__cause__, ImportError):
            pytest.skip(f"{spec}: optional dependency not installed ({exc})")
        raise


@pytest.mark.parametrize("case", CASES)
def test_every_registered_forecaster_conforms(case: tuple[str, str]) -> None:
    kind, name = case
    # Resolved here, not at collection: loading the file plugin again (as other tests do)
    # re-imports its module, and only the class now in that module pickles.
    with isolated_registry():
        load_plugins(SINGLE_FILE_PLUGIN)
        template = _build_example(name) if kind == "spec" else get_forecaster_class(name)
        results = check_forecaster(template)
    n_configs = 1 if kind == "spec" else len(template.get_test_params())
    assert len(results) == len(CHECKS) * n_configs
    assert set(results.values()) == {PASSED}


def test_accepts_an_instance_and_a_custom_clock() -> None:
    results = check_forecaster(
        get_forecaster("linear(window=4, time_axis=lr)"),
        clock=StepDecayClock(lr=0.5, drop_at=100),
        n_large=1000,
    )
    assert list(results) == [
        f"{name}[LinearForecaster(window=4, clip_at_zero=True, damped=None, time_axis='lr')]"
        for name in CHECKS
    ]


def test_runs_selected_checks_and_rejects_unknown_names() -> None:
    results = check_forecaster(get_forecaster("sma(window=3)"), checks=["tags", "pickle"])
    assert results == {
        "tags[SMAForecaster(window=3)]": PASSED,
        "pickle[SMAForecaster(window=3)]": PASSED,
    }
    naive = get_forecaster("naive")
    assert list(check_forecaster(naive, checks="tags")) == ["tags[NaiveForecaster()]"]
    with pytest.raises(ForecasterError, match=r"unknown conformance check\(s\) \['tag'\]"):
        check_forecaster(get_forecaster("naive"), checks=["tag"])


def test_rejects_what_is_not_a_forecaster() -> None:
    with pytest.raises(TypeError, match="Forecaster class or instance"):
        check_forecaster(object())  # type: ignore[arg-type]


# ------------------------------------------------------------------ the suite can fail
class _Last(Forecaster):
    """A correct baseline the broken variants below each break in one way."""

    description = "last value"
    _tags = {"history_window": 1}

    def __init__(self) -> None:
        pass

    def _fit(self, t: np.ndarray, values: np.ndarray) -> None:
        self.last_ = values[-1].copy()

    def _predict(self, target_t: float) -> np.ndarray:
        return self.last_.copy()


class _Mutates(_Last):
    def _fit(self, t: np.ndarray, values: np.ndarray) -> None:
        super()._fit(t, values)
        values += 1.0  # the base passes the caller's float64 array through


class _Random(_Last):
    def _predict(self, target_t: float) -> np.ndarray:
        return self.last_ + np.random.default_rng().normal(size=self.last_.shape)


class _WrongConstant(_Last):
    def _predict(self, target_t: float) -> np.ndarray:
        return self.last_ * 0.5


class _NaN(_Last):
    def _predict(self, target_t: float) -> np.ndarray:
        out = self.last_.copy()
        out[0] = np.nan
        return out


class _HiddenParam(_Last):
    def __init__(self, window: int = 3) -> None:
        self.size = window  # stored under another name: get_params() cannot see it


class _SilentShortHistory(_Last):
    _tags = {"min_history": 3, "history_window": 3}

    def _validate_history(self, steps: Any, values: Any) -> tuple[np.ndarray, np.ndarray]:
        steps, values = np.asarray(steps, float), np.asarray(values, float)
        if len(steps) < 3:
            raise ForecasterError("history too short")  # does not name the minimum
        return super()._validate_history(steps, values)


class _Unpicklable(_Last):
    def _fit(self, t: np.ndarray, values: np.ndarray) -> None:
        super()._fit(t, values)
        self.hook_ = lambda: None


class _BadInterval(_Last):
    _tags = {"supports_interval": True}

    def _predict_interval(self, target_t: float, coverage: float) -> tuple[np.ndarray, np.ndarray]:
        return self.last_ + 1.0, self.last_ + 2.0  # does not contain the forecast


class _ClaimsIntervals(_Last):
    _tags = {"supports_interval": True}  # but implements no _predict_interval


class _LoopsForever(_Last):
    """Per-channel loop: must run the small wide check, not 100,000 channels."""

    _tags = {"vectorized": False}

    def _fit(self, t: np.ndarray, values: np.ndarray) -> None:
        if values.shape[1] > 1000:
            raise AssertionError("the wide check ignored vectorized=False")
        self.last_ = np.array([values[-1, c] for c in range(values.shape[1])])


class _WrongDtype(_Last):
    def predict(self, target_step: int | float) -> np.ndarray:
        return super().predict(target_step).astype(int)


class _BadTagType(_Last):
    _tags = {"min_history": "3"}


class _ClockMismatch(_Last):
    def __init__(self, time_axis: str = "lr") -> None:
        self.time_axis = time_axis  # needs_clock and time_axis_param left False


class _ChangesParams(_Last):
    def __init__(self, window: int = 3) -> None:
        self.window = window

    def _fit(self, t: np.ndarray, values: np.ndarray) -> None:
        super()._fit(t, values)
        self.window = len(t)  # fitted state written into a hyper-parameter


class _Accumulates(_Last):
    def _fit(self, t: np.ndarray, values: np.ndarray) -> None:
        # State outside the '_'-suffixed attributes survives the reset of a refit.
        self.total = getattr(self, "total", 0.0) + values[-1]
        self.last_ = self.total.copy()


class _Caches(_Last):
    def _fit(self, t: np.ndarray, values: np.ndarray) -> None:
        if not hasattr(self, "cache"):  # the first fit's data leaks into every later one
            self.cache = values[-1].copy()
        self.last_ = self.cache.copy()


class _KeepsOldAttributes(_Last):
    def _fit(self, t: np.ndarray, values: np.ndarray) -> None:
        super()._fit(t, values)
        if values.shape[1] < 5:
            self._narrow_ = True

    def _reset_fitted_state(self) -> None:  # a subclass that forgets to reset
        pass


class _ReadsMoreThanItsWindow(_Last):
    def _fit(self, t: np.ndarray, values: np.ndarray) -> None:
        self.last_ = values[-3:].mean(axis=0)  # but declares history_window=1


class _SilentUnfitted(_Last):
    def predict(self, target_step: int | float) -> np.ndarray:
        if not getattr(self, "is_fitted_", False):
            raise ForecastPruneError("oops")  # not a ForecasterError, says nothing useful
        return super().predict(target_step)


@pytest.mark.parametrize(
    "broken, check",
    [
        (_Mutates, "inputs_not_mutated"),
        (_Random, "deterministic"),
        (_WrongConstant, "constant_history"),
        (_NaN, "output"),
        (_HiddenParam, "params"),
        (_SilentShortHistory, "min_history"),
        (_Unpicklable, "pickle"),
        (_BadInterval, "intervals"),
        (_ClaimsIntervals, "intervals"),
        (_WrongDtype, "output"),
        (_BadTagType, "tags"),
        (_ClockMismatch, "tags"),
        (_ChangesParams, "params_unchanged_by_fit"),
        (_Accumulates, "refit_idempotent"),
        (_Caches, "refit_replaces_state"),
        (_KeepsOldAttributes, "refit_replaces_state"),
        (_ReadsMoreThanItsWindow, "history_window"),
        (_SilentUnfitted, "predict_before_fit"),
    ],
)
def test_each_violation_is_caught(broken: type[Forecaster], check: str) -> None:
    with pytest.raises(ConformanceError, match=f"failed '{check}'"):
        check_forecaster(broken, n_large=100)
    results = check_forecaster(broken, raise_on_failure=False, n_large=100)
    (outcome,) = [v for k, v in results.items() if k.startswith(f"{check}[{broken.__name__}")]
    assert outcome != PASSED


def test_without_raising_every_check_reports_its_outcome() -> None:
    results = check_forecaster(_ReadsMoreThanItsWindow, raise_on_failure=False, n_large=100)
    failed = {key for key, outcome in results.items() if outcome != PASSED}
    assert len(results) == len(CHECKS)
    assert failed == {"history_window[_ReadsMoreThanItsWindow()]"}
    assert "history_window=1" in results["history_window[_ReadsMoreThanItsWindow()]"]


def test_non_vectorized_forecasters_get_the_small_wide_check() -> None:
    assert set(check_forecaster(_LoopsForever).values()) == {PASSED}
    assert set(check_forecaster(_Last, n_large=2000).values()) == {PASSED}
