"""Offline replay: cutoffs, history truncation, oracle, isolation of failing forecasters."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from _replay_data import END, START, linear_store, settling_store, write_store

from forecastprune.compare.replay import (
    ReplaySettings,
    replay,
    resolve_cutoffs,
    resolve_forecasters,
)
from forecastprune.compare.worker import run_forecaster
from forecastprune.engine.spec import PruneSpec
from forecastprune.engine.threshold import select_channels
from forecastprune.errors import ConfigError, UnknownForecasterError
from forecastprune.forecasters import Forecaster, register_forecaster
from forecastprune.store import GammaTrajectoryStore
from forecastprune.testing import isolated_registry


@pytest.fixture(scope="module")
def line_store(tmp_path_factory):
    path = linear_store(tmp_path_factory.mktemp("replay") / "line.fpstore")
    with GammaTrajectoryStore.open(path) as store:
        yield store


def test_cutoffs_mix_fractions_and_steps_sorted_and_deduplicated():
    cutoffs = resolve_cutoffs([0.5, "step:100", 0.1, "step:20"], length=200, final_step=200)
    assert [c.step for c in cutoffs] == [20, 100]  # 0.1 × 200 = step 20 = the explicit 20
    assert [c.label for c in cutoffs] == ["10%", "50%"]


def test_fractions_are_of_the_planned_run_length():
    cutoffs = resolve_cutoffs([0.1], length=1000, final_step=200)
    assert [c.step for c in cutoffs] == [100]


@pytest.mark.parametrize(
    "values, match",
    [
        ([1.0], "not before the store's final step"),
        ([0.6], "not before the store's final step"),
        (["step:200"], "not before the store's final step"),
        ([0.0], "expected a fraction of the run"),
        ([2.5], "expected a fraction of the run"),
        ([100], "write .step:100."),
        (["step:-3"], "whole step number"),
        ([], "at least one cutoff"),
    ],
)
def test_bad_cutoffs_raise_config_error(values, match):
    with pytest.raises(ConfigError, match=match):
        resolve_cutoffs(values, length=400, final_step=200)


def test_naive_control_is_added_first_and_unknown_names_list_valid_ones():
    built, requested, _ = resolve_forecasters(["sma", "linear(window=4)", "sma"])
    assert [label for label, _ in built] == ["naive", "sma", "linear(window=4)"]
    assert requested == ["sma", "linear(window=4)"]
    with pytest.raises(UnknownForecasterError, match="sma"):
        resolve_forecasters(["smaa"])


def test_replay_sees_only_the_history_up_to_each_cutoff(line_store):
    calls = []
    result = replay(
        line_store,
        ["linear"],
        ReplaySettings(cutoffs=(0.5,), ratios=(0.5,)),
        progress=lambda *args: calls.append(args),
    )
    assert calls == [("naive", 1, 2), ("linear", 2, 2)]
    naive, linear = (result.rows_for(0.5)[i] for i in (0, 1))
    # naive predicts the mid-run |γ|: lowest four {2, 4, 6, 7} vs the oracle's {0, 2, 4, 6}
    assert naive.iou == pytest.approx(3 / 5)
    assert naive.mae == pytest.approx(np.mean(np.abs(START - END)) / 2)
    # the straight lines are extrapolated exactly
    assert linear.iou == pytest.approx(1.0) and linear.mae < 1e-6  # float32 storage
    assert linear.spearman == pytest.approx(1.0)
    assert result.best(result.cutoffs[0], 0.5) == "linear"
    assert result.oracle[0.5].pruned == 4 and result.prunable == 8
    assert not result.all_failed


def test_one_failing_forecaster_does_not_stop_the_others(line_store):
    with isolated_registry():

        @register_forecaster("boom")
        class Boom(Forecaster):
            def _fit(self, t, values):
                raise RuntimeError("kaboom")

        @register_forecaster("nanny")
        class Nanny(Forecaster):
            def _fit(self, t, values):
                self.n = values.shape[1]

            def _predict(self, target_t):
                return np.full(self.n, np.nan)

        result = replay(
            line_store,
            ["boom", "nanny", "sma"],
            ReplaySettings(cutoffs=(0.3, 0.5), ratios=(0.5, 0.7)),
        )
    assert "RuntimeError: kaboom" in result.failure("boom")
    assert "8 NaN/Inf" in result.failure("nanny")
    assert result.failure("sma") is None
    assert all(r.ok for r in result.rows if r.forecaster == "sma")
    assert len(result.rows) == 4 * 2 * 2
    assert any("boom failed" in w for w in result.warnings)
    assert not result.all_failed


def test_all_requested_failing_is_reported(line_store):
    with isolated_registry():

        @register_forecaster("boom")
        class Boom(Forecaster):
            def _fit(self, t, values):
                raise ValueError("no")

        result = replay(line_store, ["boom"], ReplaySettings(cutoffs=(0.5,)))
    assert result.all_failed and result.failure("naive") is None


class Sleepy(Forecaster):
    def _fit(self, t, values):
        time.sleep(30)


@pytest.mark.parametrize("isolation", ["process", "thread"])
def test_timeout_stops_waiting_and_marks_every_remaining_cutoff(isolation):
    steps, values = np.arange(10), np.ones((10, 3))
    start = time.monotonic()
    outcomes = run_forecaster(Sleepy(), steps, values, [4, 6], 9, timeout=0.3, isolation=isolation)
    assert time.monotonic() - start < 5
    assert [o.error for o in outcomes] == ["timed out after 0.3 s (0 of 2 cutoffs done)"] * 2


class Crasher(Forecaster):
    def _fit(self, t, values):
        os._exit(3)  # dies without a word, as a segfaulting extension would


def test_a_crashing_worker_fails_its_cells_and_the_parent_survives():
    outcomes = run_forecaster(
        Crasher(), np.arange(5), np.ones((5, 3)), [2, 3], 4, isolation="process"
    )
    assert all("exited without an answer" in o.error for o in outcomes)


def test_wrong_shape_is_a_failed_cell():
    class Short(Forecaster):
        def _fit(self, t, values):
            pass

        def predict(self, target_step):  # bypasses the base class check on purpose
            return np.zeros(2)

    [outcome] = run_forecaster(Short(), np.arange(5), np.ones((5, 3)), [3], 4)
    assert outcome.prediction is None and "shape (2,)" in outcome.error


def test_early_bird_point_on_masks_that_settle(tmp_path):
    with GammaTrajectoryStore.open(settling_store(tmp_path / "s.fpstore")) as store:
        result = replay(store, ["sma"], ReplaySettings(cutoffs=(0.5,), eb_spacing=10))
    bird = result.early_bird[0.5]
    # masks every 10 steps; frozen from 50, so 90 is the first with four frozen predecessors
    assert (bird.step, bird.spacing, bird.iou) == (90, 10, 1.0)


def test_collapsed_cut_ranks_by_tie_aware_iou_and_warns(tmp_path):
    steps = np.arange(0, 101, 10)
    final = np.array([0.0] * 6 + [0.5, 1.0])
    values = np.linspace(np.full(8, 0.8), final, len(steps))
    from _replay_data import LAYOUT, write_store

    with GammaTrajectoryStore.open(
        write_store(tmp_path / "z.fpstore", steps, values, LAYOUT)
    ) as store:
        result = replay(store, ["sma"], ReplaySettings(cutoffs=(0.5,), ratios=(0.5,)))
    oracle = result.oracle[0.5]
    assert oracle.separation.inside_collapsed and oracle.rank_by == "tie_iou"
    assert result.collapsed_fraction == pytest.approx(6 / 8)
    assert any("cuts inside the collapsed set" in w for w in result.warnings)
    naive = result.rows_for(0.5)[0]
    assert naive.tie_iou == pytest.approx(1.0)  # any 4 of the 6 zeros is as good as another


def test_unfinished_run_is_flagged(tmp_path):
    path = linear_store(tmp_path / "u.fpstore", metadata={"total_steps": 1000})
    with GammaTrajectoryStore.open(path) as store:
        result = replay(store, ["sma"], ReplaySettings(cutoffs=(0.1,)))
    assert any("planned 1000 steps" in w for w in result.warnings)


def test_a_policy_without_the_model_falls_back_to_none_and_says_why(line_store):
    result = replay(
        line_store,
        ["sma"],
        ReplaySettings(cutoffs=(0.5,), isolation="thread", spec=PruneSpec(policy="seed")),
    )
    assert result.settings.spec.policy == "none" and result.prunable == 8
    assert any("policy none, not seed" in w and "names no model" in w for w in result.warnings)
    with pytest.raises(ConfigError, match="names no model"):
        from forecastprune.compare.replay import channel_plan

        channel_plan(line_store, "seed")


@pytest.mark.parametrize("policy", ["seed", "grouped"])
def test_policies_trace_the_stores_zoo_model(tmp_path, policy):
    import torch

    from forecastprune.engine.coupling import default_layout, plan_channels
    from forecastprune.zoo import build_model

    model = build_model("resnet")
    layout = default_layout(model)
    rng = np.random.default_rng(0)
    steps = np.arange(0, 60, 5)
    values = np.cumsum(rng.normal(0, 0.05, (len(steps), layout.total)), axis=0) + 1.0
    path = write_store(tmp_path / "r.fpstore", steps, values, layout, {"model": "resnet"})
    with GammaTrajectoryStore.open(path) as store:
        result = replay(
            store, ["sma"], ReplaySettings(cutoffs=(0.5,), spec=PruneSpec(policy=policy))
        )
    plan = plan_channels(model, torch.zeros(1, 1, 8, 8), layout, policy)
    assert result.prunable == plan.prunable_channels
    if policy == "seed":
        assert plan.prunable_channels < layout.total  # shortcut-tied layers are left alone
    else:
        assert plan.groups  # residual adds couple channels across layers
    expected = select_channels(np.abs(values[-1]), plan, PruneSpec(ratio=0.5))
    assert result.oracle[0.5].layer_pruned == tuple(r.pruned for r in expected.report)
    # the cut is judged on group scores, so kept units never sit below pruned ones
    assert result.oracle[0.5].separation.gap >= 0
    assert result.oracle[0.5].separation.cut == pytest.approx(expected.threshold)


@pytest.mark.parametrize(
    ("settings", "reason"),
    [
        (
            dict(spec=PruneSpec(min_keep=1000)),
            "min-keep 1000 keeps every channel of every layer (the widest has 4)",
        ),
        (dict(ratios=(0.0,)), "ratio 0 of 8 channels asks for none"),
    ],
)
def test_an_oracle_that_prunes_nothing_is_refused(line_store, settings, reason):
    with pytest.raises(ConfigError, match="nothing to compare") as caught:
        replay(line_store, ["sma"], ReplaySettings(cutoffs=(0.5,), isolation="thread", **settings))
    assert reason in str(caught.value)


def test_a_ratio_that_prunes_nothing_has_no_best_and_a_loud_warning(line_store):
    result = replay(
        line_store, ["sma"], ReplaySettings(cutoffs=(0.5,), ratios=(0.0, 0.5), isolation="thread")
    )
    cutoff = result.cutoffs[0]
    assert result.best(cutoff, 0.0) is None and result.best(cutoff, 0.5) is not None
    assert any("RATIO 0 PRUNES NOTHING" in w for w in result.warnings)
    from forecastprune.compare.report import format_table

    assert "NO BEST MARKED" in format_table(result)


def test_the_verdict_names_the_forecaster_how_early_and_its_margin(line_store):
    from forecastprune.compare.report import dumps_json, format_table, verdicts

    # straight lines: linear predicts the final ranking exactly, naive gets 3 of 5 right
    result = replay(line_store, ["linear"], ReplaySettings(cutoffs=(0.5,), isolation="thread"))
    line = (
        "verdict (ratio 0.5): linear reaches IoU ≥ 0.9 earliest, at 50% (step 100): 1.000, "
        "+0.400 over naive (0.600)"
    )
    assert verdicts(result) == [line]
    assert format_table(result).endswith(line)
    assert '"verdict": [' in dumps_json(result)
    assert verdicts(result, target=1.5) == [
        "verdict (ratio 0.5): no forecaster reaches IoU ≥ 1.5 at any cutoff; the closest is "
        "linear at 50% (step 100) with 1.000; the largest lead over naive: linear at 50% "
        "(step 100), +0.400 IoU"
    ]


def test_the_iou_figure_has_one_legend_for_all_panels_and_distinct_lines(line_store):
    from forecastprune.compare.plots import iou_figure

    result = replay(
        line_store,
        ["sma", "ema", "linear"],
        ReplaySettings(cutoffs=(0.2, 0.5), ratios=(0.25, 0.5), isolation="thread"),
    )
    figure = iou_figure(result)
    (legend,) = figure.legends  # on the figure, so it covers the left panel too
    assert [t.get_text() for t in legend.get_texts()][:4] == ["naive", "sma", "ema", "linear"]
    for ax in figure.axes:
        lines = [line for line in ax.get_lines() if line.get_label() in result.forecasters]
        assert len(lines) == 4
        styles = {
            (line.get_marker(), str(line.get_linestyle()), line.get_color()) for line in lines
        }
        assert len(styles) == 4  # no two forecasters drawn alike
