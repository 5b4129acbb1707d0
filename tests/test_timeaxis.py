"""The cumulative-LR clock and LR-schedule planning."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from forecastprune.core.layout import ChannelLayout
from forecastprune.core.lr_clock import (
    check_lr_schedule,
    clock_for_store,
    cumulative_lr_clock,
    lr_at,
    planned_lr_schedule,
)
from forecastprune.errors import ConfigError, StoreError
from forecastprune.store import GammaTrajectoryStore

increasing_steps = st.lists(st.integers(0, 500), min_size=1, max_size=30, unique=True).map(sorted)


@settings(max_examples=60, deadline=None)
@given(steps=increasing_steps, lr=st.floats(1e-5, 10.0), data=st.data())
def test_constant_lr_gives_lr_times_step_everywhere(steps, lr, data):
    planned = data.draw(st.sampled_from([None, [[0, lr]]]))
    clock = cumulative_lr_clock(steps, np.full(len(steps), lr), planned)
    query = np.array(data.draw(st.lists(st.floats(-50, 2000), min_size=1, max_size=20)))
    np.testing.assert_allclose(clock(query), lr * query, rtol=1e-12, atol=1e-12 * lr)


@settings(max_examples=60, deadline=None)
@given(
    steps=increasing_steps,
    lrs=st.lists(st.floats(0.0, 1.0), min_size=30, max_size=30),
    planned=st.lists(st.tuples(st.integers(0, 1000), st.floats(0.0, 1.0)), max_size=5),
)
def test_clock_is_monotone_and_sums_the_lr_per_update(steps, lrs, planned):
    planned = sorted(dict(planned).items()) or None
    lrs = np.array(lrs[: len(steps)])
    clock = cumulative_lr_clock(steps, lrs, planned)
    grid = np.arange(-5, 1200)
    values = clock(grid)
    assert np.all(np.diff(values) >= 0)
    # at integer steps the clock is the running sum of the per-update LR it assumes
    per_update = np.diff(values[grid >= 0])
    assert clock(0) == 0.0
    recorded = lrs[np.searchsorted(steps, np.arange(1, steps[-1] + 1))]
    np.testing.assert_allclose(per_update[: steps[-1]], recorded, atol=1e-9)
    if planned is not None:
        beyond = np.arange(steps[-1] + 1, 1200)
        np.testing.assert_allclose(per_update[steps[-1] :], lr_at(planned, beyond), atol=1e-9)


def test_schedule_is_followed_beyond_the_last_snapshot():
    clock = cumulative_lr_clock([0, 2, 4], [0.1, 0.1, 0.1], [[0, 0.1], [6, 0.01], [8, 0.0]])
    # updates 5 at 0.1, 6 and 7 at 0.01, from 8 on nothing
    np.testing.assert_allclose(clock([4, 5, 6, 7, 8, 20]), [0.4, 0.5, 0.51, 0.52, 0.52, 0.52])
    assert "planned LR schedule" in clock.assumption
    held = cumulative_lr_clock([0, 2, 4], [0.1, 0.1, 0.05])
    np.testing.assert_allclose(held([4, 10]), [0.3, 0.6])
    assert "held constant" in held.assumption and "0.05" in held.assumption


def test_total_steps_ends_the_plan():
    clock = cumulative_lr_clock([2], [1.0], [[0, 1.0], [10, 0.5]], total_steps=8)
    np.testing.assert_allclose(clock([8, 12]), [8.0, 12.0])  # the step-10 drop is past the end
    assert clock.total_steps == 8


def test_missing_lrs_are_filled_from_the_schedule_or_neighbours():
    filled = cumulative_lr_clock([1, 2, 3], [np.nan, 0.2, np.nan], [[0, 0.5]])
    np.testing.assert_allclose(filled([1, 2, 3]), [0.5, 0.7, 1.2])
    neighbours = cumulative_lr_clock([1, 2, 3], [np.nan, 0.2, np.nan])
    np.testing.assert_allclose(neighbours([1, 2, 3]), [0.2, 0.4, 0.6])
    assert "2 snapshots without an LR were filled" in neighbours.assumption


def test_clock_pickles_and_keeps_shape():
    clock = cumulative_lr_clock([0, 10], [0.1, 0.1], [[0, 0.1], [20, 0.01]])
    copy = pickle.loads(pickle.dumps(clock))
    grid = np.arange(30.0).reshape(3, 10)
    np.testing.assert_array_equal(copy(grid), clock(grid))
    assert clock(grid).shape == (3, 10) and copy.assumption == clock.assumption


@pytest.mark.parametrize(
    "steps, lrs, schedule, fragment",
    [
        ([3, 2], [0.1, 0.1], None, "strictly increasing"),
        ([1, 2], [0.1], None, "same length"),
        ([1, 2], [0.1, -0.1], None, "finite and >= 0"),
        ([1, 2], [np.nan, np.nan], None, "no learning rate is known"),
        ([], [], None, "neither"),
        ([1], [0.1], [[0, 0.1], [0, 0.2]], "strictly increase"),
        ([1], [0.1], [[0.5, 0.1]], "integers >= 0"),
        ([1], [0.1], "0.1", "list of \\[step, lr\\] pairs"),
        ([1], [0.1], [], "empty"),
    ],
)
def test_bad_inputs_raise_clear_errors(steps, lrs, schedule, fragment):
    with pytest.raises(ConfigError, match=fragment):
        cumulative_lr_clock(steps, lrs, schedule)


def test_check_lr_schedule_returns_json_ready_pairs():
    assert check_lr_schedule(np.array([[0, 0.1], [30, 0.01]])) == [[0, 0.1], [30, 0.01]]
    assert all(isinstance(s, int) for s, _ in check_lr_schedule([(0.0, 1), (5.0, 2)]))


def make_store(path, lrs, metadata):
    store = GammaTrajectoryStore.create(path, ChannelLayout((("bn", 2),)), metadata=metadata)
    for step, lr in zip((2, 4, 6), lrs):
        store.append(step, np.ones(2), lr)
    store.close()
    return GammaTrajectoryStore.open(path)


def test_clock_for_store_reads_lrs_and_metadata(tmp_path):
    with make_store(
        tmp_path / "a", [0.1, 0.1, 0.1], {"lr_schedule": [[0, 0.1], [7, 0.01]], "total_steps": 9}
    ) as store:
        clock = clock_for_store(store)
        np.testing.assert_allclose(clock([6, 9]), [0.6, 0.63])
    with make_store(tmp_path / "b", [None] * 3, {"lr": 0.5}) as store:
        clock = clock_for_store(store)
        np.testing.assert_allclose(clock([2, 10]), [1.0, 5.0])
        assert "lr=0.5 is assumed constant" in clock.assumption
    with make_store(tmp_path / "c", [None] * 3, {}) as store:
        with pytest.raises(StoreError, match="time_axis='step'"):
            clock_for_store(store)


def probe_optimizer(lr=0.1):
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=lr, momentum=0.9)


def test_planned_schedule_matches_a_real_run_and_leaves_the_scheduler_alone():
    optimizer = probe_optimizer()
    warmup = torch.optim.lr_scheduler.LinearLR(optimizer, 0.5, total_iters=3)
    decay = torch.optim.lr_scheduler.MultiStepLR(optimizer, [4], gamma=0.1)
    scheduler = torch.optim.lr_scheduler.SequentialLR(optimizer, [warmup, decay], [3])
    plan = planned_lr_schedule(scheduler, total_steps=24, steps_per_epoch=3)
    assert optimizer.param_groups[0]["lr"] == 0.05 and scheduler.last_epoch == 0
    observed = []
    for update in range(1, 25):  # the recorder's view: LR read after each update
        optimizer.step()
        observed.append(optimizer.param_groups[0]["lr"])
        if update % 3 == 0:
            scheduler.step()
    np.testing.assert_allclose(lr_at(plan, np.arange(1, 25)), observed, rtol=1e-12)


def test_planning_needs_a_metric_free_scheduler():
    optimizer = probe_optimizer()
    with pytest.raises(ConfigError, match="ReduceLROnPlateau"):
        planned_lr_schedule(torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer), 10)
    with pytest.raises(ConfigError, match="steps_per_epoch must be a positive integer"):
        planned_lr_schedule(torch.optim.lr_scheduler.StepLR(optimizer, 2), 10, 0)
