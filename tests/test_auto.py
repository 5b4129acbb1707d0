"""``auto``: backtests in the history choose the forecast, never straying far from naive."""

from __future__ import annotations

import numpy as np
import pytest

from forecastprune.errors import ForecasterError
from forecastprune.forecasters import get_forecaster
from forecastprune.forecasters.auto import SETTLED_HORIZON, AutoForecaster
from forecastprune.forecasters.backtest import MIN_ORIGIN_SHARE, backtest_pairs, horizon_ratio
from forecastprune.forecasters.candidates import (
    Window,
    ar1_increments,
    default_candidates,
    rank_agreement,
    trend,
)
from forecastprune.predict import predict_history

STEPS = np.arange(0, 400, 4)  # 100 snapshots; the run ends at step 396
CUTOFF = 30  # the forecaster sees the first 30 snapshots


def linear_decay(seed: int, channels: int = 300) -> np.ndarray:
    """Channels that start at different levels and fall at different, steady rates, so the
    ranking keeps changing until the end: only a trend sees where it goes."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(0.4, 1.0, channels)
    rate = rng.uniform(0.0, 1.5e-3, channels)
    noise = rng.normal(0.0, 2e-4, (len(STEPS), channels))
    return np.abs(start - np.outer(STEPS, rate) + noise)


def random_walk(seed: int, channels: int = 300) -> np.ndarray:
    """Channels whose increments are independent noise: the last value is the best forecast."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(0.3, 1.0, channels)
    return np.abs(start + np.cumsum(rng.normal(0.0, 5e-3, (len(STEPS), channels)), axis=0))


def fit_auto(values: np.ndarray, **params) -> AutoForecaster:
    model = AutoForecaster(learned=False, **params)
    model.fit(STEPS[:CUTOFF], values[:CUTOFF])
    model.predict(int(STEPS[-1]))
    return model


def gain_over_naive(values: np.ndarray) -> float:
    predicted = predict_history(
        "auto(learned=False)", STEPS[:CUTOFF], values[:CUTOFF], int(STEPS[-1])
    ).scores
    naive = values[CUTOFF - 1]
    return rank_agreement(predicted, values[-1]) - rank_agreement(naive, values[-1])


@pytest.mark.parametrize("seed", [0, 1])
def test_linear_decay_with_distinct_rates_picks_a_trend_and_beats_naive(seed):
    values = linear_decay(seed)
    model = fit_auto(values)
    assert model.chosen_.name.startswith(("trend", "ar1")), model.describe_choice()
    assert gain_over_naive(values) > 0.05


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_walks_leave_auto_at_naive(seed):
    values = random_walk(seed)
    model = fit_auto(values)
    assert model.chosen_.name == "naive", model.describe_choice()
    assert model.describe_choice().startswith("naive: backtest IoU")


@pytest.mark.parametrize("seed", range(6))
def test_never_much_worse_than_naive_on_mixed_synthetic_runs(seed):
    """Half trending, half random-walk channels, mixed in different shares per seed."""
    rng = np.random.default_rng(100 + seed)
    share = rng.uniform(0.0, 1.0)
    decay, walk = linear_decay(seed, 300), random_walk(seed, 300)
    values = np.where(rng.uniform(size=300) < share, decay, walk)
    assert gain_over_naive(values) >= -0.01


def test_backtest_origins_match_the_real_horizon_ratio():
    t = np.arange(200, dtype=float)
    target_t = 199 + 199 * 0.5  # horizon = half the history: origins at 2/3 of each target
    pairs = backtest_pairs(t, target_t, 3)
    assert len(pairs) == 3 and pairs[0][1] == 199
    for origin, target in pairs:
        ratio = (t[target] - t[origin]) / (t[origin] - t[0])
        assert ratio == pytest.approx(0.5, abs=0.02)


def test_backtest_origins_keep_half_the_history_when_the_horizon_is_long():
    t = np.arange(12, dtype=float)
    pairs = backtest_pairs(t, 11 + 20 * 11, 3)  # a ratio of 20 would leave the origin at 0
    assert pairs and all(o >= int(MIN_ORIGIN_SHARE * p) for o, p in pairs)
    assert backtest_pairs(np.arange(3, dtype=float), 100.0, 3) == []


def test_short_history_falls_back_to_naive_and_says_so():
    values = linear_decay(0)[:3]
    model = AutoForecaster(learned=False).fit(STEPS[:3], values)
    np.testing.assert_array_equal(model.predict(396), values[-1])
    assert "too short" in model.describe_choice()


