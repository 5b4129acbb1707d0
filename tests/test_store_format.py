"""The on-disk format: damaged stores fail loudly, and a SIGKILLed writer loses at most a flush."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from forecastprune.core.layout import ChannelLayout
from forecastprune.errors import StoreError
from forecastprune.store import GammaTrajectoryStore
from forecastprune.store import format as fmt

LAYOUT = ChannelLayout((("a", 4), ("b", 3)))


@pytest.fixture()
def store_path(tmp_path):
    path = tmp_path / "s"
    with GammaTrajectoryStore.create(path, LAYOUT, flush_every=3, metadata={"m": 1}) as store:
        for step in range(7):
            store.append(step, np.full(LAYOUT.total, step, dtype=np.float32))
    return path


def _edit_manifest(path, edit):
    data = json.loads((path / fmt.MANIFEST_NAME).read_text())
    edit(data)
    (path / fmt.MANIFEST_NAME).write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d.pop("layout"), r"missing keys \['layout'\]"),
        (lambda d: d.pop("segments"), r"missing keys \['segments'\]"),
        (lambda d: d.update(format="something-else"), "format is 'something-else'"),
        (lambda d: d.update(version="1"), "bad format version '1'"),
        (lambda d: d.update(dtype="int8"), "dtype 'int8' is not one of"),
        (lambda d: d.update(flush_every=0), "expected a positive integer, got 0"),
        (lambda d: d.update(layout=[{"name": "a"}]), "layout must be a list"),
        (lambda d: d["segments"][0].pop("rows"), "rows"),
        (lambda d: d["segments"].reverse(), "out of order"),
    ],
)
def test_corrupted_manifest_names_path_and_problem(store_path, edit, match):
    _edit_manifest(store_path, edit)
    with pytest.raises(StoreError, match=match) as info:
        GammaTrajectoryStore.open(store_path)
    assert str(store_path) in str(info.value)


def test_manifest_that_is_not_json(store_path):
    (store_path / fmt.MANIFEST_NAME).write_text('{"format": "forecastprune.gamma-st')
    with pytest.raises(StoreError, match=f"corrupted store manifest {store_path}"):
        GammaTrajectoryStore.open(store_path)
    (store_path / fmt.MANIFEST_NAME).write_text("[1, 2]")
    with pytest.raises(StoreError, match="expected a JSON object"):
        GammaTrajectoryStore.open(store_path)


def test_newer_format_version_is_refused(store_path):
    _edit_manifest(store_path, lambda d: d.update(version=fmt.FORMAT_VERSION + 1))
    with pytest.raises(StoreError) as info:
        GammaTrajectoryStore.open(store_path)
    message = str(info.value)
    assert str(store_path) in message
    assert f"format version {fmt.FORMAT_VERSION + 1}" in message
    assert f"versions up to {fmt.FORMAT_VERSION}" in message


@pytest.mark.parametrize("array", ["steps", "values"])
def test_truncated_segment_names_the_file(store_path, array):
    seg_file = store_path / fmt.segment_file_name(1, array)
    seg_file.write_bytes(seg_file.read_bytes()[:-5])
    with pytest.raises(StoreError, match="unreadable or truncated") as info:
        GammaTrajectoryStore.open(store_path).history()
    assert str(seg_file) in str(info.value)


def test_missing_segment_names_the_file(store_path):
    (store_path / fmt.segment_file_name(0, "lrs")).unlink()
    with pytest.raises(StoreError, match="seg-000000-lrs.npy is missing"):
        GammaTrajectoryStore.open(store_path)


def test_segment_shape_disagreeing_with_manifest(store_path):
    np.save(store_path / fmt.segment_file_name(1, "values"), np.zeros((3, 5), np.float32))
    with pytest.raises(StoreError, match=r"shape \(3, 5\).*expects \(3, 7\) float32"):
        GammaTrajectoryStore.open(store_path).history()
    _edit_manifest(store_path, lambda d: d["segments"][-1].update(first_step=9, last_step=9))
    with pytest.raises(StoreError, match="disagrees with the manifest"):
        GammaTrajectoryStore.open(store_path)


def test_orphans_are_ignored_by_readers_and_removed_by_writers(store_path):
    manifest = fmt.read_manifest(store_path)
    # what a writer killed between writing a segment and committing the manifest leaves behind
    fmt.write_segment(
        store_path,
        manifest.next_index,
        np.array([50, 51]),
        np.zeros(2),
        np.ones((2, LAYOUT.total), np.float32),
    )
    (store_path / f".{fmt.MANIFEST_NAME}.x1y2.tmp").write_text("{half")
    assert GammaTrajectoryStore.open(store_path).steps.tolist() == list(range(7))
    orphans = fmt.orphan_files(store_path, manifest)
    assert len(orphans) == 4
    with GammaTrajectoryStore.open(store_path, mode="a") as store:
        assert not any(p.exists() for p in orphans)
        store.append(7, np.full(LAYOUT.total, 7.0))
    reopened = GammaTrajectoryStore.open(store_path)
    assert reopened.steps.tolist() == list(range(8))
    np.testing.assert_array_equal(reopened.history()[1][:, 0], np.arange(8))


_WRITER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from forecastprune.core.layout import ChannelLayout
    from forecastprune.store import GammaTrajectoryStore

    path, flush_every, stop_at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    layout = ChannelLayout((("a", 64), ("b", 32)))
    store = GammaTrajectoryStore.create(path, layout, flush_every=flush_every)
    step = 0
    while True:
        store.append(step, np.full(layout.total, step, dtype=np.float32), lr=0.1)
        step += 1
        if step == stop_at:
            print("ready", flush=True)
            time.sleep(60)  # wait to be killed with a partly filled buffer
    """
)


