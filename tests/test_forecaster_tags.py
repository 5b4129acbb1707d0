"""Forecaster tags (one mechanism for capabilities) and the fit lifecycle of the base class."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from forecastprune.errors import ForecasterError
from forecastprune.forecasters import Forecaster, get_forecaster
from forecastprune.forecasters.tags import TAGS

# spec -> (needs_clock, uses_clock, time_axis_param, vectorized, supports_interval,
#          min_history, history_window, history_grid, uses_layout)
BUILT_IN_TAGS: dict[str, tuple[Any, ...]] = {
    "naive": (False, False, False, True, False, 1, 1, None, False),
    "sma": (False, False, False, True, False, 5, 5, None, False),
    "sma(window=12)": (False, False, False, True, False, 12, 12, None, False),
    "ema": (False, False, False, True, False, 1, 161, None, False),  # (9/11)^161 < 1e-14
    "ema(alpha=1.0)": (False, False, False, True, False, 1, 1, None, False),
    "linear": (False, False, True, True, True, 10, 10, None, False),
    "linear(window=4, time_axis=lr)": (True, False, True, True, True, 4, 4, None, False),
    "arima": (False, False, True, True, True, 6, None, 1024, False),
    "arima(p=2, q=1, time_axis=lr)": (True, False, True, True, True, 10, None, 1024, False),
    "arima(backend=statsmodels)": (False, False, True, False, True, 6, None, 1024, False),
    "sktime:NaiveForecaster": (False, False, True, False, True, 3, None, None, False),
    "statsforecast:WindowAverage(window_size=3)": (
        False,
        False,
        True,
        False,
        False,
        3,
        None,
        None,
        False,
    ),
}


@pytest.mark.parametrize("spec", BUILT_IN_TAGS)
def test_built_in_tags(spec: str) -> None:
    tags = get_forecaster(spec).get_tags()
    assert tuple(tags[name] for name in TAGS) == BUILT_IN_TAGS[spec]


class _Base(Forecaster):
    description = "test"
    _tags = {"vectorized": False, "min_history": 2}

    def __init__(self, window: int = 4) -> None:
        self.window = window
        self.set_tags(history_window=window)

    def _fit(self, t: np.ndarray, values: np.ndarray) -> None:
        self.level_ = values[-self.window :].mean(axis=0)
        if np.any(values < 0):
            raise ForecasterError("negative values")
        self.checked_ = True

    def _predict(self, target_t: float) -> np.ndarray:
        return self.level_.copy()


class _Child(_Base):
    _tags = {"min_history": 4, "supports_interval": False}


def test_class_tags_merge_along_the_mro_and_instances_override() -> None:
    assert _Child.get_class_tag("min_history") == 4  # the subclass wins
    assert _Child.get_class_tag("vectorized") is False  # inherited from _Base
    assert _Child.get_class_tag("needs_clock") is False  # Forecaster's default
    assert _Child.get_class_tag("history_window") is None
    assert _Child(window=6).get_tag("history_window") == 6
    assert _Child(window=5).get_tag("history_window") == 5
    assert _Child.get_class_tag("history_window") is None  # set_tags touches the instance only


def test_unknown_tag_names_are_clear_errors() -> None:
    forecaster = _Base()
    with pytest.raises(ForecasterError, match=r"no tag .vectorised.*valid tags: .*vectorized"):
        forecaster.get_tag("vectorised")
    with pytest.raises(ForecasterError, match="no tag 'x'"):
        _Base.get_class_tag("x")
    assert forecaster.get_tag("x", default=7) == 7
    with pytest.raises(ForecasterError, match=r"unknown forecaster tag\(s\) \['window'\]"):
        forecaster.set_tags(window=3)


def test_min_history_tag_is_enforced_with_its_value() -> None:
    with pytest.raises(ForecasterError, match="min_history=4"):
        _Child().fit(np.arange(3), np.ones((3, 2)))


def test_refit_replaces_the_fitted_state_and_a_failed_fit_leaves_it_unfitted() -> None:
    forecaster = _Base(window=2)
    with pytest.raises(ForecasterError, match="not fitted yet"):
        forecaster.predict(10)
    forecaster.fit(np.arange(5), np.arange(10.0).reshape(5, 2))
    assert forecaster.is_fitted_ and forecaster.checked_
    np.testing.assert_array_equal(forecaster.predict(10), [7.0, 8.0])
    forecaster.stale_ = "from an earlier fit"
    with pytest.raises(ForecasterError, match="negative"):
        forecaster.fit(np.arange(5), -np.ones((5, 3)))
    # _fit raised after setting level_: the fitted flag comes last, so nothing half-fitted
    # is usable, and nothing from the earlier fit survives.
    assert not hasattr(forecaster, "stale_") and not hasattr(forecaster, "checked_")
    with pytest.raises(ForecasterError, match="not fitted yet"):
        forecaster.predict(10)
    forecaster.fit(np.arange(4), np.ones((4, 3)))
    assert forecaster.predict(10).shape == (3,)
    assert forecaster.get_params() == {"window": 2}


def test_needs_clock_decides_whether_the_clock_is_used() -> None:
    steps, values = np.arange(10) * 10, np.random.default_rng(0).uniform(size=(10, 2))
    squash = lambda s: np.sqrt(np.asarray(s, float))  # noqa: E731
    on_steps = get_forecaster("linear").fit(steps, values, clock=squash)
    assert on_steps.clock_ is None  # needs_clock is false: the clock is ignored
    on_clock = get_forecaster("linear(time_axis=lr)").fit(steps, values, clock=squash)
    assert on_clock.clock_ is squash
    assert not np.allclose(on_steps.predict(400), on_clock.predict(400))
    with pytest.raises(ForecasterError, match="needs a clock"):
        get_forecaster("linear(time_axis=lr)").fit(steps, values)
