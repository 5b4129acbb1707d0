"""Behaviour of the built-in forecasters naive, sma, ema and linear (property tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from forecastprune.errors import ForecasterError
from forecastprune.forecasters import get_forecaster
from forecastprune.testing import StepDecayClock

SETTINGS = settings(max_examples=40, deadline=None)
_FINITE = st.floats(0.0, 10.0, allow_nan=False, width=64)


@st.composite
def histories(draw: st.DrawFn, min_t: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Strictly increasing steps and non-negative values (T, C)."""
    n_steps = draw(st.integers(min_t, 25))
    n_channels = draw(st.integers(1, 6))
    gaps = draw(arrays(np.int64, n_steps, elements=st.integers(1, 50)))
    values = draw(arrays(np.float64, (n_steps, n_channels), elements=_FINITE))
    return np.cumsum(gaps), values


# ------------------------------------------------------------------ naive / sma / ema
@pytest.mark.slow
@SETTINGS
@given(histories(), st.integers(0, 10_000))
def test_naive_predicts_the_last_row(history: tuple[np.ndarray, np.ndarray], horizon: int) -> None:
    steps, values = history
    prediction = get_forecaster("naive").fit(steps, values).predict(steps[-1] + horizon)
    np.testing.assert_array_equal(prediction, values[-1])


@pytest.mark.slow
@SETTINGS
@given(histories(), st.integers(1, 8))
def test_sma_is_the_mean_of_the_last_window(
    history: tuple[np.ndarray, np.ndarray], window: int
) -> None:
    steps, values = history
    forecaster = get_forecaster("sma", window=window)
    if len(steps) < window:
        with pytest.raises(ForecasterError, match=f"min_history={window}"):
            forecaster.fit(steps, values)
        return
    prediction = forecaster.fit(steps, values).predict(steps[-1] + 100)
    np.testing.assert_allclose(prediction, values[-window:].mean(axis=0), rtol=1e-12)


@SETTINGS
@given(st.floats(0.0, 5.0), st.integers(3, 20), st.integers(1, 3))
def test_sma_of_a_constant_is_that_constant(level: float, n_steps: int, window: int) -> None:
    values = np.full((n_steps, 4), level)
    prediction = get_forecaster("sma", window=window).fit(np.arange(n_steps), values).predict(99)
    np.testing.assert_allclose(prediction, level, rtol=1e-12)


@SETTINGS
@given(histories(), st.floats(0.01, 1.0))
def test_ema_matches_pandas_and_stays_within_the_history(
    history: tuple[np.ndarray, np.ndarray], alpha: float
) -> None:
    steps, values = history
    prediction = get_forecaster("ema", alpha=alpha).fit(steps, values).predict(steps[-1] + 1)
    reference = pd.DataFrame(values).ewm(alpha=alpha, adjust=False).mean().iloc[-1].to_numpy()
    np.testing.assert_allclose(prediction, reference, rtol=1e-9, atol=1e-12)
    slack = 1e-12 * (1.0 + np.abs(values).max())
    assert np.all(prediction >= values.min(axis=0) - slack)
    assert np.all(prediction <= values.max(axis=0) + slack)


def test_ema_span_and_alpha_agree_and_default_is_span_10() -> None:
    steps, values = np.arange(30), np.random.default_rng(1).uniform(size=(30, 3))
    by_span = get_forecaster("ema(span=4)").fit(steps, values).predict(40)
    by_alpha = get_forecaster("ema", alpha=0.4).fit(steps, values).predict(40)
    np.testing.assert_allclose(by_span, by_alpha)
    default = get_forecaster("ema").fit(steps, values).predict(40)
    np.testing.assert_allclose(
        default, get_forecaster("ema(span=10)").fit(steps, values).predict(40)
    )
    np.testing.assert_array_equal(
        get_forecaster("ema(alpha=1)").fit(steps, values).predict(40), values[-1]
    )


