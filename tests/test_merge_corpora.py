"""scripts/merge_corpora.py: one corpus view over several folders, and a cache of fit-free cells."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from forecastprune.store import GammaTrajectoryStore

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "forecastprune" / "data" / "corpus"


def _script():
    spec = importlib.util.spec_from_file_location(
        "merge_corpora", ROOT / "scripts/merge_corpora.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _split(tmp_path: Path) -> list[Path]:
    """The bundled corpus's six real runs as two corpus folders of three."""
    manifest = json.loads((BUNDLED / "corpus.json").read_text())
    names = sorted(manifest["runs"])
    folders = []
    for i, part in enumerate((names[:3], names[3:])):
        folder = tmp_path / f"c{i}"
        folder.mkdir()
        for name in part:
            (folder / f"{name}.fpstore").symlink_to(BUNDLED / f"{name}.fpstore")
        runs = {name: manifest["runs"][name] for name in part}
        (folder / "corpus.json").write_text(json.dumps({"runs": runs, "held_out_families": []}))
        folders.append(folder)
    return folders


def test_the_view_holds_every_run_and_the_tables_held_out_families(tmp_path):
    merge = _script()
    view = tmp_path / "view"
    assert merge.merge_view(view, _split(tmp_path), merge.HELD_OUT) == 6
    index = json.loads((view / "corpus.json").read_text())
    assert len(index["runs"]) == 6
    # the table's held-out families, only those the view holds
    assert index["held_out_families"] == ["resnet/adamw-linear-g1", "vgg/onecycle-hard-g1"]
    with GammaTrajectoryStore.open(view / "vgg-onecycle-hard-g1-s0.005-w1-r0.fpstore") as store:
        assert len(store.history()[0]) > 2  # a real store through the link


def test_a_run_in_two_folders_is_refused(tmp_path):
    merge = _script()
    first, _ = _split(tmp_path)
    with pytest.raises(SystemExit, match="in two corpus folders"):
        merge.merge_view(tmp_path / "view", [first, first], merge.HELD_OUT)


def test_the_cache_keeps_only_cells_of_forecasters_that_fit_nothing(tmp_path):
    merge = _script()
    old = tmp_path / "old"
    (old / "examples").mkdir(parents=True)
    (old / "examples" / "run.npz").write_bytes(b"x")
    cells = {f"{label}|10%|0.5": {"gain": 0.1} for label in ("naive", "arima", "auto·gated")}
    (old / "run.json").write_text(json.dumps({"cells": cells, "seconds": 1.0}))
    assert merge.merge_caches(tmp_path / "new", [old]) == 1
    kept = json.loads((tmp_path / "new" / "run.json").read_text())
    assert sorted(kept["cells"]) == ["arima|10%|0.5", "naive|10%|0.5"]
    assert (tmp_path / "new" / "examples" / "run.npz").exists()
