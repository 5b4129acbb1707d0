"""Batched ARIMA: coefficient recovery, forecasts against hand recursions, degenerate channels,
intervals, the time axis, and agreement with the statsmodels backend."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecastprune.errors import ForecasterError
from forecastprune.forecasters import get_forecaster
from forecastprune.forecasters.arima import css_refine, hannan_rissanen
from forecastprune.forecasters.arima.statsmodels_backend import StatsmodelsFitWarning
from forecastprune.forecasters.evengrid import resample_even


def simulate_arma(ar, ma, n, n_channels, seed=0, burn=100):
    """(n, C) ARMA(p, q) paths with unit innovations; ``ar`` / ``ma`` are (C, p) / (C, q)."""
    rng = np.random.default_rng(seed)
    ar, ma = np.atleast_2d(ar), np.atleast_2d(ma)
    eps = rng.normal(size=(n + burn, n_channels))
    x = np.zeros_like(eps)
    for t in range(n + burn):
        x[t] = eps[t]
        for i in range(ar.shape[1]):
            if t > i:
                x[t] += ar[:, i] * x[t - 1 - i]
        for j in range(ma.shape[1]):
            if t > j:
                x[t] += ma[:, j] * eps[t - 1 - j]
    return x[burn:]


def test_recovers_ar1_on_increments_for_many_channels():
    n_channels = 400
    phi = np.random.default_rng(1).uniform(-0.8, 0.8, n_channels)
    increments = simulate_arma(phi[:, None], np.zeros((n_channels, 0)), 400, n_channels)
    levels = 10.0 + np.cumsum(increments, axis=0)
    forecaster = get_forecaster("arima(p=1,d=1,q=0,clip_at_zero=False)")
    forecaster.fit(np.arange(400), levels)
    error = forecaster.model_.ar[:, 0] - phi
    assert np.median(np.abs(error)) < 0.04
    assert np.max(np.abs(error)) < 0.2  # sampling sd at n = 400 is ≤ 0.05
    assert np.allclose(forecaster.model_.sigma2, 1.0, atol=0.25)


def test_recovers_ar2_with_mean():
    n_channels = 300
    ar = np.tile([0.5, -0.3], (n_channels, 1))
    series = 3.0 + simulate_arma(ar, np.zeros((n_channels, 0)), 300, n_channels, seed=2)
    forecaster = get_forecaster("arima(p=2,d=0,q=0)").fit(np.arange(300), series)
    assert np.allclose(forecaster.model_.ar.mean(axis=0), [0.5, -0.3], atol=0.03)
    mean = forecaster.model_.intercept / (1.0 - forecaster.model_.ar.sum(axis=1))
    assert abs(np.median(mean) - 3.0) < 0.05
    # Far ahead, a stationary AR forecasts its mean.
    assert np.allclose(forecaster.predict(10_000), mean, atol=1e-8)


def test_recovers_arma11_coefficients():
    n_channels = 300
    series = simulate_arma(
        np.full((n_channels, 1), 0.6), np.full((n_channels, 1), 0.4), 400, n_channels, seed=3
    )
    forecaster = get_forecaster("arima(p=1,d=0,q=1,trend=n,clip_at_zero=False)")
    forecaster.fit(np.arange(400), series)
    assert abs(np.median(forecaster.model_.ar[:, 0]) - 0.6) < 0.05
    assert abs(np.median(forecaster.model_.ma[:, 0]) - 0.4) < 0.07


def conditional_sse(ws, beta, p, q, constant):
    """Per-channel conditional sum of squares by the plain ARMA recursion."""
    intercept = beta[:, -1] if constant else np.zeros(ws.shape[1])
    eps = hannan_rissanen.arma_innovations(ws, beta[:, :p], beta[:, p : p + q], intercept)
    return np.sum(eps[p:] ** 2, axis=0)


@pytest.mark.parametrize(("p", "q", "constant"), [(2, 1, False), (1, 2, True), (0, 1, False)])
def test_css_jacobian_matches_finite_differences(p, q, constant):
    rng = np.random.default_rng(11)
    ws = rng.normal(size=(60, 4)).cumsum(axis=0) * 0.1 + rng.normal(size=(60, 4))
    beta = rng.uniform(-0.4, 0.4, size=(4, p + q + int(constant)))
    regressors = css_refine._css_regressors(ws, p, constant)
    sse, gram, grad = css_refine._css_normal_equations(regressors, beta, p, q, constant)
    intercept = (lambda b: b[:, -1]) if constant else (lambda b: np.zeros(4))

    def eps_at(b):
        return hannan_rissanen.arma_innovations(ws, b[:, :p], b[:, p : p + q], intercept(b))[p:]

    jac = np.stack(
        [
            (eps_at(beta + h) - eps_at(beta - h)) / 2e-6
            for h in np.eye(beta.shape[1])[:, None, :] * 1e-6 * np.ones((4, 1))
        ],
        axis=1,
    )
    eps = eps_at(beta)
    assert np.allclose(sse, np.sum(eps**2, axis=0), rtol=1e-12)
    assert np.allclose(gram, np.einsum("tkc,tlc->ckl", jac, jac), rtol=1e-6, atol=1e-6)
    assert np.allclose(grad, np.einsum("tkc,tc->ck", jac, eps), rtol=1e-6, atol=1e-6)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), theta=st.floats(-0.95, 0.95), phi=st.floats(-0.9, 0.9))
def test_refinement_never_increases_the_conditional_sum_of_squares(seed, theta, phi):
    n_channels = 6
    ws = simulate_arma(
        np.full((n_channels, 1), phi),
        np.full((n_channels, 1), theta),
        80,
        n_channels,
        seed=seed % 1000,
        burn=20,
    )
    start = np.random.default_rng(seed).uniform(-0.9, 0.9, size=(n_channels, 2))
    refined = css_refine.refine_css(ws, start, 1, 1, False, steps=5)
    before, after = (
        conditional_sse(ws, start, 1, 1, False),
        conditional_sse(ws, refined, 1, 1, False),
    )
    assert np.all(after <= before * (1 + 1e-12))
    assert np.all(np.abs(refined) < 1.0)  # roots kept inside the unit circle
    assert np.mean(after < before * (1 - 1e-6)) > 0.5  # and it does move


def test_refinement_recovers_arma11_closer_than_hannan_rissanen():
    # An MA root near the unit circle is where Hannan–Rissanen's long-AR innovations are worst.
    n_channels, n = 300, 200
    series = simulate_arma(
        np.full((n_channels, 1), 0.5), np.full((n_channels, 1), -0.8), n, n_channels, seed=5
    )
    plain = hannan_rissanen.fit_batched(series, 1, 0, 1, False, refine=0)
    refined = hannan_rissanen.fit_batched(series, 1, 0, 1, False, refine=8)
    truth = np.array([0.5, -0.8])

    def error(fit):
        return np.median(np.abs(np.concatenate([fit.ar, fit.ma], axis=1) - truth), axis=0)

    # Sampling error at n = 200 is about 0.1; Hannan–Rissanen is off by about 0.4 here.
    assert np.all(error(refined) < 0.12)
    assert np.all(error(refined) < error(plain) / 3)
    scaled = series / np.sqrt(np.mean(series**2, axis=0))  # what the fit regresses on
    sse = [
        conditional_sse(scaled, np.concatenate([f.ar, f.ma], axis=1), 1, 1, False)
        for f in (plain, refined)
    ]
    assert np.all(sse[1] <= sse[0] * (1 + 1e-12))


def test_refinement_leaves_still_channels_and_ar_only_models_alone():
    n = 120
    line = 2.0 - 0.01 * np.arange(n)  # exact line: a still increment series
    noisy = 5.0 + np.cumsum(simulate_arma([[0.4]], [[0.3]], n, 1, seed=9), axis=0)[:, 0]
    y = np.stack([line, noisy], axis=1)
    fit = hannan_rissanen.fit_batched(y, 1, 1, 1, True)  # with a drift the line's increments
    assert fit.ar[0, 0] == 0.0 and fit.ma[0, 0] == 0.0  # do not vary: nothing to refine
    assert fit.intercept[0] == pytest.approx(-0.01)
    assert fit.ma[1, 0] != 0.0
    ar_only = [hannan_rissanen.fit_batched(y, 2, 1, 0, False, refine=r) for r in (0, 6)]
    assert np.array_equal(ar_only[0].ar, ar_only[1].ar)


def hand_forecast(model, levels, horizon):
    """ARIMA(p, 1, q) forecast by the textbook recursion on increments, one channel."""
    ar, ma, c = model["ar"], model["ma"], model["intercept"]
    increments = list(np.diff(levels))
    eps = list(model["eps_tail"][::-1])  # oldest first
    level = levels[-1]
    for h in range(1, horizon + 1):
        value = c + sum(ar[i] * increments[-1 - i] for i in range(len(ar)))
        value += sum(ma[j] * eps[-1 - j] for j in range(len(ma)) if j + 1 >= h)
        increments.append(value)
        eps.append(0.0)
        level += value
    return level


def hand_psi_variance(ar, ma, sigma2, horizon):
    """σ² Σ ψ_j² for ARIMA(p, 1, q), ψ from the levels polynomial φ(B)(1 − B)."""
    levels_ar = np.convolve(np.r_[1.0, -np.asarray(ar)], [1.0, -1.0])[1:] * -1.0
    psi = [1.0]
    for j in range(1, horizon):
        value = ma[j - 1] if j - 1 < len(ma) else 0.0
        value += sum(levels_ar[i] * psi[j - 1 - i] for i in range(min(j, len(levels_ar))))
        psi.append(value)
    return sigma2 * np.sum(np.square(psi))


@pytest.mark.parametrize("trend", ["n", "c"])
def test_forecast_and_interval_match_hand_recursion(trend):
    rng = np.random.default_rng(4)
    levels = 5.0 + np.cumsum(0.05 + 0.1 * rng.normal(size=(120, 3)), axis=0)
    forecaster = get_forecaster(f"arima(p=2,d=1,q=1,trend={trend},clip_at_zero=False)")
    steps = np.arange(120) * 10
    forecaster.fit(steps, levels)
    fit = forecaster.model_
    horizon = 7
    mean = forecaster.predict(steps[-1] + 10 * horizon)
    lower, upper = forecaster.predict_interval(steps[-1] + 10 * horizon, coverage=0.95)
    for c in range(3):
        channel = {
            "ar": fit.ar[c],
            "ma": fit.ma[c],
            "intercept": fit.intercept[c],
            "eps_tail": fit.eps_tail[:, c],
        }
        assert mean[c] == pytest.approx(hand_forecast(channel, levels[:, c], horizon), rel=1e-10)
        sd = np.sqrt(hand_psi_variance(fit.ar[c], fit.ma[c], fit.sigma2[c], horizon))
        assert upper[c] - mean[c] == pytest.approx(1.959963984540054 * sd, rel=1e-8)
        assert mean[c] - lower[c] == pytest.approx(upper[c] - mean[c], rel=1e-10)


def test_far_horizon_is_finite_and_cheap_and_fractional_horizons_interpolate():
    rng = np.random.default_rng(5)
    levels = 1.0 + np.cumsum(0.01 * rng.normal(size=(60, 50)), axis=0)
    forecaster = get_forecaster("arima(p=2,d=1,q=1,clip_at_zero=False)")
    forecaster.fit(np.arange(60) * 10, levels)
    far = forecaster.predict(10 * 59 + 10 * 1_000_000)
    assert np.all(np.isfinite(far))
    at_3, at_4 = forecaster.predict(590 + 30), forecaster.predict(590 + 40)
    assert np.allclose(forecaster.predict(590 + 32.5), 0.75 * at_3 + 0.25 * at_4)
    # At or before the last snapshot: the last value.
    assert np.array_equal(forecaster.predict(590), levels[-1])
    assert np.array_equal(forecaster.predict(100), levels[-1])


@pytest.mark.parametrize(
    "spec",
    [
        "arima",
        "arima(p=2,d=1,q=1)",
        "arima(p=1,d=0,q=0)",
        "arima(p=0,d=2,q=1)",
        "arima(p=1,d=1,trend=c)",
    ],
)
def test_constant_and_near_constant_channels(spec):
    rng = np.random.default_rng(6)
    values = np.column_stack(
        [
            np.full(40, 0.7),  # exactly constant
            np.zeros(40),  # exactly zero
            0.3 + 1e-13 * rng.normal(size=40),  # constant to rounding
            1.0 + 0.01 * rng.normal(size=40),  # an ordinary channel alongside
        ]
    )
    forecaster = get_forecaster(spec).fit(np.arange(40), values)
    prediction = forecaster.predict(400)
    lower, upper = forecaster.predict_interval(400)
    assert np.all(np.isfinite(prediction)) and np.all(np.isfinite(lower + upper))
    assert prediction[0] == 0.7 and prediction[1] == 0.0
    assert lower[0] == upper[0] == 0.7
    assert prediction[2] == pytest.approx(0.3, abs=1e-9)


def test_exact_line_with_drift_extrapolates_exactly():
    steps = np.arange(30) * 5
    values = np.outer(2.0 - 0.01 * steps, [1.0, 3.0])
    forecaster = get_forecaster("arima(p=1,d=1,q=0,trend=c,clip_at_zero=False)")
    prediction = forecaster.fit(steps, values).predict(500)
    assert np.allclose(prediction, [2.0 - 5.0, 3 * (2.0 - 5.0)])


def test_intervals_widen_with_horizon_and_cover_at_nominal_rate():
    n_channels, n, horizon = 3000, 150, 8
    increments = simulate_arma(
        np.full((n_channels, 1), 0.5), np.zeros((n_channels, 0)), n + horizon, n_channels, seed=7
    )
    levels = 50.0 + np.cumsum(increments, axis=0)
    forecaster = get_forecaster("arima(p=1,d=1,q=0,clip_at_zero=False)")
    forecaster.fit(np.arange(n), levels[:n])
    widths = [np.subtract(*forecaster.predict_interval(n - 1 + h)[::-1]) for h in (1, 3, 8)]
    assert np.all(widths[0] < widths[1]) and np.all(widths[1] < widths[2])
    lower, upper = forecaster.predict_interval(n - 1 + horizon, coverage=0.9)
    truth = levels[n - 1 + horizon]
    coverage = np.mean((lower <= truth) & (truth <= upper))
    assert 0.86 <= coverage <= 0.94


def test_lr_axis_resamples_on_cumulative_lr():
    # γ moves linearly in cumulative LR; the LR drops 10× at step 100 (inside the history).
    def clock(steps):
        steps = np.asarray(steps, dtype=np.float64)
        return 0.1 * np.minimum(steps, 100) + 0.01 * np.maximum(steps - 100, 0)

    steps = np.arange(0, 200, 5)
    values = (2.0 - 0.5 * clock(steps))[:, None] * np.array([1.0, 2.0])
    forecaster = get_forecaster("arima(p=1,d=1,trend=c,time_axis=lr,clip_at_zero=False)")
    prediction = forecaster.fit(steps, values, clock=clock).predict(400)
    assert np.allclose(prediction, (2.0 - 0.5 * clock(400)) * np.array([1.0, 2.0]))
    with pytest.raises(ForecasterError, match="clock"):
        forecaster.fit(steps, values)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 50), min_size=2, max_size=12), st.integers(1, 4))
def test_resample_even_keeps_ends_and_lines(gaps, n_channels):
    t = np.concatenate([[0.0], np.cumsum(gaps)]).astype(float)
    slope = np.arange(1, n_channels + 1, dtype=float)
    grid, values = resample_even(t, 3.0 + np.outer(t, slope))
    points = grid.start + grid.spacing * np.arange(grid.length)
    assert np.allclose(values, 3.0 + np.outer(points, slope))
    assert grid.last == pytest.approx(t[-1])


def test_min_history_depends_on_order_and_is_enforced():
    small, large = get_forecaster("arima"), get_forecaster("arima(p=3,d=1,q=2)")
    minimum = large.get_tag("min_history")
    assert minimum > small.get_tag("min_history")
    values = np.ones((minimum - 1, 2))
    with pytest.raises(ForecasterError, match=str(minimum)):
        large.fit(np.arange(values.shape[0]), values)


@pytest.mark.parametrize(
    "bad",
    [
        "arima(d=3)",
        "arima(p=-1)",
        "arima(backend=numba)",
        "arima(trend=t)",
        "arima(q=1.5)",
        "arima(refine=-1)",
    ],
)
def test_bad_parameters_fail_at_construction(bad):
    with pytest.raises(ForecasterError):
        get_forecaster(bad)


def test_agrees_with_statsmodels_on_a_few_channels():
    n_channels = 4
    increments = simulate_arma(
        np.full((n_channels, 1), 0.6), np.zeros((n_channels, 0)), 150, n_channels, seed=8
    )
    levels = 100.0 + np.cumsum(increments, axis=0)
    steps = np.arange(150)
    batched = get_forecaster("arima(p=1,d=1,q=0)").fit(steps, levels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatsmodelsFitWarning)
        exact = get_forecaster("arima(p=1,d=1,q=0,backend=statsmodels)").fit(steps, levels)
    # Conditional least squares vs exact maximum likelihood: close, not identical.
    assert np.allclose(batched.model_.ar[:, 0], exact.model_.params[:, 0], atol=0.04)
    one_sd = exact.predict_interval(160, 0.6827)[1] - exact.predict(160)
    assert np.all(np.abs(batched.predict(160) - exact.predict(160)) < 0.2 * one_sd)


def test_statsmodels_backend_counts_constant_and_failed_channels():
    rng = np.random.default_rng(9)
    values = np.column_stack(
        [
            np.full(30, 0.5),  # constant: never sent
            1e308 * np.sign(rng.normal(size=30)),  # increments overflow: fit fails
            1.0 + np.cumsum(0.01 * rng.normal(size=30)),  # an ordinary channel
        ]
    )
    forecaster = get_forecaster("arima(p=1,d=1,q=0,backend=statsmodels,clip_at_zero=False)")
    with pytest.warns(StatsmodelsFitWarning, match="1 failed"):
        forecaster.fit(np.arange(30), values)
    report = forecaster.fit_report_
    assert report["channels"] == 3 and report["constant"] == 1 and report["failed"] == 1
    assert report["failures"] == {"LinAlgError": 1}
    prediction = forecaster.predict(40)
    assert prediction[0] == 0.5 and prediction[1] == values[-1, 1]
    assert prediction[2] != values[-1, 2] and np.isfinite(prediction[2])
    assert not forecaster.get_tag("vectorized")


@pytest.mark.slow
def test_statsmodels_backend_fits_at_unit_scale_and_forecasts_at_the_data_scale():
    # ARIMA is scale-equivariant: the fit of 1e-4 × y is 1e-4 × the fit of y (statsmodels
    # alone stops short of the optimum on tiny increments, hence the backend's rescaling).
    rng = np.random.default_rng(4)
    values = 1.0 + np.cumsum(rng.normal(size=(60, 3)), axis=0)
    steps = np.arange(60)
    spec = "arima(p=1,d=1,q=1,backend=statsmodels,clip_at_zero=False)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        big = get_forecaster(spec).fit(steps, values).predict(70)
        small = get_forecaster(spec).fit(steps, 1e-4 * values).predict(70)
    assert np.allclose(small, 1e-4 * big, rtol=0, atol=1e-8)


def test_statsmodels_backend_with_only_constant_channels_forecasts_them():
    forecaster = get_forecaster("arima(backend=statsmodels)").fit(np.arange(20), np.ones((20, 3)))
    assert np.array_equal(forecaster.predict(40), np.ones(3))
    assert forecaster.fit_report_["constant"] == 3
