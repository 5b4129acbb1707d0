"""Making and caching the corpus: one real (tiny) run, reused, and ``benchmark --corpus``."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
from click.testing import CliRunner

import forecastprune.corpus.build as build
from forecastprune.cli import cli
from forecastprune.corpus import GROUPS, build_corpus, default_cache, select_families
from forecastprune.corpus.make import STAGING
from forecastprune.errors import ConfigError
from forecastprune.store import GammaTrajectoryStore

SMOKE = "darknet/smoke"
SMOKE_RUN = "darknet-smoke-s0.005-w1-r0"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """A cache folder holding the smoke run, made once for the module."""
    folder = tmp_path_factory.mktemp("cache")
    report = build_corpus(folder, [SMOKE], progress=False)
    assert report.made == [SMOKE_RUN] and report.cached == []
    return folder


def test_a_made_run_is_a_float16_store_with_its_manifest_entry(cache):
    with GammaTrajectoryStore.open(cache / f"{SMOKE_RUN}.fpstore") as store:
        assert store.dtype == "float16" and store.metadata["model"] == "darknet"
        snapshots = len(store)
    manifest = json.loads((cache / "corpus.json").read_text())
    entry = manifest["runs"][SMOKE_RUN]
    assert entry["family"] == SMOKE and entry["snapshots"] == snapshots == 13  # 0, 1..12
    assert entry["seconds"] > 0 and 0.0 <= entry["accuracy"] <= 1.0
    assert json.loads((cache / "suite.json").read_text())["held_out"] == []
    assert not (cache / STAGING).exists()  # no work folder left behind


def test_a_cached_run_is_not_made_again(cache):
    store = cache / f"{SMOKE_RUN}.fpstore"
    before = {p.name: p.stat().st_mtime_ns for p in store.iterdir()}
    report = build_corpus(cache, [SMOKE], progress=False)
    assert report.made == [] and report.cached == [SMOKE_RUN]
    assert {p.name: p.stat().st_mtime_ns for p in store.iterdir()} == before


def test_a_half_written_run_never_counts(tmp_path):
    # a store without its manifest entry (a build stopped between the two) and a stale work
    # folder: the run is made again and the work folder goes
    (tmp_path / f"{SMOKE_RUN}.fpstore").mkdir()
    (tmp_path / f"{SMOKE_RUN}.fpstore" / "junk").write_text("half")
    (tmp_path / STAGING / "old-1").mkdir(parents=True)
    report = build_corpus(tmp_path, [SMOKE], progress=False)
    assert report.made == [SMOKE_RUN]
    assert not (tmp_path / f"{SMOKE_RUN}.fpstore" / "junk").exists()
    assert not (tmp_path / STAGING).exists()
    with GammaTrajectoryStore.open(tmp_path / f"{SMOKE_RUN}.fpstore") as store:
        assert len(store) == 13


def test_detector_families_are_skipped_with_one_line_when_ultralytics_is_missing(
    tmp_path, monkeypatch
):
    real = build.why_not_here

    def missing(group):  # the detector group needing a package that is really not installed
        if group.name != "ultralytics":
            return real(group)
        return real(dataclasses.replace(group, needs=("no_such_package_fp", group.needs[1])))

    monkeypatch.setattr(build, "why_not_here", missing)
    lines = []
    chosen = select_families("ultralytics")
    report = build_corpus(tmp_path, chosen, progress=False, echo=lines.append)
    assert report.made == [] and len(report.skipped) == 12
    assert lines == [
        "skipping yolo11n/ultralytics-default, yolo11n/ultralytics-sgd, "
        "yolov8n/ultralytics-default, yolov8n/ultralytics-sgd: no_such_package_fp "
        'is not installed (pip install "forecastprune[ultralytics]")'
    ]
    assert build.why_not_here(GROUPS[1]) is None  # torchvision is installed here


def test_bad_jobs_unknown_families_and_a_busy_folder_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="jobs must be at least 1"):
        build_corpus(tmp_path, [SMOKE], jobs=0)
    with pytest.raises(ConfigError, match=r"not families of the corpus table: \['smoke'\]"):
        build_corpus(tmp_path, ["smoke"], progress=False)  # a group, not a family
    from forecastprune.store.lock import WriterLock

    lock = WriterLock.acquire(tmp_path)
    try:
        with pytest.raises(ConfigError, match="another process is building"):
            build_corpus(tmp_path, [SMOKE], progress=False)
    finally:
        lock.release()


def test_the_default_cache_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("FORECASTPRUNE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache() == tmp_path / "xdg" / "forecastprune" / "corpus"
    monkeypatch.setenv("FORECASTPRUNE_CACHE", str(tmp_path / "fp"))
    assert default_cache() == tmp_path / "fp" / "corpus"
    monkeypatch.delenv("FORECASTPRUNE_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache() == default_cache().home() / ".cache" / "forecastprune" / "corpus"


def test_benchmark_makes_the_corpus_once_then_benchmarks_on_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FORECASTPRUNE_CACHE", str(tmp_path))  # the default cache, redirected
    args = ["benchmark", "--corpus", SMOKE, "--forecasters", "sma", "--cutoffs", "0.5"]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "made 1 runs" in first.output and "on 1 runs" in first.output
    assert "failed" not in first.output  # the smoke run is long enough for sma at 50 %
    assert (tmp_path / "corpus" / f"{SMOKE_RUN}.fpstore").is_dir()
    second = CliRunner().invoke(cli, args)
    assert second.exit_code == 0, second.output
    assert "made" not in second.output and "on 1 runs" in second.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--corpus", "nosuch/family"], "'nosuch/family' names no family"),
        (["--corpus", "ultralytic"], "Did you mean 'ultralytics'?"),
        (["--corpus", SMOKE, "--suite", "."], "not both"),
        (["--jobs", "2"], "--cache and --jobs go with --corpus"),
        (["--corpus", SMOKE, "--run", "other"], "are not runs of the chosen --corpus"),
    ],
)
def test_benchmark_corpus_errors_are_one_line_exit_2(cache, args, message):
    result = CliRunner().invoke(cli, ["benchmark", "--cache", str(cache), *args])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], result.output


def test_benchmark_corpus_list_names_every_family_and_makes_nothing(tmp_path):
    result = CliRunner().invoke(cli, ["benchmark", "--corpus", "list", "--cache", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "tv-resnet18/adamw-warm-cos-g1 (3 runs)" in result.output
    assert "yolo11n/ultralytics-default" in result.output
    assert os.listdir(tmp_path) == []


def test_bad_replay_settings_are_refused_before_any_run_is_made(tmp_path):
    args = ["benchmark", "--corpus", SMOKE, "--cache", str(tmp_path), "--cutoffs", "1.5"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2 and "Error:" in result.output, result.output
    assert not any(tmp_path.iterdir())  # nothing trained, nothing written
