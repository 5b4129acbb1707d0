"""``learned_gbr``'s example weighting: every run alike, whatever its channel count."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from forecastprune.errors import ConfigError, ForecasterError
from forecastprune.forecasters.boosted import BoostedModel
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
