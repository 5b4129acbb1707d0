"""``forecastprune benchmark`` and the suite: gains over naive with bootstrap intervals."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from forecastprune.cli import cli
from forecastprune.compare.suite import bootstrap_interval, bundled_suite, load_suite
from forecastprune.errors import ConfigError

TWO = ("vgg-w0.5-s3e-3-cos", "resnet-w0.5-s5e-3-step")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("suite")
    for name in TWO:
        shutil.copytree(bundled_suite() / f"{name}.fpstore", folder / f"{name}.fpstore")
    (folder / "suite.json").write_text(json.dumps({"held_out": [TWO[1]]}))
    return folder


def test_bundled_suite_has_fourteen_runs_with_lr_schedules_and_one_held_out_per_family():
    runs = load_suite()
    held_out = {r.name.split("-")[0] for r in runs if r.held_out}
    assert len(runs) == 14 and held_out == {"vgg", "resnet", "darknet", "mobilenet"}
    from forecastprune.store import GammaTrajectoryStore

    models, schedulers = set(), set()
    for run in runs:
        with GammaTrajectoryStore.open(run.path) as store:
            models.add(store.metadata["model"])
            schedulers.add(store.metadata["lr_scheduler"])
            assert store.metadata["lr_schedule"] and store.metadata["total_steps"] > 0
    assert models == {"vgg", "resnet", "darknet", "mobilenet"}
    assert schedulers == {"step", "cosine"}


@pytest.mark.slow
def test_benchmark_on_two_runs_prints_gains_and_writes_json_and_png(two_runs, tmp_path):
    args = [
        "benchmark",
        "--suite",
        str(two_runs),
        "--forecasters",
        "auto,sma",
        "--cutoffs",
        "0.1,0.2",
        "--json",
        str(tmp_path / "s.json"),
        "--plot",
        str(tmp_path / "s.png"),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "held out of tuning: " + TWO[1] in result.output
    assert "held-out runs:" in result.output and "auto on " in result.output
    data = json.loads((tmp_path / "s.json").read_text())
    gains = data["gains"]["sma"]["10%"]
    assert set(gains) == set(TWO) and all(np.isfinite(v) for v in gains.values())
    summary = data["summary"]["all runs"]["sma"]["10%"]
    assert summary["low"] <= summary["mean"] <= summary["high"]
    assert summary["mean"] == pytest.approx(np.mean(list(gains.values())))
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bootstrap_interval_brackets_the_mean():
    values = np.array([0.1, -0.05, 0.02, 0.08, 0.0])
    low, high = bootstrap_interval(values, 0.9)
    assert low < values.mean() < high
    assert bootstrap_interval(np.array([0.3])) == (0.3, 0.3)


def test_bad_suites_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="no \\*.fpstore"):
        load_suite(tmp_path)
    with pytest.raises(ConfigError, match="not in"):
        load_suite(None, only=["no-such-run"])
    result = CliRunner().invoke(cli, ["benchmark", "--suite", str(tmp_path)])
    assert result.exit_code == 2 and "fpstore" in result.output