@pytest.mark.parametrize(
    "spec, message",
    [
        ("ema(alpha=0.5, span=3)", "not both"),
        ("ema(alpha=0)", r"alpha must be a number in \(0.0, 1.0\]"),
        ("ema(alpha=1.5)", "alpha must be"),
        ("ema(span=0.5)", r"span must be a number in \[1.0"),
        ("ema(alpha=true)", "alpha must be"),
        ("sma(window=2.5)", "window must be an integer"),
        ("sma(window=True)", "window must be an integer"),
        ("linear(window=2)", "window must be an integer >= 3"),
        ("linear(damped=0)", "damped must be"),
        ("linear(damped=1.2)", "damped must be"),
        ("linear(time_axis=epoch)", r"time_axis must be one of \['step', 'lr'\]"),
        ("linear(clip_at_zero=1)", "clip_at_zero must be True or False"),
    ],
)
def test_bad_hyper_parameters_fail_at_construction(spec: str, message: str) -> None:
    with pytest.raises(ForecasterError, match=message):
        get_forecaster(spec)


# ------------------------------------------------------------------ linear
@SETTINGS
@given(
    st.floats(-5.0, 5.0),
    st.floats(-1e-2, 1e-2),
    st.integers(3, 15),
    st.integers(0, 5000),
    st.floats(0.5, 100.0),
)
def test_linear_recovers_an_exact_line(
    intercept: float, slope: float, n_steps: int, horizon: int, spacing: float
) -> None:
    steps = 1000 + np.arange(n_steps) * spacing  # an offset axis tests the centring
    values = intercept + np.outer(steps, [slope, -slope, 0.0]) + [0.0, 1.0, 2.0]
    forecaster = get_forecaster("linear", window=n_steps, clip_at_zero=False)
    target = steps[-1] + horizon
    expected = intercept + np.array([slope, -slope, 0.0]) * target + [0.0, 1.0, 2.0]
    np.testing.assert_allclose(
        forecaster.fit(steps, values).predict(target), expected, rtol=1e-8, atol=1e-8
    )
    lower, upper = forecaster.predict_interval(target, 0.9)  # zero residuals: zero width
    np.testing.assert_allclose(upper - lower, 0.0, atol=1e-6)


def test_linear_uses_only_the_window() -> None:
    steps = np.arange(20.0)
    values = np.where(steps < 15, 100.0, steps - 15)[:, None]  # a kink before the window
    prediction = get_forecaster("linear(window=5)").fit(steps, values).predict(29)
    np.testing.assert_allclose(prediction, [14.0])


@pytest.mark.parametrize("phi", [0.5, 0.9, 1.0])
def test_linear_damping_follows_the_documented_formula(phi: float) -> None:
    spacing, slope = 10.0, -0.002
    steps = np.arange(8) * spacing
    values = (1.0 + slope * steps)[:, None]
    forecaster = get_forecaster("linear", window=8, damped=phi, clip_at_zero=False)
    forecaster.fit(steps, values)
    level = values[-1, 0]
    for horizon in (10.0, 35.0, 500.0):
        m = horizon / spacing
        trend = m if phi == 1.0 else phi * (1 - phi**m) / (1 - phi)
        expected = level + slope * spacing * trend
        np.testing.assert_allclose(forecaster.predict(steps[-1] + horizon), [expected])
    if phi < 1.0:  # the trend's total contribution is capped at b·Δ·φ/(1−φ)
        far = forecaster.predict(1e9)[0]
        np.testing.assert_allclose(far, level + slope * spacing * phi / (1 - phi))


def test_linear_clips_at_zero_including_the_interval() -> None:
    steps = np.arange(10.0)
    values = np.column_stack([1.0 - 0.1 * steps, 1.0 + 0.1 * steps])
    values[::2] += 0.01  # some residual so the interval has width
    forecaster = get_forecaster("linear").fit(steps, values)
    prediction = forecaster.predict(100)
    lower, upper = forecaster.predict_interval(100, 0.9)
    assert prediction[0] == 0.0 and lower[0] == 0.0 and upper[0] == 0.0
    assert prediction[1] > 10.0 and lower[1] < prediction[1] < upper[1]
    unclipped = get_forecaster("linear", clip_at_zero=False).fit(steps, values).predict(100)
    assert unclipped[0] < -8.0


