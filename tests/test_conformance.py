"""The public conformance suite over every registered forecaster, and on broken ones."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from forecastprune.errors import ForecasterError
from forecastprune.forecasters import (
    Forecaster,
    get_forecaster,
    get_forecaster_class,
    list_forecasters,
    load_plugins,
)
from forecastprune.testing import (
    ConformanceError,
    StepDecayClock,
    check_forecaster,
    isolated_registry,
)

SINGLE_FILE_PLUGIN = Path(__file__).resolve().parents[1] / "plugins" / "single_file_plugin.py"


def _cases() -> list[Any]:
    """Every registered forecaster (built-ins, installed plugins, the single-file plugin) as a
    class, and every example spec of every prefix family (adapters) as a string."""
    cases: list[Any] = []
    with isolated_registry():  # the file plugin must not leak into other test modules
        load_plugins(SINGLE_FILE_PLUGIN)
        for info in list_forecasters(include_broken=False):
            if info.is_prefix:
                cases += [pytest.param(spec, id=spec) for spec in info.examples]
            else:
                cases.append(pytest.param(get_forecaster_class(info.name), id=info.name))
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


@pytest.mark.parametrize("target", CASES)
def test_every_registered_forecaster_conforms(target: type[Forecaster] | str) -> None:
    template = _build_example(target) if isinstance(target, str) else target
    passed = check_forecaster(template)
    n_configs = 1 if isinstance(target, str) else len(target.get_test_params())
    assert len(passed) == 12 * n_configs


def test_accepts_an_instance_and_a_custom_clock() -> None:
    passed = check_forecaster(get_forecaster("linear(window=4, time_axis=lr)"),
                              clock=StepDecayClock(lr=0.5, drop_at=100), n_large=1000)
    assert len(passed) == 12 and all(name.startswith("LinearForecaster(") for name in passed)


def test_rejects_what_is_not_a_forecaster() -> None:
    with pytest.raises(TypeError, match="Forecaster class or instance"):
        check_forecaster(object())  # type: ignore[arg-type]


# ------------------------------------------------------------------ the suite can fail
class _Last(Forecaster):
    """A correct baseline the broken variants below each break in one way."""

    description = "last value"

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
    @property
    def min_history(self) -> int:  # type: ignore[override]
        return 3

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
    def _predict_interval(self, target_t: float, coverage: float) -> tuple[np.ndarray,
                                                                           np.ndarray]:
        return self.last_ + 1.0, self.last_ + 2.0  # does not contain the forecast


class _LoopsForever(_Last):
    """Per-channel loop: must run the small wide check, not 100,000 channels."""

    vectorized = False

    def _fit(self, t: np.ndarray, values: np.ndarray) -> None:
        if values.shape[1] > 1000:
            raise AssertionError("the wide check ignored vectorized=False")
        self.last_ = np.array([values[-1, c] for c in range(values.shape[1])])


class _WrongDtype(_Last):
    def predict(self, target_step: int | float) -> np.ndarray:
        return super().predict(target_step).astype(int)


@pytest.mark.parametrize("broken, check", [
    (_Mutates, "inputs not mutated"),
    (_Random, "deterministic"),
    (_WrongConstant, "constant history"),
    (_NaN, "output shape, dtype, finite"),
    (_HiddenParam, "params"),
    (_SilentShortHistory, "short history raises"),
    (_Unpicklable, "pickle round trip"),
    (_BadInterval, "intervals"),
    (_WrongDtype, "output shape, dtype, finite"),
])
def test_each_violation_is_caught(broken: type[Forecaster], check: str) -> None:
    with pytest.raises(ConformanceError, match=f"failed '{check}'"):
        check_forecaster(broken, n_large=100)


def test_non_vectorized_forecasters_get_the_small_wide_check() -> None:
    assert len(check_forecaster(_LoopsForever)) == 12
    assert len(check_forecaster(_Last, n_large=2000)) == 12
