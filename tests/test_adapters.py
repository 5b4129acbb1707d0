"""sktime and statsforecast adapters on small histories."""

from __future__ import annotations

import pickle
import sys

import numpy as np
import pytest

from forecastprune.errors import ForecasterError, UnknownForecasterError
from forecastprune.forecasters import adapters, get_forecaster

STEPS = np.arange(25) * 10


@pytest.fixture(scope="module")
def history():
    rng = np.random.default_rng(0)
    return 1.0 + np.cumsum(0.02 * rng.normal(size=(25, 5)), axis=0)


@pytest.mark.slow
def test_sktime_naive_last_and_drift_match_their_definitions(history):
    horizon = 6
    target = STEPS[-1] + 10 * horizon
    last = get_forecaster("sktime:NaiveForecaster").fit(STEPS, history).predict(target)
    assert np.allclose(last, history[-1])
    drift = get_forecaster("sktime:NaiveForecaster(strategy=drift)").fit(STEPS, history)
    slope = (history[-1] - history[0]) / (len(STEPS) - 1)
    assert np.allclose(drift.predict(target), history[-1] + horizon * slope)
    # Fractional horizons interpolate; targets at or before the last snapshot give the last value.
    between = drift.predict(target + 5)
    assert np.allclose(between, history[-1] + (horizon + 0.5) * slope)
    assert np.allclose(drift.predict(STEPS[-1]), history[-1])


@pytest.mark.slow
def test_sktime_intervals_and_pickle(history):
    forecaster = get_forecaster("sktime:NaiveForecaster").fit(STEPS, history)
    lower, upper = forecaster.predict_interval(STEPS[-1] + 50, coverage=0.8)
    wider = forecaster.predict_interval(STEPS[-1] + 50, coverage=0.95)
    assert np.all(lower < history[-1]) and np.all(history[-1] < upper)
    assert np.all(wider[0] < lower) and np.all(upper < wider[1])
    clone = pickle.loads(pickle.dumps(forecaster))
    assert np.array_equal(clone.predict(400), forecaster.predict(400))


def test_sktime_lr_axis_through_the_spec(history):
    def clock(steps):
        return 0.1 * np.asarray(steps, dtype=np.float64) ** 0.5  # LR decaying like 1/√step

    forecaster = get_forecaster("sktime:NaiveForecaster(strategy=drift, time_axis=lr)")
    assert forecaster.get_params()["time_axis"] == "lr"
    prediction = forecaster.fit(STEPS, history, clock=clock).predict(1000)
    t = clock(STEPS)
    slope = (history[-1] - history[0]) / (t[-1] - t[0])  # drift per unit of cumulative LR
    assert np.allclose(prediction, history[-1] + slope * (clock(1000) - t[-1]))


def test_statsforecast_arima_close_to_batched_arima(history):
    target = STEPS[-1] + 40
    theirs = get_forecaster("statsforecast:ARIMA", order=(1, 1, 0)).fit(STEPS, history)
    ours = get_forecaster("arima(p=1,d=1,q=0)").fit(STEPS, history)
    spread = np.subtract(*ours.predict_interval(target, coverage=0.6827)[::-1]) / 2
    assert np.all(np.abs(theirs.predict(target) - ours.predict(target)) < 0.5 * spread)
    lower, upper = theirs.predict_interval(target, coverage=0.9)
    assert np.all(lower < theirs.predict(target)) and np.all(theirs.predict(target) < upper)


def test_statsforecast_naive_matches_last_value(history):
    forecaster = get_forecaster("statsforecast:Naive").fit(STEPS, history)
    assert np.allclose(forecaster.predict(STEPS[-1] + 123), history[-1])
    assert not forecaster.get_tag("vectorized")


@pytest.mark.parametrize(
    "spec, error, match",
    [
        ("sktime:Naiveforecaster", UnknownForecasterError, "NaiveForecaster"),
        ("sktime:NaiveForecaster(foo=1)", ForecasterError, "foo"),
        ("statsforecast:Nave", UnknownForecasterError, "Naive"),
        ("statsforecast:Naive(time_axis=days)", ForecasterError, "time_axis"),
    ],
)
def test_bad_names_and_parameters_fail_at_get_forecaster(spec, error, match):
    with pytest.raises(error, match=match):
        get_forecaster(spec)


def test_sktime_value_errors_surface_as_forecaster_errors_at_fit(history):
    forecaster = get_forecaster("sktime:NaiveForecaster(strategy=bogus)")  # sktime checks late
    with pytest.raises(ForecasterError, match="bogus"):
        forecaster.fit(STEPS, history)


def test_params_must_be_a_dict():
    with pytest.raises(ForecasterError, match="dict"):
        adapters.SktimeForecaster(estimator="NaiveForecaster", params="strategy='mean'")


def test_missing_statsforecast_names_the_extra(monkeypatch):
    adapters.statsforecast_models.cache_clear()
    monkeypatch.setitem(sys.modules, "statsforecast.models", None)  # import now fails
    try:
        with pytest.raises(ForecasterError, match=r"forecastprune\[statsforecast\]"):
            get_forecaster("statsforecast:Naive")
    finally:
        adapters.statsforecast_models.cache_clear()


def test_interval_support_follows_the_chosen_model(history):
    window = get_forecaster("statsforecast:WindowAverage(window_size=3)").fit(STEPS, history)
    assert not window.get_tag("supports_interval")
    with pytest.raises(ForecasterError, match="point forecasts only"):
        window.predict_interval(400)
    assert get_forecaster("statsforecast:Naive").get_tag("supports_interval")
    assert get_forecaster("sktime:NaiveForecaster").get_tag("supports_interval")
    # on the class: some members can
    assert adapters.SktimeForecaster.get_class_tag("supports_interval")
