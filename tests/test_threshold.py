"""The threshold engine: hand-made cases and Hypothesis properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecastprune.core.layout import ChannelLayout
from forecastprune.engine.coupling import ChannelPlan
from forecastprune.engine.spec import PruneSpec
from forecastprune.engine.threshold import select_channels, unit_scores
from forecastprune.errors import PruningError

LAYOUT = ChannelLayout((("a", 4), ("b", 4)))
SCORES = np.array([0.1, 0.2, 0.3, 0.4, 0.05, 0.5, 0.6, 0.7])


def _plan(layout: ChannelLayout, prunable=None, groups=()) -> ChannelPlan:
    """A hand-made plan: which channels may go and which go together."""
    mask = np.ones(layout.total, dtype=bool) if prunable is None else prunable
    return ChannelPlan(layout, "grouped", mask, list(groups))


def test_global_ratio_prunes_lowest_channels_across_layers():
    decision = select_channels(SCORES, LAYOUT, PruneSpec(ratio=0.25))
    assert np.flatnonzero(decision.pruned).tolist() == [0, 4]
    assert decision.requested == 2
    assert decision.threshold == pytest.approx(0.2)  # the lowest surviving score: the cut
    assert decision.keep["a"].tolist() == [False, True, True, True]
    assert [(r.kept, r.pruned) for r in decision.report] == [(3, 1), (3, 1)]


def test_absolute_threshold_is_strict():
    decision = select_channels(SCORES, LAYOUT, PruneSpec(threshold=0.3))
    assert np.flatnonzero(decision.pruned).tolist() == [0, 1, 4]
    assert decision.threshold == 0.3


def test_ties_break_by_channel_index():
    scores = np.zeros(8)
    decision = select_channels(scores, LAYOUT, PruneSpec(ratio=0.5))
    # Index order takes all of layer a; min_keep=1 gives back its last channel, which is not
    # re-spent elsewhere (the count then undershoots the request, as the report says).
    assert np.flatnonzero(decision.pruned).tolist() == [0, 1, 2]
    assert decision.collapsed == ("a",)
    assert decision.report[0].rescued == 1


def test_min_keep_rescues_highest_scores_and_reports_collapse():
    decision = select_channels(SCORES, LAYOUT, PruneSpec(threshold=0.45, min_keep=2))
    assert decision.collapsed == ("a",)
    assert decision.keep["a"].tolist() == [False, False, True, True]
    assert decision.report[0].rescued == 2


def test_min_keep_fraction_and_round_to():
    layout = ChannelLayout((("wide", 20),))
    scores = np.arange(20, dtype=float)
    assert (
        select_channels(scores, layout, PruneSpec(ratio=0.9, min_fraction=0.25)).report[0].kept == 5
    )
    assert select_channels(scores, layout, PruneSpec(ratio=0.5, round_to=8)).report[0].kept == 16
    assert select_channels(scores, layout, PruneSpec(ratio=0.0, round_to=8)).report[0].kept == 20


def test_prunable_false_is_never_pruned_and_ratio_counts_prunable_only():
    prunable = np.array([True] * 4 + [False] * 4)
    decision = select_channels(SCORES, _plan(LAYOUT, prunable), PruneSpec(ratio=0.5))
    assert np.flatnonzero(decision.pruned).tolist() == [0, 1]
    assert decision.requested == 2


def test_upper_bounds_spare_uncertain_channels():
    upper = SCORES.copy()
    upper[0] = 0.9  # a low forecast that might well be high
    decision = select_channels(SCORES, LAYOUT, PruneSpec(ratio=0.25, uncertainty=True), upper=upper)
    assert np.flatnonzero(decision.pruned).tolist() == [4]


@pytest.mark.parametrize("reduce, expected", [("max", [1, 2, 3, 4, 5]), ("mean", [0, 1, 2, 4, 6])])
def test_groups_move_together_scored_by_reduce(reduce, expected):
    groups = [np.array([0, 6])]  # scores 0.1 and 0.6: max 0.6, mean 0.35
    decision = select_channels(
        SCORES, _plan(LAYOUT, groups=groups), PruneSpec(ratio=0.625, group_reduce=reduce)
    )
    assert np.flatnonzero(decision.pruned).tolist() == expected


def test_group_count_lands_nearest_the_request_preferring_fewer():
    # target 4; units by score: 4, 0, 2, then the pair {1, 5} (mean 0.35) -> 3 or 5 channels.
    decision = select_channels(
        SCORES, _plan(LAYOUT, groups=[np.array([1, 5])]), PruneSpec(ratio=0.5, group_reduce="mean")
    )
    assert np.flatnonzero(decision.pruned).tolist() == [0, 2, 4]


def test_group_with_an_unprunable_member_is_kept():
    prunable = np.ones(8, dtype=bool)
    prunable[5] = False
    decision = select_channels(
        SCORES, _plan(LAYOUT, prunable, [np.array([1, 5])]), PruneSpec(ratio=0.5)
    )
    assert not decision.pruned[1]


@pytest.mark.parametrize(
    "settings, match",
    [
        ({"ratio": 0.5, "threshold": 0.1}, "a ratio or a threshold, not both"),
        ({"ratio": 1.5}, r"ratio .* must lie in \[0, 1\]"),
        ({"ratio": 0.5, "min_keep": 0}, "min_keep must be a whole number"),
        ({"ratio": 0.5, "round_to": 0}, "round_to"),
        ({"ratio": 0.5, "group_reduce": "median"}, "group_reduce"),
        ({"threshold": float("nan")}, "threshold must be a finite number"),
        ({"policy": "loose"}, "policy must be one of none, seed, grouped"),
        ({"coverage": 1.0}, "coverage"),
    ],
)
def test_bad_settings_raise_pruning_error(settings, match):
    with pytest.raises(PruningError, match=match):
        PruneSpec(**settings)


@pytest.mark.parametrize(
    "plan, upper, match",
    [
        (_plan(LAYOUT, groups=[np.array([0, 1]), np.array([1, 2])]), None, "disjoint"),
        (_plan(LAYOUT, groups=[np.array([0, 9])]), None, "outside"),
        (_plan(LAYOUT, np.ones(3, dtype=bool)), None, "prunable must be"),
        (LAYOUT, np.ones(7), "7 channels"),
    ],
)
def test_bad_plans_and_bounds_raise_pruning_error(plan, upper, match):
    with pytest.raises(PruningError, match=match):
        select_channels(SCORES, plan, PruneSpec(uncertainty=True), upper=upper)


def test_spec_without_ratio_or_threshold_prunes_half():
    assert PruneSpec().ratio == 0.5 and PruneSpec(threshold=0.2).ratio is None
    assert select_channels(SCORES, LAYOUT).n_pruned == 4


def test_non_finite_or_mis_shaped_scores_raise():
    with pytest.raises(PruningError, match="NaN/Inf"):
        select_channels(np.r_[SCORES[:-1], np.nan], LAYOUT, PruneSpec(ratio=0.5))
    with pytest.raises(PruningError, match="1-D"):
        select_channels(SCORES.reshape(2, 4), LAYOUT, PruneSpec(ratio=0.5))


def test_decision_json_summary():
    data = select_channels(SCORES, LAYOUT, PruneSpec(ratio=1.0)).to_json()
    assert data["threshold"] is None  # every unit taken: the cut is +inf
    assert data["collapsed"] == ["a", "b"]
    assert [layer["kept"] for layer in data["layers"]] == [1, 1]


# ------------------------------------------------------------------------------ properties
@st.composite
def problems(draw):
    sizes = draw(st.lists(st.integers(1, 12), min_size=1, max_size=5))
    layout = ChannelLayout(tuple((f"bn{i}", n) for i, n in enumerate(sizes)))
    # Few distinct values so ties are common.
    scores = np.array(
        draw(st.lists(st.integers(0, 6), min_size=layout.total, max_size=layout.total)), dtype=float
    )
    return layout, scores


ratios = st.floats(0.0, 1.0, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(problems(), ratios)
def test_exact_count_when_no_floor_binds(problem, ratio):
    layout, scores = problem
    decision = select_channels(scores, layout, PruneSpec(ratio=ratio))
    if not decision.collapsed:
        assert decision.n_pruned == decision.requested == int(np.floor(ratio * scores.size + 0.5))
        # Everything pruned scores no higher than everything kept.
        if 0 < decision.n_pruned < scores.size:
            assert scores[decision.pruned].max() <= scores[~decision.pruned].min()


@settings(max_examples=60, deadline=None)
@given(problems(), ratios, st.integers(1, 6), st.floats(0.0, 1.0))
def test_floors_always_honoured_and_no_layer_emptied(problem, ratio, min_keep, fraction):
    layout, scores = problem
    decision = select_channels(
        scores, layout, PruneSpec(ratio=ratio, min_keep=min_keep, min_fraction=fraction)
    )
    for report in decision.report:
        floor = min(report.channels, max(min_keep, int(np.ceil(fraction * report.channels - 1e-9))))
        assert report.kept >= max(1, floor)
        assert report.kept + report.pruned == report.channels


@settings(max_examples=60, deadline=None)
@given(problems(), ratios, ratios, st.integers(1, 4))
def test_monotone_in_ratio(problem, r1, r2, min_keep):
    layout, scores = problem
    low, high = sorted((r1, r2))
    small = select_channels(scores, layout, PruneSpec(ratio=low, min_keep=min_keep)).pruned
    large = select_channels(scores, layout, PruneSpec(ratio=high, min_keep=min_keep)).pruned
    assert not np.any(small & ~large)  # nested: a larger ratio prunes a superset


@settings(max_examples=60, deadline=None)
@given(problems(), ratios, st.sampled_from([2, 4, 8]))
def test_round_to_gives_multiples_never_zero_never_over_size(problem, ratio, round_to):
    layout, scores = problem
    decision = select_channels(scores, layout, PruneSpec(ratio=ratio, round_to=round_to))
    for report in decision.report:
        assert 0 < report.kept <= report.channels
        assert report.kept % round_to == 0 or report.kept == report.channels


@settings(max_examples=40, deadline=None)
@given(problems(), ratios, st.data())
def test_groups_are_all_or_nothing(problem, ratio, data):
    layout, scores = problem
    perm = np.random.default_rng(data.draw(st.integers(0, 99))).permutation(layout.total)
    groups = [perm[i : i + 3] for i in range(0, layout.total - 2, 3)][:3]
    decision = select_channels(scores, _plan(layout, groups=groups), PruneSpec(ratio=ratio))
    for group in groups:
        assert len(set(decision.pruned[group].tolist())) == 1
    assert all(r.kept >= 1 for r in decision.report)


@settings(max_examples=40, deadline=None)
@given(problems(), ratios, st.data())
def test_upper_bounds_only_ever_spare_channels(problem, ratio, data):
    layout, scores = problem
    widths = np.array(
        data.draw(st.lists(st.integers(0, 3), min_size=scores.size, max_size=scores.size)),
        dtype=float,
    )
    point = select_channels(scores, layout, PruneSpec(ratio=ratio))
    careful = select_channels(
        scores, layout, PruneSpec(ratio=ratio, uncertainty=True), upper=scores + widths
    )
    # Per layer, uncertainty only spares; which channels the floors give back may differ.
    for mine, theirs in zip(careful.report, point.report, strict=True):
        assert mine.pruned <= theirs.pruned
    if not any(r.rescued for r in point.report):
        assert not np.any(careful.pruned & ~point.pruned)
    assert careful.threshold == point.threshold  # the cut comes from the point forecasts
    assert np.all(scores[careful.pruned] + widths[careful.pruned] < careful.threshold)


def test_unit_scores_are_the_group_scores_the_ranking_uses():
    plan = _plan(LAYOUT, groups=[np.array([0, 6])])
    assert unit_scores(SCORES, plan, "max")[[0, 6]].tolist() == [0.6, 0.6]
    assert unit_scores(SCORES, plan, "mean")[[0, 6]].tolist() == pytest.approx([0.35, 0.35])
    assert unit_scores(SCORES, LAYOUT)[1:6].tolist() == SCORES[1:6].tolist()


def test_anything_but_a_plan_or_layout_is_a_clear_error():
    with pytest.raises(PruningError, match="needs a ChannelPlan"):
        select_channels(SCORES, {"layout": LAYOUT}, PruneSpec(ratio=0.5))
