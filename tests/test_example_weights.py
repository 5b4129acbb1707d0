"""``learned_gbr``'s fit: example weighting (every run alike, whatever its channel count) and
what it predicts (the final percentile, or its move from the current one)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from forecastprune.errors import ConfigError, ForecasterError
from forecastprune.forecasters.boosted import BoostedModel
from forecastprune.forecasters.features import FEATURES, ranking_scores
from forecastprune.forecasters.learned import LAYERED
from forecastprune.forecasters.training import example_weights, gbr_from_examples


@given(st.lists(st.integers(min_value=1, max_value=5_000), min_size=1, max_size=12))
def test_run_weighting_gives_every_run_the_same_total_and_averages_one(sizes):
    weights = example_weights("run", sizes, sum(sizes))
    assert weights.shape == (sum(sizes),)
    totals = np.add.reduceat(weights, np.cumsum([0, *sizes[:-1]]))
    np.testing.assert_allclose(totals, totals[0])
    assert weights.mean() == pytest.approx(1.0)


def test_channel_weighting_weighs_every_example_alike():
    assert example_weights("channel", [3, 5], 8) is None


@pytest.mark.parametrize(
    ("weighting", "sizes", "match"),
    [
        ("per-layer", [3], "unknown; use one of"),
        ("run", [3, 4], "summing to 8"),
        ("run", [8, 0], "positive"),
    ],
)
def test_bad_weightings_say_what_was_given_and_what_is_expected(weighting, sizes, match):
    with pytest.raises(ConfigError, match=match):
        example_weights(weighting, sizes, 8)


def test_a_large_run_no_longer_outvotes_a_small_one():
    # one run of 2,000 channels says "rises to the top", one of 20 says "falls to the bottom";
    # pooled alike, the large run wins; weighed per run, the prediction sits half way
    x = np.zeros((2_020, len(LAYERED)))
    y = np.r_[np.ones(2_000), np.zeros(20)]
    alike = gbr_from_examples(x, y, {}, "channel", [2_000, 20])
    per_run = gbr_from_examples(x, y, {}, "run", [2_000, 20])
    assert alike.predict(x[:1])[0] == pytest.approx(2_000 / 2_020, abs=1e-6)
    assert per_run.predict(x[:1])[0] == pytest.approx(0.5, abs=1e-6)
    assert per_run.info["weighting"] == "run"


def test_a_weight_per_example_is_required():
    x, y = np.zeros((4, len(LAYERED))), np.arange(4.0)
    with pytest.raises(ForecasterError, match="one weight per example"):
        BoostedModel.fit(x, y, LAYERED, sample_weight=np.ones(3))


def test_a_move_model_keeps_the_current_order_where_it_predicts_no_move():
    # every channel's final percentile equals its current one: the move model learns "no
    # move" and returns the current order exactly; the percentile model only approximates it
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, len(LAYERED)))
    x[:, FEATURES.index("percentile")] = rng.permutation(400) / 399
    y = x[:, FEATURES.index("percentile")]
    move = gbr_from_examples(x, y, {}, "channel", target="percentile move")
    level = gbr_from_examples(x, y, {}, "channel", target="final percentile")
    order = np.argsort(y)
    assert move.target == "percentile move"
    np.testing.assert_array_equal(
        np.argsort(ranking_scores(x, move.predict(x), move.target)), order
    )
    assert not np.array_equal(np.argsort(ranking_scores(x, level.predict(x), level.target)), order)


def test_an_unknown_target_is_refused_when_fitting_and_when_loading(tmp_path):
    x, y = np.zeros((4, len(LAYERED))), np.linspace(0, 1, 4)
    with pytest.raises(ConfigError, match="unknown; use one of"):
        gbr_from_examples(x, y, {}, "channel", target="final |γ|")
    path = BoostedModel.fit(x, y, LAYERED, {"target": "final |γ|"}, max_iter=2).save(
        tmp_path / "m.skops"
    )
    with pytest.raises(ForecasterError, match=re.escape("predicts 'final |γ|'")):
        BoostedModel.load(path, LAYERED)
