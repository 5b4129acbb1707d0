"""The corpus generator's table (scripts/make_corpus.py): what it promises, and one real run."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from forecastprune.pipeline.recording import RecordSettings
from forecastprune.store import GammaTrajectoryStore

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "make_corpus.py"


@pytest.fixture(scope="module")
def corpus():
    spec = importlib.util.spec_from_file_location("make_corpus", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


def test_the_table_spans_the_recipes_users_train_with(corpus, tmp_path):
    runs = corpus.corpus_runs()
    families = {r.family for r in runs}
    assert len(runs) >= 60 and len(families) >= 8 and len({r.name for r in runs}) == len(runs)
    assert set(corpus.HELD_OUT) <= families and len(corpus.HELD_OUT) >= 2
    settings = [RecordSettings(out=tmp_path, **r.settings) for r in runs]  # all valid
    assert {s.optimizer for s in settings} == {"sgd", "nesterov", "adamw"}
    assert {s.lr_scheduler for s in settings} == {"step", "cosine", "linear", "onecycle"}
    assert {s.gamma_init for s in settings} == {0.5, 1.0} and {s.dtype for s in settings} == {
        "float16"
    }
    assert min(s.sparsity for s in settings) == 1e-4 and max(s.sparsity for s in settings) == 5e-3
    # the first runs made already span every family (a corpus made in part stays diverse)
    assert {r.family for r in runs[: len(families)]} == families


def test_a_run_is_made_once_and_recorded_in_both_manifests(corpus, tmp_path, monkeypatch):
    run = corpus.corpus_runs()[0]
    small = corpus.CorpusRun(
        run.name, run.family, {**run.settings, "epochs": 1, "limit_batches": 4}
    )
    monkeypatch.setattr(corpus, "corpus_runs", lambda: [small])
    entry = corpus.make_run(small, tmp_path)
    manifest = {"runs": {small.name: entry}}
    corpus.write_manifests(tmp_path, manifest)
    assert corpus.pending(tmp_path, None) == []  # resumable: made runs are skipped
    with GammaTrajectoryStore.open(tmp_path / f"{small.name}.fpstore") as store:
        assert store.metadata["optimizer"] == "sgd" and len(store) == entry["snapshots"]
    saved = json.loads((tmp_path / "corpus.json").read_text())
    assert saved["runs"][small.name]["family"] == run.family and entry["seconds"] > 0
    assert json.loads((tmp_path / "suite.json").read_text())["held_out"] == []


def test_the_shipped_part_is_a_suite_with_one_run_per_recipe(corpus):
    from forecastprune.compare.suite import load_suite

    runs = load_suite(corpus.SHIPPED_DIR)
    assert [r.name for r in runs] == sorted(corpus.SHIPPED)
    assert {r.name for r in runs if r.held_out} == {
        n for n in corpus.SHIPPED if any(n.startswith(f.replace("/", "-")) for f in corpus.HELD_OUT)
    }
    manifest = json.loads((corpus.SHIPPED_DIR / "corpus.json").read_text())
    recipes = {manifest["runs"][r.name]["family"].split("/")[1] for r in runs}
    assert recipes == set(corpus.RECIPES)
    size = sum(f.stat().st_size for f in corpus.SHIPPED_DIR.rglob("*") if f.is_file())
    assert size < 2_000_000  # the wheel stays light
