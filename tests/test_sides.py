"""The side-change analysis: crossers, distance from the cut, bins and AUC on known arrays."""

from __future__ import annotations

import itertools
import math
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from _sides import (
    BinCounts,
    auc,
    bin_changers,
    cut_distance,  # noqa: E402
    side_changes,
    tied_across_cut,
    toward_cut,
)

from forecastprune.core.layout import ChannelLayout
from forecastprune.engine.spec import PruneSpec
from forecastprune.engine.threshold import select_channels


def test_side_changes_counts_each_direction() -> None:
    now = np.array([1, 1, 1, 0, 0, 0, 0, 0], bool)
    end = np.array([1, 0, 0, 1, 1, 0, 0, 0], bool)
    found = side_changes(now, end)
    assert (found.down, found.up, found.changed) == (2, 2, 4)
    assert found.share_of_channels == 0.5
    assert found.share_of_pruned == pytest.approx(2 / 3)  # 2 of the 3 end-pruned were kept
    assert found.iou == pytest.approx(1 / 5)
    with pytest.raises(ValueError, match="same shape"):
        side_changes(now, end[:3])


def test_cut_distance_is_the_rank_distance_with_ties_by_index() -> None:
    distance = cut_distance(np.array([0.3, 0.1, 0.2, 0.4]), n_pruned=2)
    np.testing.assert_allclose(distance, [0.125, -0.375, -0.125, 0.375])
    # equal scores: the lower index is pruned first, as the engine does
    np.testing.assert_allclose(cut_distance(np.array([1.0, 1.0]), 1), [-0.25, 0.25])
    with pytest.raises(ValueError, match="n_pruned"):
        cut_distance(np.ones(3), 4)


@pytest.mark.parametrize("seed", range(5))
def test_below_the_cut_is_what_the_engine_prunes(seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 6, size=40).astype(float)  # many ties
    layout = ChannelLayout.from_pairs([("a.bn", 20), ("b.bn", 20)])
    decision = select_channels(scores, layout, PruneSpec(ratio=0.4))
    np.testing.assert_array_equal(cut_distance(scores, decision.requested) < 0, decision.pruned)


def test_tied_across_cut_marks_only_the_block_the_tie_break_splits() -> None:
    scores = np.array([0.1, 0.5, 0.5, 0.5, 0.9, 0.1])
    np.testing.assert_array_equal(tied_across_cut(scores, 3), [0, 1, 1, 1, 0, 0])
    assert not tied_across_cut(scores, 2).any()  # 0.1, 0.1 | 0.5 ...: a tie, but on one side
    assert not tied_across_cut(scores, 0).any() and not tied_across_cut(scores, 6).any()


def test_bin_changers_counts_per_bin_of_absolute_distance() -> None:
    distance = np.array([-0.01, 0.015, 0.03, -0.04, 0.07, 0.15, -0.5, 0.9])
    changed = np.array([1, 1, 0, 1, 0, 0, 1, 0], bool)
    bins = bin_changers(distance, changed)
    np.testing.assert_array_equal(bins.channels, [2, 2, 1, 1, 2])
    np.testing.assert_array_equal(bins.changed, [2, 1, 0, 0, 1])
    np.testing.assert_allclose(bins.share_changed, [1.0, 0.5, 0.0, 0.0, 0.5])
    np.testing.assert_allclose(bins.share_of_changers, [0.5, 0.25, 0, 0, 0.25])
    both = bins + bins
    np.testing.assert_array_equal(both.changed, 2 * bins.changed)
    with pytest.raises(ValueError, match="bins differ"):
        bins + BinCounts((0.0, 1.0), np.array([1]), np.array([0]))
    empty = bin_changers(np.array([0.5]), np.array([False]), (0.0, 0.1, math.inf))
    assert np.isnan(empty.share_changed[0]) and np.isnan(empty.share_of_changers).all()


def test_toward_cut_flips_the_sign_above_the_cut() -> None:
    np.testing.assert_array_equal(
        toward_cut(np.array([2.0, 2.0]), np.array([True, False])), [2.0, -2.0]
    )


def _pairs_auc(score: np.ndarray, target: np.ndarray) -> float:
    wins = [
        1.0 if p > n else 0.5 if p == n else 0.0
        for p, n in itertools.product(score[target], score[~target])
    ]
    return float(np.mean(wins))


def test_auc_matches_counting_pairs() -> None:
    rng = np.random.default_rng(0)
    score = rng.integers(0, 5, size=30).astype(float)  # ties count ½
    target = rng.random(30) < 0.4
    assert auc(score, target) == pytest.approx(_pairs_auc(score, target))
    assert auc(np.array([1.0, 2.0, 3.0]), np.array([0, 1, 1], bool)) == 1.0
    assert auc(np.array([3.0, 2.0, 1.0]), np.array([0, 1, 1], bool)) == 0.0
    assert math.isnan(auc(np.ones(3), np.ones(3, bool)))


def test_auc_within_strata_ignores_differences_between_them() -> None:
    # inside each stratum the positive scores lower; pooled, stratum 1's high scores leak in
    score = np.array([1.0, 2.0, 5.0, 6.0])
    target = np.array([1, 0, 1, 0], bool)
    assert auc(score, target) == pytest.approx(0.25)
    assert auc(score, target, strata=np.array([0, 0, 1, 1])) == 0.0
    with pytest.raises(ValueError, match="one shape"):
        auc(score, target, strata=np.zeros(3))
