"""MNIST-1D: generated locally, seeded and offline; the ``mnist1d`` task and ``cnn1d`` model
through train, record, compare and prune."""

from __future__ import annotations

import json
import random
import socket
import sys

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from forecastprune.cli import cli
from forecastprune.errors import ConfigError
from forecastprune.pipeline.train_config import TrainConfig
from forecastprune.store import GammaTrajectoryStore
from forecastprune.zoo import build_model
from forecastprune.zoo.data import TASKS, Mnist1dTask, get_task
from forecastprune.zoo.mnist1d import generate

pytest.importorskip("mnist1d", reason="the MNIST-1D generator is the mnist1d extra")

#: 900 training / 100 test signals: generated in a fraction of a second
SMALL = Mnist1dTask("mnist1d", n_train=900, n_test=100)
WIDTHS = [16, 16, 16]


@pytest.fixture
def small_task(monkeypatch):
    """The ``mnist1d`` task, shrunk so that runs on it take a second."""
    monkeypatch.setitem(TASKS, "mnist1d", SMALL)
    return SMALL


def test_generation_is_offline_seeded_and_leaves_global_generators_alone(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("generating MNIST-1D opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    generate.cache_clear()
    random.seed(5)
    np.random.seed(5)
    split = SMALL.split()
    # make_dataset seeds both global generators; their states are given back
    random_after, numpy_after = random.random(), np.random.rand()
    random.seed(5)
    np.random.seed(5)
    assert (random_after, numpy_after) == (random.random(), np.random.rand())

    assert split.x_train.shape == (900, 1, 40) and split.x_test.shape == (100, 1, 40)
    assert split.x_train.dtype == torch.float32 and split.y_train.dtype == torch.int64
    labels = torch.cat([split.y_train, split.y_test])
    assert torch.bincount(labels).tolist() == [100] * 10  # the generator balances classes
    assert split.num_classes == 10
    # the generator standardises the whole set
    signals = torch.cat([split.x_train, split.x_test])
    assert abs(float(signals.mean())) < 1e-3 and abs(float(signals.std()) - 1) < 1e-2

    generate.cache_clear()  # a fresh generation gives the same signals; another seed does not
    assert torch.equal(SMALL.split().x_test, split.x_test)
    other = Mnist1dTask("mnist1d", n_train=900, n_test=100, seed=7).split()
    assert not torch.equal(other.x_test, split.x_test)


def test_the_registered_task_and_its_errors(monkeypatch) -> None:
    task = get_task("mnist1d")
    assert (task.n_train, task.n_test, task.dataset) == (20000, 5000, "mnist1d")
    assert TrainConfig(task="mnist1d", model="cnn1d").task == "mnist1d"
    with pytest.raises(ConfigError, match="upscale must be 1"):
        SMALL.split(upscale=2)
    with pytest.raises(ConfigError, match="multiple of 10"):
        generate(95, 10)
    monkeypatch.setitem(sys.modules, "mnist1d.data", None)  # as if the extra were missing
    with pytest.raises(ConfigError, match=r"pip install 'forecastprune\[mnist1d\]'"):
        generate(880, 120)


def test_cnn1d_classifies_flattened_positions() -> None:
    model = build_model("cnn1d", widths=(8, 12, 16), gamma_init=0.5)
    out = model(torch.randn(3, 1, 40))
    assert out.shape == (3, 10)
    assert model.classifier.in_features == 16 * 5  # 40 → 20 → 10 → 5 positions
    bns = [n for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert bns == ["features.conv1.bn", "features.conv2.bn", "features.conv3.bn"]
    assert float(model.features.conv2.bn.weight.detach()[0]) == 0.5
    with pytest.raises(ConfigError, match="length"):
        build_model("cnn1d", length=0)


@pytest.mark.parametrize(
    "keys",
    [
        {"method": "normal"},
        {"method": "forecast", "forecaster": "naive", "prune_at": 0.5},
        {"method": "slimming", "sparse_fraction": 0.5},
    ],
)
def test_train_on_mnist1d_with_a_yaml_config(small_task, tmp_path, keys) -> None:
    config = tmp_path / "mnist1d.yaml"
    recipe = {"model": "cnn1d", "widths": WIDTHS, "task": "mnist1d", "augment": False}
    run = {"epochs": 10, "batch_size": 100, "policy": "grouped", "ratio": 0.5, "gamma_init": 0.5}
    config.write_text(yaml.safe_dump({**recipe, **run, **keys}))
    out = tmp_path / "run"
    result = CliRunner().invoke(
        cli, ["train", "--config", str(config), "--out", str(out), "--quiet"]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["total_steps"] == 10 * 9
    assert summary["accuracy"] > 0.3  # chance is 0.1
    if keys["method"] == "normal":
        assert summary["prune_step"] is None
        return
    from forecastprune.engine.persist import load_pruned

    pruned = load_pruned(out / "model.pt")
    assert sum(p.numel() for p in pruned.parameters()) == summary["params"]
    assert pruned(torch.randn(2, 1, 40)).shape == (2, 10)
    with GammaTrajectoryStore.open(out / "gammas.fpstore") as store:
        assert store.metadata["input_shape"] == [1, 1, 40]
        assert store.layout.total == sum(WIDTHS)


@pytest.fixture
def recorded(small_task, tmp_path):
    """A γ store recorded by ``forecastprune record`` on the 1-D model."""
    out = tmp_path / "rec"
    args = ["record", "--out", str(out), "--model", "cnn1d", "--widths", "16,16,16"]
    args += ["--task", "mnist1d", "--epochs", "2", "--batch-size", "100", "--no-augment"]
    args += ["--every", "1"]
    result = CliRunner().invoke(cli, [*args, "--no-progress", "--threads", "1"])
    assert result.exit_code == 0, result.output
    return out


def test_record_compare_and_prune_a_1d_store(recorded, tmp_path) -> None:
    store_path = recorded / "gammas.fpstore"
    with GammaTrajectoryStore.open(store_path) as store:
        meta = store.metadata
        assert (meta["dataset"], meta["task"]) == ("mnist1d", "mnist1d")
        assert meta["input_shape"] == [1, 1, 40]
        assert len(store) == 19 and store.layout.total == 48  # initial γ + 18 steps
    # grouped needs the model's structure: compare rebuilds it from the metadata and traces it
    report = tmp_path / "r.json"
    result = CliRunner().invoke(
        cli,
        ["compare", "--store", str(store_path), "--forecasters", "naive,ema"]
        + ["--cutoffs", "0.3,0.6", "--policy", "grouped", "--ratio", "0.5", "--json", str(report)],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(report.read_text())["rows"]
    assert len(rows) == 2 * 2 and all(0.0 <= r["iou"] <= 1.0 for r in rows)
    out = tmp_path / "pruned.pt"
    result = CliRunner().invoke(
        cli,
        ["prune", "--store", str(store_path), "--forecaster", "naive", "--policy", "grouped"]
        + ["--ratio", "0.5", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    from forecastprune.engine.persist import load_pruned

    pruned = load_pruned(out)
    kept = [m.num_features for m in pruned.modules() if isinstance(m, torch.nn.BatchNorm1d)]
    assert sum(kept) == 24  # half of the 48 channels
    assert pruned(torch.randn(2, 1, 40)).shape == (2, 10)
