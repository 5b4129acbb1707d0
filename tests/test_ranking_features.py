"""``learned_gbr``'s momentum and run-level columns (:func:`ranking_features`): their values,
their scale-freedom, and the domain box that spans a run-level column's whole training range."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecastprune.forecasters.candidates import Window
from forecastprune.forecasters.domain import Domain
from forecastprune.forecasters.features import (
    MOMENTUM_FEATURES,
    RANKING_FEATURES,
    RUN_FEATURES,
    layered_features,
    rank_correlation,
    ranking_features,
)


def window(values: np.ndarray, layers: np.ndarray | None = None) -> Window:
    steps = np.arange(len(values), dtype=float) * 10.0
    layers = np.zeros(values.shape[1], dtype=np.int64) if layers is None else layers
    return Window(steps, steps, values, 100.0, 100.0, layers)


def column(x: np.ndarray, name: str) -> np.ndarray:
    return x[:, RANKING_FEATURES.index(name)]


def test_momentum_and_run_columns_follow_their_definitions():
    # four snapshots of three channels: channel 0 falls from the top to the bottom
    values = np.array([[0.9, 0.5, 0.2], [0.6, 0.5, 0.3], [0.4, 0.5, 0.35], [0.1, 0.5, 0.4]])
    w = window(values)
    x = ranking_features(w)
    assert x.shape == (3, len(RANKING_FEATURES))
    layered = layered_features(w)
    np.testing.assert_array_equal(x[:, : layered.shape[1]], layered)
    assert layered.shape[1] + len(MOMENTUM_FEATURES) + len(RUN_FEATURES) == x.shape[1]
    # half the history is snapshot 1 (percentiles 1, ½, 0); now they are 0, 1, ½
    np.testing.assert_allclose(column(x, "percentile_move_half"), [-1.0, 0.5, 0.5])
    # three quarters is snapshot 2 (0.4, 0.5, 0.35: percentiles ½, 1, 0)
    np.testing.assert_allclose(column(x, "percentile_move_recent"), [-0.5, 0.0, 0.5])
    # the last quarter is the last three snapshots: channel 0 spans 0 … 1
    np.testing.assert_allclose(column(x, "percentile_range_recent"), [1.0, 0.5, 0.5])
    np.testing.assert_allclose(column(x, "stability"), rank_correlation(values[3], values[1]))
    np.testing.assert_allclose(column(x, "elapsed_steps"), 0.3)
    np.testing.assert_allclose(column(x, "mean_level_drop"), values[3].mean() / values[0].mean())
    np.testing.assert_allclose(column(x, "spread_ratio"), values[3].std() / values[3].mean())


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    snapshots=st.integers(2, 12),
    channels=st.integers(2, 20),
    factor=st.floats(0.01, 100.0),
)
def test_ranking_features_do_not_change_when_every_gamma_is_rescaled(
    seed, snapshots, channels, factor
):
    # γ initialised at 1.0 or at 0.5 must look alike to a model fitted on either
    values = np.random.default_rng(seed).uniform(0.01, 1.0, size=(snapshots, channels))
    layers = np.arange(channels) % 3
    plain = ranking_features(window(values, layers))
    scaled = ranking_features(window(values * factor, layers))
    np.testing.assert_allclose(scaled, plain, rtol=1e-7, atol=1e-9)


def test_run_columns_are_one_value_per_run_and_momentum_lies_in_the_percentile_range():
    values = np.random.default_rng(1).uniform(0.0, 1.0, size=(9, 15))
    x = ranking_features(window(values))
    for name in RUN_FEATURES:
        assert np.ptp(column(x, name)) == 0.0, name
    for name in MOMENTUM_FEATURES:
        assert np.all(np.abs(column(x, name)) <= 1.0), name
    with pytest.raises(ValueError, match="layer"):
        ranking_features(Window(np.arange(9.0), np.arange(9.0), values, 20.0, 20.0, None))


def test_a_run_level_column_spans_every_training_run_not_the_row_quantiles():
    # one large run (10,000 rows at 0.5) and a small one (20 rows at 0.9): the small run is
    # 0.2 % of the rows, inside what the model saw, yet outside the 0.5 % quantile box
    column = np.r_[np.full(10_000, 0.5), np.full(20, 0.9)][:, None]
    quantile_box = Domain.of(column, ("stability",))
    whole_box = Domain.of(column, ("stability",), whole=("stability",))
    small_run = np.full((20, 1), 0.9)
    assert not quantile_box.check(small_run).inside
    assert whole_box.check(small_run).inside
    assert not whole_box.check(np.full((20, 1), 1.5)).inside
