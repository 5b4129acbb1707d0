"""The corpus table (forecastprune.corpus.table): what it promises, and the shipped part."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from forecastprune.corpus import GROUPS, HELD_OUT, SHIPPED, corpus_runs, families, select_families
from forecastprune.corpus.table import DIGITS_RECIPES
from forecastprune.errors import ConfigError
from forecastprune.pipeline.recording import RecordSettings

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "forecastprune" / "data" / "corpus"


def test_the_table_spans_the_recipes_users_train_with(tmp_path):
    runs = [r for r in corpus_runs() if r.group != "smoke"]
    fams = {r.family for r in runs}
    assert (
        len(runs) >= 60
        and len(fams) >= 8
        and len({r.name for r in corpus_runs()}) == len(corpus_runs())
    )
    assert set(HELD_OUT) <= fams and len(HELD_OUT) >= 2
    # every classification run's settings are valid RecordSettings
    settings = [RecordSettings(out=tmp_path, **r.settings) for r in runs if r.kind == "record"]
    assert {s.optimizer for s in settings} == {"sgd", "nesterov", "adamw"}
    assert {s.lr_scheduler for s in settings} == {"step", "cosine", "linear", "onecycle"}
    assert {s.gamma_init for s in settings} == {0.5, 1.0} and {s.dtype for s in settings} == {
        "float16"
    }
    assert {s.task for s in settings} == {"digits", "digits-hard", "shapes"}
    assert {s.model_name for s in settings} >= {"tv-resnet18", "tv-mobilenet-v2", "tv-vgg11"}
    assert min(s.sparsity for s in settings) == 1e-4 and max(s.sparsity for s in settings) == 5e-3
    detectors = {r.settings["model"] for r in runs if r.kind == "ultralytics"}
    assert detectors == {"yolov8n.yaml", "yolo11n.yaml"}
    # inside each group the first runs already span its families (a part made stays diverse)
    for group in GROUPS:
        mine = [r for r in runs if r.group == group.name]
        first = {r.family for r in mine[: len(group.architectures) * len(group.recipes)]}
        assert first == {r.family for r in mine}
    # at least 3 runs in every family
    assert min(sum(r.family == f for r in runs) for f in fams) >= 3


def test_families_are_chosen_by_name_group_pattern_or_all():
    table = families()
    assert "darknet/smoke" not in select_families("all")
    assert set(select_families("all")) == {f for f, g in table.items() if g != "smoke"}
    assert select_families("ultralytics") == [
        "yolov8n/ultralytics-default",
        "yolov8n/ultralytics-sgd",
        "yolo11n/ultralytics-default",
        "yolo11n/ultralytics-sgd",
    ]
    assert set(select_families("tv-*/*")) == {f for f in table if f.startswith("tv-")}
    # table order, no duplicates
    assert select_families("darknet/smoke, smoke") == ["darknet/smoke"]
    with pytest.raises(ConfigError, match="Did you mean 'ultralytics'"):
        select_families("ultralytic")
    with pytest.raises(ConfigError, match="names no family"):
        select_families(" , ")


def test_the_shipped_part_is_a_suite_with_one_run_per_digits_recipe():
    from forecastprune.compare.suite import load_suite

    runs = load_suite(SHIPPED_DIR)
    assert [r.name for r in runs] == sorted(SHIPPED)
    assert {r.name for r in runs if r.held_out} == {
        n for n in SHIPPED if any(n.startswith(f.replace("/", "-") + "-") for f in HELD_OUT)
    }
    manifest = json.loads((SHIPPED_DIR / "corpus.json").read_text())
    recipes = {manifest["runs"][r.name]["family"].split("/")[1] for r in runs}
    assert recipes == set(DIGITS_RECIPES)
    size = sum(f.stat().st_size for f in SHIPPED_DIR.rglob("*") if f.is_file())
    assert size < 2_000_000  # the wheel stays light