def _start_writer(tmp_path, flush_every, stop_at):
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    return subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "s"), str(flush_every), str(stop_at)],
        stdout=subprocess.PIPE,
        text=True,
    )


def _check_clean_prefix(path, flush_every):
    store = GammaTrajectoryStore.open(path)
    steps, values = store.history()
    n = len(store)
    assert n % flush_every == 0  # only whole flushes survive
    np.testing.assert_array_equal(steps, np.arange(n))
    np.testing.assert_array_equal(
        values, np.repeat(np.arange(n, dtype=np.float32)[:, None], 96, axis=1)
    )
    return n


def test_sigkill_loses_at_most_the_unflushed_snapshots(tmp_path):
    proc = _start_writer(tmp_path, flush_every=5, stop_at=17)
    try:
        assert proc.stdout.readline().strip() == "ready"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert _check_clean_prefix(tmp_path / "s", 5) == 15  # 17 appended, 2 buffered were lost
    with GammaTrajectoryStore.open(tmp_path / "s", mode="a") as store:  # the lock died with it
        store.append(15, np.zeros(96))
    assert len(GammaTrajectoryStore.open(tmp_path / "s")) == 16


def test_sigkill_at_an_arbitrary_moment_leaves_a_readable_store(tmp_path):
    proc = _start_writer(tmp_path, flush_every=2, stop_at=10**9)  # flushes continuously
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            manifest = tmp_path / "s" / fmt.MANIFEST_NAME
            if manifest.exists() and fmt.read_manifest(tmp_path / "s").rows >= 40:
                break
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert _check_clean_prefix(tmp_path / "s", 2) >= 40
    with GammaTrajectoryStore.open(tmp_path / "s", mode="a") as store:
        manifest = fmt.read_manifest(tmp_path / "s")
        assert fmt.orphan_files(tmp_path / "s", manifest) == []
        store.append(int(store.steps[-1]) + 1, np.zeros(96))


def test_atomic_write_gives_umask_permissions_not_private(tmp_path):
    # mkstemp creates 0600 files; stores and reports must stay readable by others.
    import stat

    target = tmp_path / "shared.json"
    fmt.atomic_write_bytes(target, b"{}")
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~mask
    assert target.read_bytes() == b"{}"