def test_clock_changes_the_time_axis_and_is_optional():
    values = linear_decay(3)[:CUTOFF]
    clock = lambda s: np.sqrt(np.asarray(s, dtype=float))  # noqa: E731 - a monotone clock
    with_clock = AutoForecaster(learned=False).fit(STEPS[:CUTOFF], values, clock=clock)
    np.testing.assert_allclose(with_clock.t_, np.sqrt(STEPS[:CUTOFF]))
    ignored = AutoForecaster(learned=False, use_clock=False).fit(
        STEPS[:CUTOFF], values, clock=clock
    )
    np.testing.assert_allclose(ignored.t_, STEPS[:CUTOFF])
    model = get_forecaster("auto")
    assert model.get_tag("uses_clock") and not model.get_tag("needs_clock")


def test_candidates_are_naive_first_and_closed_form():
    candidates = default_candidates()
    assert candidates[0].name == "naive"
    t = np.arange(10, dtype=float)
    values = np.outer(t, [-0.01, 0.02]) + 1.0
    window = Window(t, t, values, 20.0, 20.0)
    # a straight line: the full trend extrapolates it exactly
    np.testing.assert_allclose(trend(window, 1.0, 1.0), [1.0 - 0.2, 1.0 + 0.4])
    # constant increments: φ is clipped at its cap, and the forecast is the capped geometric sum
    moved = ar1_increments(window, 1.0, "step") - values[-1]
    assert np.all(np.sign(moved) == [-1, 1])


def test_bad_parameters_raise_clear_errors():
    with pytest.raises(ForecasterError, match="origins"):
        AutoForecaster(origins=4)
    with pytest.raises(ForecasterError, match="margin"):
        AutoForecaster(margin=-0.1)


def test_compare_reports_what_auto_chose():
    from forecastprune.compare.replay import replay
    from forecastprune.compare.report import format_table, to_json
    from forecastprune.compare.settings import ReplaySettings
    from forecastprune.compare.suite import bundled_suite
    from forecastprune.store import GammaTrajectoryStore

    with GammaTrajectoryStore.open(bundled_suite() / "vgg-w0.5-s3e-3-cos.fpstore") as store:
        result = replay(store, ["auto"], ReplaySettings(cutoffs=(0.05, 0.2), isolation="thread"))
    notes = [row.note for row in result.rows if row.forecaster == "auto"]
    assert len(notes) == 2 and all(note.startswith(("naive: ", "learned_gbr: ")) for note in notes)
    assert all("gate" in note or "settled" in note for note in notes)
    assert all(row.note == "" for row in result.rows if row.forecaster == "naive")
    assert "chosen by self-selecting forecasters:\n  auto at 5%: " in format_table(result)
    assert to_json(result)["rows"][-1]["note"] == notes[-1]


def test_a_settled_run_stays_naive_even_when_a_trend_would_win():
    """With less than SETTLED_HORIZON × the history ahead, auto does not backtest at all."""
    values = linear_decay(0)
    model = AutoForecaster(learned=False).fit(STEPS[:60], values[:60])
    np.testing.assert_array_equal(model.predict(int(STEPS[-1])), values[59])
    assert "settled" in model.describe_choice()
    assert horizon_ratio(model.t_, float(STEPS[-1])) < SETTLED_HORIZON


def test_the_margin_grows_with_the_extrapolation_past_the_backtests():
    values = linear_decay(1)
    near = fit_auto(values, margin=0.01)  # 30 of 100 snapshots: horizon ≈ 2.4× the history
    early = AutoForecaster(learned=False, margin=0.01).fit(STEPS[:12], values[:12])
    early.predict(int(STEPS[-1]))  # 12 snapshots: horizon ≈ 8× the history
    assert 0.01 < near.required_ < early.required_
    tested = max(
        horizon_ratio(early.t_[: o + 1], early.t_[p])
        for o, p in backtest_pairs(early.t_, float(STEPS[-1]), 3)
    )
    reach = horizon_ratio(early.t_, float(STEPS[-1]))
    assert early.required_ == pytest.approx(0.01 * reach / tested)
    assert f"needed +{near.required_:.3f}" in near.describe_choice()


def test_a_clock_that_stands_still_ahead_leaves_auto_at_naive():
    """LR 0 from step 40 on: no cumulative LR lies ahead, so nothing is left to move."""
    values = linear_decay(2)[:CUTOFF]
    frozen = lambda s: np.minimum(np.asarray(s, dtype=float), 40.0)  # noqa: E731 - LR 0 after 40
    model = AutoForecaster(learned=False).fit(STEPS[:CUTOFF], values, clock=frozen)
    np.testing.assert_array_equal(model.predict(int(STEPS[-1])), values[-1])
    assert model.chosen_.name == "naive" and not model.scores_  # nothing was backtested
