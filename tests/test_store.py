"""GammaTrajectoryStore: round trips, buffering, reads, and rejection of bad snapshots."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forecastprune.core.layout import ChannelLayout
from forecastprune.errors import ForecastPruneError, StoreError
from forecastprune.store import GammaTrajectoryStore
from forecastprune.store import format as fmt

LAYOUT = ChannelLayout((("features.1", 3), ("features.4", 2), ("head.bn", 4)))


def _rows(t: int, c: int = LAYOUT.total, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0.5, 0.3, size=(t, c)).astype(np.float32)


def _record(path, rows, steps=None, flush_every=4, lrs=None, **kwargs) -> None:
    steps = np.arange(len(rows)) * 3 + 1 if steps is None else steps
    with GammaTrajectoryStore.create(path, LAYOUT, flush_every=flush_every, **kwargs) as store:
        for i, (step, row) in enumerate(zip(steps, rows)):
            store.append(int(step), row, None if lrs is None else lrs[i])


@pytest.mark.slow
@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 5), min_size=1, max_size=4),
    t=st.integers(0, 23),
    flush_every=st.integers(1, 7),
    gaps=st.lists(st.integers(1, 1000), min_size=23, max_size=23),
)
def test_round_trip_property(tmp_path_factory, sizes, t, flush_every, gaps):
    layout = ChannelLayout(tuple((f"bn{i}", n) for i, n in enumerate(sizes)))
    rows = _rows(t, layout.total)
    steps = np.cumsum(gaps[:t]).astype(np.int64)
    path = tmp_path_factory.mktemp("rt") / "s"
    with GammaTrajectoryStore.create(path, layout, flush_every=flush_every) as store:
        for step, row in zip(steps, rows):
            store.append(int(step), row, lr=0.01)
    reopened = GammaTrajectoryStore.open(path)
    got_steps, got = reopened.history()
    assert got_steps.dtype == np.int64 and got.dtype == np.float32
    np.testing.assert_array_equal(got_steps, steps)
    np.testing.assert_array_equal(got, rows.reshape(t, layout.total))
    assert len(reopened) == t
    assert len(fmt.read_manifest(path).segments) == -(-t // flush_every)
    for name in layout.names:
        np.testing.assert_array_equal(reopened.layer(name)[1], rows[:, layout.slice(name)])


def test_signed_values_lrs_metadata_and_fingerprint_round_trip(tmp_path):
    rows = _rows(6) - 0.5  # signed: negative γ must survive unchanged
    lrs = [0.1, None, 0.1, 0.01, None, 0.001]
    _record(
        tmp_path / "s",
        rows,
        lrs=lrs,
        metadata={
            "model": "darknet",
            "sparsity": 5e-3,
            "lr_schedule": [[0, 0.1], [30, 0.01]],
            "seed": np.int64(3),
        },
        fingerprint="abc123",
    )
    store = GammaTrajectoryStore.open(tmp_path / "s")
    assert (store.history()[1] < 0).any()
    np.testing.assert_array_equal(store.history()[1], rows)
    expected = np.array([np.nan if v is None else v for v in lrs])
    np.testing.assert_array_equal(store.lrs, expected)
    assert store.metadata == {
        "model": "darknet",
        "sparsity": 5e-3,
        "lr_schedule": [[0, 0.1], [30, 0.01]],
        "seed": 3,
    }
    assert store.fingerprint == "abc123"
    assert store.layout == LAYOUT


def test_flush_interval_writes_one_segment_per_flush(tmp_path):
    store = GammaTrajectoryStore.create(tmp_path / "s", LAYOUT, flush_every=3)
    rows = _rows(8)
    for i in range(8):
        store.append(i, rows[i])
        committed = fmt.read_manifest(tmp_path / "s").rows
        assert committed == (i + 1) // 3 * 3  # committed exactly at each full buffer
        assert len(store) == i + 1  # the writer sees its own buffer
    np.testing.assert_array_equal(store.history()[1], rows)  # buffer included in reads
    assert GammaTrajectoryStore.open(tmp_path / "s").steps.tolist() == list(range(6))
    store.close()
    assert len(GammaTrajectoryStore.open(tmp_path / "s")) == 8


def test_context_manager_flushes_and_closes(tmp_path):
    with GammaTrajectoryStore.create(tmp_path / "s", LAYOUT, flush_every=100) as store:
        store.append(5, _rows(1)[0])
        assert fmt.read_manifest(tmp_path / "s").rows == 0
    assert store.closed
    assert len(GammaTrajectoryStore.open(tmp_path / "s")) == 1
    with pytest.raises(StoreError, match="closed"):
        store.append(6, _rows(1)[0])
    store.close()  # idempotent


def test_history_until_step_and_layer_subset(tmp_path):
    rows = _rows(10)
    steps = np.arange(10) * 10
    _record(tmp_path / "s", rows, steps=steps, flush_every=3)
    store = GammaTrajectoryStore.open(tmp_path / "s")
    got_steps, got = store.history(until_step=45)
    np.testing.assert_array_equal(got_steps, steps[:5])
    np.testing.assert_array_equal(got, rows[:5])
    assert store.history(until_step=-1)[1].shape == (0, LAYOUT.total)
    assert store.history(until_step=-0.5)[0].tolist() == []  # no truncation towards zero
    assert store.history(until_step=np.int32(10))[0].tolist() == [0, 10]
    with pytest.raises(StoreError, match="until_step must be a number"):
        store.history(until_step="45")
    # non-contiguous, reordered layers come back in the order asked
    _, sub = store.history(until_step=30, layers=["head.bn", "features.1"])
    expected = np.concatenate([rows[:4, 5:9], rows[:4, 0:3]], axis=1)
    np.testing.assert_array_equal(sub, expected)
    step, last = store.final()
    assert step == 90
    np.testing.assert_array_equal(last, rows[-1])
    with pytest.raises(StoreError, match="no BN layer named 'nope'"):
        store.history(layers=["nope"])


def test_history_touches_only_segments_up_to_the_cutoff(tmp_path):
    rows = _rows(12)
    _record(tmp_path / "s", rows, steps=np.arange(12), flush_every=4)
    # destroy the values of the last segment: an early cutoff must never read it
    fmt.Segment(2, 4, 8, 11).file(tmp_path / "s", "values").write_bytes(b"garbage")
    store = GammaTrajectoryStore.open(tmp_path / "s")
    np.testing.assert_array_equal(store.history(until_step=7)[1], rows[:8])
    with pytest.raises(StoreError, match="seg-000002-values.npy"):
        store.history()


def test_float16_store_is_compact_and_reads_float32(tmp_path):
    rows = _rows(8)
    _record(tmp_path / "h", rows, dtype="float16")
    _record(tmp_path / "f", rows)
    half = GammaTrajectoryStore.open(tmp_path / "h")
    got = half.history()[1]
    assert got.dtype == np.float32 and half.dtype == "float16"
    np.testing.assert_allclose(got, rows, rtol=1e-3)
    assert not np.array_equal(got, rows)  # really rounded, not stored at full precision
    values_bytes = sum(p.stat().st_size for p in (tmp_path / "h").glob("*values.npy"))
    assert values_bytes < sum(p.stat().st_size for p in (tmp_path / "f").glob("*values.npy"))
    with GammaTrajectoryStore.open(tmp_path / "h", mode="a") as store:
        with pytest.raises(StoreError, match="out-of-range"):
            store.append(1000, np.full(LAYOUT.total, 1e6))


def test_append_mode_resumes_and_still_requires_increasing_steps(tmp_path):
    rows = _rows(9)
    _record(tmp_path / "s", rows[:5], steps=np.arange(5))
    with GammaTrajectoryStore.open(tmp_path / "s", mode="a") as store:
        with pytest.raises(StoreError, match="steps must increase: got step 4 after step 4"):
            store.append(4, rows[5])
        for step in range(5, 9):
            store.append(step, rows[step])
    store = GammaTrajectoryStore.open(tmp_path / "s")
    np.testing.assert_array_equal(store.history()[1], rows)
    np.testing.assert_array_equal(store.steps, np.arange(9))


@pytest.mark.parametrize(
    ("step", "values", "lr", "match"),
    [
        (3, np.ones(LAYOUT.total), None, "steps must increase: got step 3 after step 3"),
        (2, np.ones(LAYOUT.total), None, "steps must increase"),
        (4, np.ones(LAYOUT.total - 1), None, "8 channels on its last axis but the layout has 9"),
        (4, np.ones((1, LAYOUT.total)), None, r"one \(C,\) vector, got shape \(1, 9\)"),
        (4, np.r_[np.ones(4), np.nan, np.ones(4)], None, "layer 'features.4' channel 1"),
        (4, np.r_[np.ones(8), np.inf], None, "1 non-finite"),
        (4, ["a"] * LAYOUT.total, None, "not numeric"),
        (4.0, np.ones(LAYOUT.total), None, "step must be an integer"),
        (True, np.ones(LAYOUT.total), None, "step must be an integer"),
        (4, np.ones(LAYOUT.total), float("nan"), "lr at step 4 must be finite"),
        (4, np.ones(LAYOUT.total), "fast", "lr at step 4 must be a number"),
    ],
)
def test_bad_snapshots_are_rejected_and_store_stays_usable(tmp_path, step, values, lr, match):
    store = GammaTrajectoryStore.create(tmp_path / "s", LAYOUT, flush_every=2)
    store.append(3, np.zeros(LAYOUT.total))
    with pytest.raises(StoreError, match=match):
        store.append(step, values, lr=lr)
    store.append(10, np.ones(LAYOUT.total))  # still usable after the rejection
    store.close()
    reopened = GammaTrajectoryStore.open(tmp_path / "s")
    assert reopened.steps.tolist() == [3, 10]
    assert np.isfinite(reopened.history()[1]).all()


def test_read_only_store_refuses_writes(tmp_path):
    _record(tmp_path / "s", _rows(2))
    store = GammaTrajectoryStore.open(tmp_path / "s")
    for call in (
        lambda: store.append(100, np.ones(LAYOUT.total)),
        lambda: store.update_metadata(accuracy=0.9),
    ):
        with pytest.raises(StoreError, match="read-only; open it with mode='a'"):
            call()


def test_update_metadata_is_committed_immediately(tmp_path):
    with GammaTrajectoryStore.create(tmp_path / "s", LAYOUT, metadata={"model": "vgg"}) as store:
        store.update_metadata(accuracy=np.float32(0.5), total_steps=100)
        assert GammaTrajectoryStore.open(tmp_path / "s").metadata == {
            "model": "vgg",
            "accuracy": 0.5,
            "total_steps": 100,
        }
        with pytest.raises(StoreError, match="JSON-serializable"):
            store.update_metadata(model=object())
        store.metadata["model"] = "mutated"  # a copy: cannot bypass validation
        assert store.metadata["model"] == "vgg"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dtype": "float64"}, "dtype must be one of"),
        ({"flush_every": 0}, "flush_every must be a positive integer"),
        ({"fingerprint": 12}, "fingerprint must be a string"),
        ({"metadata": {"x": {1, 2}}}, "JSON-serializable"),
        ({"layout": [("a", 1)]}, "layout must be a ChannelLayout"),
    ],
)
def test_create_rejects_bad_arguments(tmp_path, kwargs, match):
    args = {"layout": LAYOUT, **kwargs}
    with pytest.raises(StoreError, match=match):
        GammaTrajectoryStore.create(tmp_path / "s", **args)
    assert not (tmp_path / "s").exists()


def test_create_never_overwrites_without_permission(tmp_path):
    _record(tmp_path / "s", _rows(3))
    with pytest.raises(StoreError, match="not empty; pass overwrite=True"):
        GammaTrajectoryStore.create(tmp_path / "s", LAYOUT)
    assert len(GammaTrajectoryStore.open(tmp_path / "s")) == 3
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("keep me")
    with pytest.raises(StoreError, match="refusing to overwrite .* not a γ trajectory store"):
        GammaTrajectoryStore.create(tmp_path / "other", LAYOUT, overwrite=True)
    assert (tmp_path / "other" / "notes.txt").read_text() == "keep me"
    with GammaTrajectoryStore.create(tmp_path / "s", LAYOUT, overwrite=True) as fresh:
        assert len(fresh) == 0


def test_one_writer_at_a_time(tmp_path):
    writer = GammaTrajectoryStore.create(tmp_path / "s", LAYOUT)
    with pytest.raises(StoreError, match="already open for writing"):
        GammaTrajectoryStore.open(tmp_path / "s", mode="a")
    with pytest.raises(StoreError, match="already open for writing"):
        GammaTrajectoryStore.create(tmp_path / "s", LAYOUT, overwrite=True)
    assert len(GammaTrajectoryStore.open(tmp_path / "s")) == 0  # readers are welcome
    writer.close()
    GammaTrajectoryStore.open(tmp_path / "s", mode="a").close()


def test_open_rejects_bad_mode_and_missing_path(tmp_path):
    with pytest.raises(StoreError, match="mode must be 'r' or 'a'"):
        GammaTrajectoryStore.open(tmp_path, mode="w")
    with pytest.raises(StoreError, match=f"no γ trajectory store at {tmp_path / 'absent'}"):
        GammaTrajectoryStore.open(tmp_path / "absent")
    with pytest.raises(StoreError, match="has no manifest.json"):
        GammaTrajectoryStore.open(tmp_path)


def test_info_summarizes_the_store(tmp_path):
    rows = _rows(5)
    _record(
        tmp_path / "s",
        rows,
        steps=[2, 4, 6, 8, 10],
        lrs=[0.1] * 3 + [None] * 2,
        metadata={"model": "vgg"},
    )
    info = GammaTrajectoryStore.open(tmp_path / "s").info()
    assert (info["snapshots"], info["first_step"], info["last_step"]) == (5, 2, 10)
    assert (info["layers"], info["channels"], info["lr_recorded"]) == (3, 9, 3)
    assert info["metadata"] == {"model": "vgg"} and info["format_version"] == fmt.FORMAT_VERSION
    assert info["size_bytes"] > rows.nbytes
    p50 = info["final_abs_gamma_percentiles"]["p50"]
    assert p50 == pytest.approx(np.median(np.abs(rows[-1])))
    json.dumps(info)  # JSON-ready
    with GammaTrajectoryStore.create(tmp_path / "e", LAYOUT) as empty:
        assert empty.info()["final_abs_gamma_percentiles"] is None
        with pytest.raises(StoreError, match="is empty"):
            empty.final()


def test_store_errors_are_forecastprune_errors():
    assert issubclass(StoreError, ForecastPruneError)


def test_failed_flush_keeps_the_buffer_for_a_retry(tmp_path):
    store = GammaTrajectoryStore.create(tmp_path / "s", LAYOUT, flush_every=10)
    rows = _rows(2)
    store.append(0, rows[0])
    store.append(1, rows[1])
    shutil.rmtree(tmp_path / "s")  # the disk goes away under a running writer
    with pytest.raises(StoreError, match="the 2 buffered snapshots are kept"):
        store.flush()
    assert len(store) == 2
    (tmp_path / "s").mkdir()
    store.close()
    np.testing.assert_array_equal(GammaTrajectoryStore.open(tmp_path / "s").history()[1], rows)


def test_create_below_a_file_is_a_store_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="cannot create a store at"):
        GammaTrajectoryStore.create(tmp_path / "file" / "s", LAYOUT)
