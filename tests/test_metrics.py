"""Mask and ranking metrics on hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecastprune.core.metrics import (
    collapsed_set,
    early_bird_step,
    iou,
    mae,
    mask_distance,
    precision_recall,
    separation,
    spearman,
    tie_aware_iou,
)

A = np.array([1, 1, 0, 0, 0], dtype=bool)
B = np.array([1, 0, 1, 0, 0], dtype=bool)


def test_iou_precision_recall_hamming_by_hand():
    assert iou(A, B) == pytest.approx(1 / 3)
    assert precision_recall(A, B) == (0.5, 0.5)
    assert mask_distance(A, B) == pytest.approx(2 / 5)
    assert iou(A, A) == 1.0 and mask_distance(A, A) == 0.0


def test_empty_sets_follow_the_documented_convention():
    empty = np.zeros(5, dtype=bool)
    assert iou(empty, empty) == 1.0
    precision, recall = precision_recall(empty, A)
    assert math.isnan(precision) and recall == 0.0
    with pytest.raises(ValueError, match="same shape"):
        mask_distance(A, np.zeros(4, dtype=bool))


def test_spearman_and_mae():
    oracle = np.array([0.1, 0.2, 0.3, 0.4])
    assert spearman(oracle**2, oracle) == pytest.approx(1.0)  # monotone: same ranking
    assert spearman(-oracle, oracle) == pytest.approx(-1.0)
    assert math.isnan(spearman(np.ones(4), oracle))
    assert mae(oracle + 0.1, oracle) == pytest.approx(0.1)


def test_tie_aware_iou_forgives_choices_inside_the_collapsed_set_only():
    final = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 2.0])
    collapsed = collapsed_set(final, eps_rel=1e-3)
    assert collapsed.tolist() == [True] * 4 + [False] * 2
    oracle = np.array([1, 1, 0, 0, 0, 0], dtype=bool)
    other_zeros = np.array([0, 0, 1, 1, 0, 0], dtype=bool)
    assert iou(other_zeros, oracle) == 0.0
    assert tie_aware_iou(other_zeros, oracle, collapsed) == 1.0
    wrong = np.array([0, 0, 0, 1, 1, 0], dtype=bool)  # prunes a live channel the oracle keeps
    assert tie_aware_iou(wrong, oracle, collapsed) == pytest.approx(1 / 2)


def test_separation_of_a_clear_and_of_a_collapsed_cut():
    prunable = np.ones(8, dtype=bool)
    clear = np.array([0.1, 0.1, 0.1, 0.1, 1.0, 1.0, 1.0, 1.0])
    sep = separation(clear, prunable, 4, eps=1e-3, window=0.25)
    assert sep.cut == 1.0 and sep.gap == pytest.approx(0.9)
    assert sep.spread == pytest.approx(0.9) and sep.score == pytest.approx(1.0)
    assert not sep.inside_collapsed
    flat = np.array([0.0] * 6 + [1.0, 2.0])
    sep = separation(flat, prunable, 4, eps=1e-3)
    assert sep.inside_collapsed and sep.gap == 0.0


def test_early_bird_step_needs_four_stable_predecessors():
    steps = np.arange(0, 80, 10)
    base = np.zeros(20, dtype=bool)
    masks = []
    for k in range(8):
        mask = base.copy()
        mask[: min(k, 3) * 3] = True  # changes by 3/20 = 0.15 until k = 3, then frozen
        masks.append(mask)
    # Frozen from k=3 on; k=7 is the first with four identical predecessors (3..6).
    assert early_bird_step(steps, np.array(masks)) == 70
    # With tolerance 0.3, k=5 is first: its oldest predecessor (k=1) is 6/20 = 0.3 away.
    assert early_bird_step(steps, np.array(masks), tolerance=0.3) == 50
    assert early_bird_step(steps[:6], np.array(masks[:6])) is None


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans()), min_size=1, max_size=40))
def test_set_metric_identities(triples):
    columns = zip(*triples, strict=True)
    pred, oracle, collapsed = (np.array(column, dtype=bool) for column in columns)
    assert iou(pred, oracle) == iou(oracle, pred)
    assert 0.0 <= iou(pred, oracle) <= tie_aware_iou(pred, oracle, collapsed) <= 1.0
    assert mask_distance(pred, oracle) == pytest.approx(np.mean(pred ^ oracle))
    if not collapsed.any():
        assert tie_aware_iou(pred, oracle, collapsed) == iou(pred, oracle)
