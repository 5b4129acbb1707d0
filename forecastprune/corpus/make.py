"""Making one corpus run and installing it atomically in a corpus folder.

A run is recorded in a work folder inside the corpus folder (``.staging/NAME-PID``) and its
store appears as ``NAME.fpstore`` by one rename, only once it is complete: a run stopped half
way leaves no store behind (its work folder is removed on the next build). Every run trains on
one CPU thread, so runs made side by side do not slow each other down and times compare.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

from .table import CorpusRun

STAGING = ".staging"


def make_run(run: CorpusRun, out: Path) -> dict[str, Any]:
    """Record ``run`` and install its store as ``out/NAME.fpstore``.

    Returns:
        The run's ``corpus.json`` entry: family, settings, accuracy (mAP50 for detectors),
        snapshots, channels, bytes and seconds.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    start = time.perf_counter()
    work = out / STAGING / f"{run.name}-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        if run.kind == "ultralytics":
            store, accuracy, extra = _record_detector(run, work)
        else:
            store, accuracy, extra = _record_classifier(run, work)
        shape = _install(store, out / f"{run.name}.fpstore")
    finally:
        shutil.rmtree(work, ignore_errors=True)
        torch.set_num_threads(threads)
    dest = out / f"{run.name}.fpstore"
    return {
        "family": run.family,
        "group": run.group,
        "settings": _jsonable(run.settings),
        "accuracy": accuracy,
        "metric": "mAP50" if run.kind == "ultralytics" else "test accuracy",
        **extra,
        "snapshots": shape[0],
        "channels": shape[1],
        "bytes": sum(f.stat().st_size for f in dest.rglob("*") if f.is_file()),
        "seconds": round(time.perf_counter() - start, 2),
    }


def _record_classifier(run: CorpusRun, work: Path) -> tuple[Path, float, dict[str, Any]]:
    from ..pipeline.recording import RecordSettings, record_run

    result = record_run(RecordSettings(out=work / "run", **run.settings))
    return result.store_path, result.accuracy, {}


def _record_detector(run: CorpusRun, work: Path) -> tuple[Path, float, dict[str, Any]]:
    """Train and record in float32 (what ``attach`` writes), keep a float16 copy."""
    from ..store.thin import thin_store
    from .detection import record_detector

    recorded, accuracy, extra = record_detector(run.settings, work)
    copy = work / "float16.fpstore"
    thin_store(recorded, copy, every=1, dtype="float16").close()
    return copy, accuracy, extra


def _install(store: Path, dest: Path) -> tuple[int, int]:
    """Move a finished store to ``dest`` by one rename; its (snapshots, channels)."""
    from ..store import GammaTrajectoryStore
    from ..store.format import LOCK_NAME

    with GammaTrajectoryStore.open(store) as opened:
        shape = (len(opened), opened.layout.total)
    (store / LOCK_NAME).unlink(missing_ok=True)  # the writer lock is not data
    shutil.rmtree(dest, ignore_errors=True)  # a store left by a run the manifest never got
    os.replace(store, dest)
    return shape


def _jsonable(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}