def test_linear_interval_matches_statsmodels_ols() -> None:
    rng = np.random.default_rng(3)
    steps = np.arange(12) * 25.0
    values = 0.8 - 4e-4 * steps[:, None] + rng.normal(0, 0.02, (12, 3))
    target, coverage = 600.0, 0.8
    forecaster = get_forecaster("linear", window=12, clip_at_zero=False).fit(steps, values)
    lower, upper = forecaster.predict_interval(target, coverage)
    point = forecaster.predict(target)
    for channel in range(3):
        ols = sm.OLS(values[:, channel], sm.add_constant(steps)).fit()
        frame = ols.get_prediction(np.array([[1.0, target]])).summary_frame(alpha=1 - coverage)
        np.testing.assert_allclose(point[channel], frame["mean"].iloc[0], rtol=1e-9)
        np.testing.assert_allclose(lower[channel], frame["obs_ci_lower"].iloc[0], rtol=1e-9)
        np.testing.assert_allclose(upper[channel], frame["obs_ci_upper"].iloc[0], rtol=1e-9)


def test_linear_lr_axis_is_invariant_to_rescaling_and_follows_the_clock() -> None:
    steps = np.arange(10) * 10
    values = np.random.default_rng(5).uniform(0.2, 1.0, (10, 4))
    on_steps = get_forecaster("linear").fit(steps, values).predict(300)
    scaled = (
        get_forecaster("linear(time_axis=lr)")
        .fit(steps, values, clock=lambda s: 0.05 * s)
        .predict(300)
    )
    np.testing.assert_allclose(scaled, on_steps, rtol=1e-10)

    # Linear in cumulative LR under a step decay: the lr axis is exact, the step axis is not.
    clock = StepDecayClock(lr=0.1, drop_at=50, factor=0.1)
    steps = np.arange(0, 100, 5)
    values = (2.0 - 0.2 * clock(steps))[:, None]
    target = 400
    expected = 2.0 - 0.2 * clock(np.array([target]))
    lr = get_forecaster("linear", window=6, time_axis="lr").fit(steps, values, clock=clock)
    np.testing.assert_allclose(lr.predict(target), expected, rtol=1e-10)
    step = get_forecaster("linear", window=6).fit(steps, values).predict(target)
    np.testing.assert_allclose(step, expected, rtol=1e-10)  # after the drop, both are straight
    early = get_forecaster("linear", window=6).fit(steps[:10], values[:10]).predict(target)
    lr_early = (
        get_forecaster("linear", window=6, time_axis="lr")
        .fit(steps[:10], values[:10], clock=clock)
        .predict(target)
    )
    np.testing.assert_allclose(lr_early, expected, rtol=1e-10)
    assert early[0] == 0.0  # over steps the pre-drop slope overshoots to the clip


def test_lr_axis_without_clock_is_a_clear_error() -> None:
    with pytest.raises(ForecasterError, match="needs a clock"):
        get_forecaster("linear(time_axis=lr)").fit(np.arange(10), np.ones((10, 2)))


@pytest.mark.parametrize(
    "spec, minimum",
    [
        ("naive", 1),
        ("sma", 5),
        ("sma(window=9)", 9),
        ("ema", 1),
        ("linear", 10),
        ("linear(window=4)", 4),
    ],
)
def test_min_history_follows_the_parameters(spec: str, minimum: int) -> None:
    forecaster = get_forecaster(spec)
    assert forecaster.get_tag("min_history") == minimum
    forecaster.fit(np.arange(minimum), np.ones((minimum, 2)))
    with pytest.raises(ForecasterError, match=f"min_history={minimum}"):
        get_forecaster(spec).fit(np.arange(minimum - 1), np.ones((minimum - 1, 2)))


def test_float32_input_gives_float64_output() -> None:
    values = np.random.default_rng(0).uniform(size=(12, 5)).astype(np.float32)
    for spec in ("naive", "sma", "ema", "linear"):
        prediction = get_forecaster(spec).fit(np.arange(12), values).predict(20)
        assert prediction.dtype == np.float64 and prediction.shape == (5,)
