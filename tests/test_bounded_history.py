"""Long runs without loading them: lazy store views, bounded reads, batched appends, thinning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from forecastprune.cli import cli
from forecastprune.compare.replay import ReplaySettings, replay
from forecastprune.core.layout import ChannelLayout
from forecastprune.errors import StoreError
from forecastprune.forecasters import get_forecaster
from forecastprune.predict import predict_history, rows_to_read
from forecastprune.store import GammaTrajectoryStore
from forecastprune.store.thin import thin_rows, thin_store

LAYOUT = ChannelLayout((("a", 3), ("b", 4)))


def _store(path: Path, n: int = 40, flush_every: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = (1.0 + np.cumsum(rng.normal(0, 0.05, (n, LAYOUT.total)), axis=0)).astype(np.float32)
    with GammaTrajectoryStore.create(
        path, LAYOUT, flush_every=flush_every, metadata={"total_steps": 10 * (n - 1)}
    ) as store:
        for i, row in enumerate(values):
            store.append(10 * i, row, lr=0.1 if i < n // 2 else 0.01)
    return values


def test_a_view_reads_the_rows_history_would_return(tmp_path: Path) -> None:
    values = _store(tmp_path / "s", n=23, flush_every=4)
    with GammaTrajectoryStore.open(tmp_path / "s") as store:
        view = store.view()
        np.testing.assert_array_equal(np.asarray(view), store.history()[1])
        np.testing.assert_array_equal(view[[22, 0, 5, 5]], values[[22, 0, 5, 5]])
        np.testing.assert_array_equal(view[3:10][[0, -1]], values[[3, 9]])
        np.testing.assert_array_equal(store.view(until_step=50)[-1], values[5])
        with pytest.raises(IndexError):
            view[[23]]


def test_a_writer_view_includes_its_unflushed_rows(tmp_path: Path) -> None:
    with GammaTrajectoryStore.create(tmp_path / "w", LAYOUT, flush_every=100) as store:
        for i in range(5):
            store.append(i, np.full(LAYOUT.total, float(i)))
        assert store.view()[[1, 4]][:, 0].tolist() == [1.0, 4.0]


def test_naive_reads_one_row_and_sma_its_window() -> None:
    steps = np.arange(1000)
    assert rows_to_read(get_forecaster("naive"), steps).tolist() == [999]
    assert rows_to_read(get_forecaster("sma(window=7)"), steps).tolist() == list(range(993, 1000))


def test_arima_reads_a_bounded_even_grid_that_keeps_the_last_snapshot() -> None:
    arima = get_forecaster("arima")
    short = np.arange(0, 5000, 10)
    assert rows_to_read(arima, short).tolist() == list(range(len(short)))  # short: every row
    long_steps = np.arange(0, 100_000, 5)
    rows = rows_to_read(arima, long_steps)
    assert len(rows) <= 1024 and rows[0] == 0 and rows[-1] == len(long_steps) - 1
    assert np.ptp(np.diff(long_steps[rows])) <= 10  # evenly spaced in steps


def test_the_grid_follows_the_clock_for_cumulative_lr_forecasters() -> None:
    steps = np.arange(0, 20_000, 2)
    clock = lambda s: np.where(s < 10_000, s * 0.1, 1_000 + (s - 10_000) * 0.001)  # noqa: E731
    rows = rows_to_read(get_forecaster("arima(time_axis=lr)"), steps, clock)
    early = np.count_nonzero(steps[rows] < 10_000)
    assert early > 0.9 * len(rows)  # most cumulative LR is spent before the drop


def test_a_prediction_from_a_view_equals_one_from_the_array(tmp_path: Path) -> None:
    values = _store(tmp_path / "s")
    with GammaTrajectoryStore.open(tmp_path / "s") as store:
        for spec in ("naive", "sma", "ema", "linear", "arima"):
            lazy = predict_history(spec, store.steps, store.view(), 390)
            eager = predict_history(spec, store.steps, values, 390)
            np.testing.assert_allclose(lazy.scores, eager.scores, rtol=1e-12)


def test_replay_reads_the_store_lazily_with_the_same_results(tmp_path: Path) -> None:
    _store(tmp_path / "s", n=60)
    settings = ReplaySettings(cutoffs=(0.2, 0.5), isolation="thread")
    with GammaTrajectoryStore.open(tmp_path / "s") as store:
        result = replay(store, ["sma", "ema"], settings)
    assert all(row.ok for row in result.rows)
    assert {row.forecaster for row in result.rows} == {"naive", "sma", "ema"}


def test_append_many_equals_appending_row_by_row(tmp_path: Path) -> None:
    values = np.random.default_rng(1).normal(size=(30, LAYOUT.total)).astype(np.float32)
    lrs = np.where(np.arange(30) < 10, np.nan, 0.05)
    with GammaTrajectoryStore.create(tmp_path / "one", LAYOUT, flush_every=7) as one:
        for i in range(30):
            one.append(3 * i, values[i], None if np.isnan(lrs[i]) else lrs[i])
    with GammaTrajectoryStore.create(tmp_path / "many", LAYOUT, flush_every=7) as many:
        many.append(0, values[0])
        many.append_many(3 * np.arange(1, 30), values[1:], lrs=lrs[1:])
    with (
        GammaTrajectoryStore.open(tmp_path / "one") as a,
        GammaTrajectoryStore.open(tmp_path / "many") as b,
    ):
        np.testing.assert_array_equal(a.history()[1], b.history()[1])
        np.testing.assert_array_equal(a.steps, b.steps)
        np.testing.assert_array_equal(a.lrs, b.lrs)


@pytest.mark.parametrize(
    "steps, values, match",
    [
        (np.array([5, 4]), np.ones((2, 7)), "steps must increase"),
        (np.array([1, 2]), np.ones((2, 6)), "the layout has 7"),
        (np.array([1, 2]), np.ones(7), "values must be a numeric"),
        (np.array([1, 2]), np.array([[1.0] * 7, [np.nan] * 7]), "non-finite"),
    ],
)
def test_a_bad_batch_is_refused_whole(tmp_path: Path, steps, values, match) -> None:
    with GammaTrajectoryStore.create(tmp_path / "s", LAYOUT) as store:
        store.append(0, np.ones(LAYOUT.total))
        with pytest.raises(StoreError, match=match):
            store.append_many(steps, values)
        assert len(store) == 1


def test_thin_keeps_first_last_and_every_kth(tmp_path: Path) -> None:
    assert thin_rows(10, every=4).tolist() == [0, 4, 8, 9]
    assert thin_rows(10, count=4).tolist() == [0, 3, 6, 9]
    with pytest.raises(StoreError, match="exactly one of"):
        thin_rows(10)
    values = _store(tmp_path / "s", n=40)
    with thin_store(tmp_path / "s", tmp_path / "t", count=5, dtype="float16") as thin:
        assert thin.dtype == "float16" and len(thin) == 5
        np.testing.assert_allclose(thin.history()[1], values[[0, 10, 20, 29, 39]], rtol=1e-3)
        assert thin.metadata["thinned_from"] == {"snapshots": 40, "kept": 5}
        assert thin.lrs[-1] == pytest.approx(0.01)


def test_store_thin_command_and_its_errors(tmp_path: Path) -> None:
    _store(tmp_path / "s")
    ok = CliRunner().invoke(
        cli, ["store", "thin", str(tmp_path / "s"), str(tmp_path / "t"), "--every", "3"]
    )
    assert ok.exit_code == 0, ok.output
    same = CliRunner().invoke(
        cli, ["store", "thin", str(tmp_path / "s"), str(tmp_path / "s"), "--every", "3"]
    )
    assert same.exit_code == 2 and "the source itself" in same.output
    taken = CliRunner().invoke(
        cli, ["store", "thin", str(tmp_path / "s"), str(tmp_path / "t"), "--count", "3"]
    )
    assert taken.exit_code == 2 and "Traceback" not in taken.output


def test_the_nan_check_reads_only_the_rows_the_forecasts_read(tmp_path: Path) -> None:
    _store(tmp_path / "s", n=40, flush_every=8)
    first = sorted((tmp_path / "s").glob("seg-*-values.npy"))[0]
    values = np.load(first, mmap_mode="r+")
    values[2, 3] = np.nan  # step 20: far before any window of naive/sma at these cutoffs
    values.flush()
    del values
    with GammaTrajectoryStore.open(tmp_path / "s") as store:
        # Early-Bird's masks every 300 steps read rows 0 and 30 only
        sparse_eb = ReplaySettings(cutoffs=(0.5,), isolation="thread", eb_spacing=300)
        result = replay(store, ["sma"], sparse_eb)
        assert all(row.ok for row in result.rows)
        assert predict_store_scores(store, "naive", 0.5).min() >= 0
        with pytest.raises(StoreError, match="first at step 20, layer 'b' channel 0"):
            replay(store, ["arima"], sparse_eb)  # reads the whole (short) history


def predict_store_scores(store: GammaTrajectoryStore, spec: str, cutoff: float) -> np.ndarray:
    from forecastprune.predict import predict_store

    return predict_store(store, spec, cutoff).scores
