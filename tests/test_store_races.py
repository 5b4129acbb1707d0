"""Imports that race other writers for the same store path, and leftovers of killed imports.

Each race is forced, not hoped for: the racing action runs from a patched step of the import
(just before its final rename) or of ``create`` (just after it made the empty directory).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

from forecastprune.cli import cli
from forecastprune.core.layout import ChannelLayout
from forecastprune.errors import StoreError
from forecastprune.store import GammaTrajectoryStore, import_npz, staging
from forecastprune.store import store as store_module
from forecastprune.store.lock import try_lock_dir
from forecastprune.store.verify import verify_store

LAYOUT = ChannelLayout((("a.bn", 3), ("b.bn", 2)))


def _npz(path, t: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    np.savez(
        path,
        steps=np.arange(t),
        gammas=rng.normal(0.5, 0.2, (t, 5)).astype(np.float32),
        layer_names=np.array(LAYOUT.names),
        layer_sizes=np.array(LAYOUT.sizes),
    )
    return path


def _before_publish(monkeypatch, action):
    """Run ``action`` once, right before the import renames its finished store into place."""
    original = staging._publish
    calls = []

    def racing(staged, out, overwrite):
        if not calls:
            calls.append(1)
            action()
        return original(staged, out, overwrite)

    monkeypatch.setattr(staging, "_publish", racing)


def _snapshots(path) -> int:
    with GammaTrajectoryStore.open(path) as store:
        return len(store)


def test_two_imports_without_overwrite_the_later_one_refuses(tmp_path, monkeypatch):
    out = tmp_path / "race" / "g.fpstore"
    big, small = _npz(tmp_path / "big.npz", 40), _npz(tmp_path / "small.npz", 4, seed=1)
    _before_publish(monkeypatch, lambda: import_npz(small, out).close())
    with pytest.raises(StoreError, match="created by another process.*nothing was replaced"):
        import_npz(big, out)
    assert _snapshots(out) == 4  # the store that won the race is intact
    assert verify_store(out).ok
    assert sorted(p.name for p in out.parent.iterdir()) == ["g.fpstore"]  # no staging left


def test_import_refuses_a_store_a_recording_created_meanwhile(tmp_path, monkeypatch):
    out = tmp_path / "g.fpstore"
    live = []

    def start_recording():
        live.append(GammaTrajectoryStore.create(out, LAYOUT, flush_every=2))
        live[0].append(0, np.ones(5))

    _before_publish(monkeypatch, start_recording)
    with pytest.raises(StoreError, match="created by another process"):
        import_npz(_npz(tmp_path / "big.npz", 40), out)
    with live[0] as recording:  # the recording goes on undisturbed
        for step in range(1, 5):
            recording.append(step, np.full(5, step, dtype=np.float32))
    assert _snapshots(out) == 5 and verify_store(out).ok


def test_overwrite_refuses_a_store_a_recording_resumed_meanwhile(tmp_path, monkeypatch):
    out = tmp_path / "g.fpstore"
    import_npz(_npz(tmp_path / "first.npz", 3), out).close()
    live = []
    _before_publish(monkeypatch, lambda: live.append(GammaTrajectoryStore.open(out, "a")))
    with pytest.raises(StoreError, match="already open for writing"):
        import_npz(_npz(tmp_path / "big.npz", 40), out, overwrite=True)
    with live[0] as recording:
        recording.append(10, np.zeros(5))
    assert _snapshots(out) == 4 and verify_store(out).ok


def test_overwrite_replaces_an_idle_store(tmp_path):
    out = tmp_path / "g.fpstore"
    import_npz(_npz(tmp_path / "first.npz", 3), out).close()
    import_npz(_npz(tmp_path / "second.npz", 7), out, overwrite=True).close()
    assert _snapshots(out) == 7
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_create_refuses_a_directory_an_import_filled_meanwhile(tmp_path, monkeypatch):
    out = tmp_path / "g.fpstore"
    small = _npz(tmp_path / "small.npz", 4)
    original = store_module.prepare_directory

    def racing(root, overwrite):
        original(root, overwrite)  # the empty directory exists; the import lands on it now
        if root == out:  # not the import's own staging store
            import_npz(small, root).close()

    monkeypatch.setattr(store_module, "prepare_directory", racing)
    with pytest.raises(StoreError, match="filled by another process"):
        GammaTrajectoryStore.create(out, LAYOUT)
    assert _snapshots(out) == 4 and verify_store(out).ok


def test_cli_import_race_is_one_error_line(tmp_path, monkeypatch):
    out = tmp_path / "g.fpstore"
    small = _npz(tmp_path / "small.npz", 4)
    _before_publish(monkeypatch, lambda: import_npz(small, out).close())
    result = CliRunner().invoke(
        cli, ["store", "import", str(_npz(tmp_path / "b.npz", 30)), str(out)]
    )
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and "--overwrite" in lines[0]
    assert _snapshots(out) == 4


def test_a_killed_import_leaves_staging_the_next_import_removes(tmp_path):
    out = tmp_path / "g.fpstore"
    script = textwrap.dedent(f"""
        import os, signal
        from forecastprune.store.staging import staged_store_dir
        with staged_store_dir({str(out)!r}, overwrite=False) as staged:
            (staged / "part.npy").write_bytes(b"x" * 1000)
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", script], check=False, env=env, timeout=60)
    assert done.returncode == -9
    leftovers = list(tmp_path.glob(".g.fpstore.*.tmp"))
    assert len(leftovers) == 1
    live = tmp_path / ".g.fpstore.live.tmp"  # another import's staging, still being built
    live.mkdir()
    held = try_lock_dir(live)
    try:
        import_npz(_npz(tmp_path / "s.npz", 2), out).close()
        assert not leftovers[0].exists() and live.is_dir()
    finally:
        held.release()
    assert staging.remove_stale_staging(out) == [live]


def test_sigterm_during_an_import_removes_its_staging(tmp_path):
    out = tmp_path / "g.fpstore"
    script = textwrap.dedent(f"""
        import os, signal
        from forecastprune.store.staging import staged_store_dir
        with staged_store_dir({str(out)!r}, overwrite=False) as staged:
            (staged / "part.npy").write_bytes(b"x" * 1000)
            os.kill(os.getpid(), signal.SIGTERM)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    done = subprocess.run([sys.executable, "-c", script], check=False, env=env, timeout=60)
    assert done.returncode == 143
    assert sorted(p.name for p in tmp_path.iterdir()) == []
