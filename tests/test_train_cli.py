"""``forecastprune train`` on tiny configs: every method, the summary JSON and the error paths."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from forecastprune.cli import cli
from forecastprune.pipeline.train_config import TrainConfig

REPO = Path(__file__).resolve().parents[1]
# 128 images in batches of 32 for 2 epochs: 8 steps on a half-width Darknet
TINY = {"width": 0.5, "epochs": 2, "batch_size": 32, "train_subset": 128}


def _run(tmp_path: Path, name: str, **keys) -> tuple[object, dict | None]:
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump({**TINY, **keys}))
    out = tmp_path / name
    result = CliRunner().invoke(
        cli, ["train", "--config", str(config), "--out", str(out), "--quiet"]
    )
    summary = out / "summary.json"
    return result, json.loads(summary.read_text()) if summary.exists() else None


@pytest.fixture(scope="module")
def dense(tmp_path_factory) -> dict:
    result, summary = _run(tmp_path_factory.mktemp("normal"), "normal", method="normal")
    assert result.exit_code == 0, result.output
    assert summary["prune_step"] is None and summary["pruner"] is None
    # 8 dense steps of 32 samples, forward + backward
    assert summary["train_macs"] == 3 * 8 * 32 * summary["macs"]
    return summary


@pytest.mark.parametrize(
    "keys, prune_step",
    [
        ({"method": "slimming", "sparse_fraction": 0.5}, 4),
        ({"method": "forecast", "forecaster": "sma", "prune_at": 0.75}, 6),
        ({"method": "forecast", "forecaster": "naive", "prune_at": "step:3"}, 3),
        (
            {
                "method": "forecast",
                "forecaster": "ema",
                "prune_at": "auto",
                "check_every": 1,
                "auto_tolerance": 0.0,
                "auto_deadline": 0.5,
            },
            None,
        ),
    ],
)
def test_pruning_methods_prune_once_and_report(tmp_path, dense, keys, prune_step) -> None:
    result, summary = _run(tmp_path, "run", **keys)
    assert result.exit_code == 0, result.output
    assert "test accuracy" in result.output and "train compute" in result.output
    assert summary["method"] == keys["method"] and summary["total_steps"] == 8
    if prune_step is not None:
        assert summary["prune_step"] == prune_step
    else:  # auto: fired by stability or at the latest at its deadline (step 4)
        assert 1 <= summary["prune_step"] <= 4
        assert summary["pruner"]["fired_by"] in ("stability", "deadline")
    assert summary["params"] < dense["params"] and summary["macs"] < dense["macs"]
    # compute: dense steps up to the prune, the final (smaller) model's steps after it
    step = summary["prune_step"]
    expected = 3 * 32 * (step * dense["macs"] + (8 - step) * summary["macs"])
    assert summary["train_macs"] == expected
    assert (tmp_path / "run" / "gammas.fpstore").is_dir()
    # the pruned model reloads from its channel plan, without unpickling
    from forecastprune.engine.persist import load_pruned

    reloaded = load_pruned(tmp_path / "run" / "model.pt")
    assert sum(p.numel() for p in reloaded.parameters()) == summary["params"]


def test_early_bird_checks_every_step(tmp_path, dense) -> None:
    result, summary = _run(tmp_path, "eb", method="early-bird", check_every=1)
    assert result.exit_code == 0, result.output
    timing = summary["pruner"]["timing"]
    assert timing["kind"] == "early-bird" and timing["window"] == 4
    checked = [step for step, _ in timing["distances"]]
    last = summary["prune_step"] or 8
    assert checked == list(range(1, last + 1))
    # the criterion needs 4 earlier masks, so it cannot fire before the fifth check
    assert summary["prune_step"] is None or summary["prune_step"] >= 5


def test_seed_and_epochs_override_the_config(tmp_path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({**TINY, "method": "normal"}))
    out = tmp_path / "o"
    result = CliRunner().invoke(
        cli,
        [
            "train",
            "--config",
            str(config),
            "--epochs",
            "1",
            "--seed",
            "3",
            "--out",
            str(out),
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["seed"] == 3 and summary["total_steps"] == 4


@pytest.mark.parametrize(
    "content, message",
    [
        ({"method": "normal", "epochs": 2, "learning_rate": 0.1}, "valid keys"),
        ({"epochs": 2}, "needs a 'method' key"),
        ({"method": "pruning"}, "method must be one of"),
        (
            {"method": "forecast", "ratio": 2.0},
            "ratio is the fraction of prunable channels to prune and must lie in [0, 1]",
        ),
        ({"method": "forecast", "prune_at": "soon"}, "prune_at: got 'soon'"),
        ({"method": "normal", "epochs": "many"}, "must be a whole number"),
    ],
)
def test_bad_configs_exit_2_with_one_line(tmp_path, content, message) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump(content))
    result = CliRunner().invoke(cli, ["train", "--config", str(config)])
    assert result.exit_code == 2
    assert message in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_missing_config_file_and_help(tmp_path) -> None:
    result = CliRunner().invoke(cli, ["train", "--config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "cannot read config file" in result.output
    help_text = CliRunner().invoke(cli, ["train", "--help"]).output
    assert "Example:" in help_text and "configs/forecast-sma.yaml" in help_text


def test_shipped_configs_are_valid_and_one_per_method() -> None:
    names = ["normal.yaml", "slimming.yaml", "early-bird.yaml", "forecast-*.yaml"]
    configs = {
        path.stem: TrainConfig.load(path)
        for pattern in names
        for path in (REPO / "configs").glob(pattern)
    }
    methods = {c.method for c in configs.values()}
    assert methods == {"normal", "slimming", "early-bird", "forecast"}
    for name in ("naive", "sma", "ema", "linear", "arima"):
        assert configs[f"forecast-{name}"].forecaster == name
    assert len({c.epochs for c in configs.values()}) == 1  # equal budgets


def test_plugins_key_loads_a_plugin_forecaster_for_the_run(tmp_path) -> None:
    from forecastprune.testing import isolated_registry

    with isolated_registry():
        result, summary = _run(
            tmp_path,
            "plugin",
            method="forecast",
            forecaster="median(window=2)",
            prune_at="step:3",
            plugins=[str(REPO / "plugins" / "single_file_plugin.py")],
        )
    assert result.exit_code == 0, result.output
    assert summary["prune_step"] == 3 and summary["pruner"]["forecaster"] == "median(window=2)"
