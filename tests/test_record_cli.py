"""Tests of ``forecastprune record`` on tiny real runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from forecastprune.cli import cli
from forecastprune.store import GammaTrajectoryStore
from forecastprune.zoo import build_model

TINY = ["--epochs", "1", "--limit-batches", "3", "--no-progress", "--threads", "1"]


def record(tmp_path, *args, name="run"):
    out = tmp_path / name
    result = CliRunner().invoke(cli, ["record", "--out", str(out), *TINY, *args])
    return out, result


def test_tiny_run_writes_a_readable_store_model_and_summary(tmp_path):
    out, result = record(tmp_path, "--every", "2", "--seed", "3", "--gamma-init", "0.7")
    assert result.exit_code == 0, result.output
    assert "final test accuracy:" in result.output
    with GammaTrajectoryStore.open(out / "gammas.fpstore") as store:
        # initial γ, every 2nd update, and the last update
        assert store.steps.tolist() == [0, 2, 3]
        assert store.layout.names == tuple(
            n
            for n, m in build_model("darknet").named_modules()
            if isinstance(m, torch.nn.BatchNorm2d)
        )
        assert np.allclose(store.history()[1][0], 0.7)
        assert np.all(np.isfinite(store.lrs))
        meta = store.metadata
    assert meta["model"] == "darknet" and meta["record_every"] == 2
    assert meta["total_steps"] == 3 and meta["steps_per_epoch"] == 3 and meta["seed"] == 3
    assert meta["model_kwargs"]["gamma_init"] == 0.7 and meta["sparsity"] == 5e-3
    assert 0.0 <= meta["accuracy"] <= 1.0
    assert meta["lr_schedule"][0] == [0, 0.05]
    state = torch.load(out / "model.pt", weights_only=True)
    model = build_model("darknet", gamma_init=0.7)
    model.load_state_dict(state)
    summary = json.loads((out / "run.json").read_text())
    assert summary["accuracy"] == meta["accuracy"] and len(summary["epochs"]) == 1


def test_sparsity_pulls_gamma_down_and_overwrite_is_explicit(tmp_path):
    def final_magnitudes(out):
        with GammaTrajectoryStore.open(out / "gammas.fpstore") as store:
            return np.abs(store.final()[1]), store.metadata["sparsity"]

    out, dense = record(tmp_path, "--sparsity", "0", "--lr", "0.1")
    assert dense.exit_code == 0, dense.output
    dense_final, _ = final_magnitudes(out)
    _, refused = record(tmp_path, "--sparsity", "0.05", "--lr", "0.1")
    assert refused.exit_code == 2 and "--overwrite" in refused.output
    assert refused.output.strip().splitlines() == [refused.output.strip()]
    _, sparse = record(tmp_path, "--sparsity", "0.05", "--lr", "0.1", "--overwrite")
    assert sparse.exit_code == 0, sparse.output
    sparse_final, s = final_magnitudes(out)
    assert s == 0.05
    # same seed, same batches: 3 momentum-SGD updates add about lr·s·(1 + 1.9 + 2.71) ≈ 0.028
    # to every γ's decrease, so the sparse run ends clearly lower
    assert sparse_final.mean() < dense_final.mean() - 0.01


def test_float16_store_and_other_model(tmp_path):
    out, result = record(tmp_path, "--model", "vgg", "--dtype", "float16", "--width", "0.5")
    assert result.exit_code == 0, result.output
    with GammaTrajectoryStore.open(out / "gammas.fpstore") as store:
        assert store.dtype == "float16" and store.layout.total == 8 + 16 + 16 + 32 + 32 + 32


@pytest.mark.parametrize(
    "args,message",
    [
        (["--model", "darkent"], "Did you mean 'darknet'"),
        (["--widths", "8,8"], "4 widths"),
        (["--lr-milestones", "0.5,1.5"], "strictly between 0 and 1"),
        (["--widths", "a,b"], "comma-separated"),
        (["--widths", "8.5,16,32,32"], "positive integers"),
        (["--epochs", "0"], "--epochs"),
        (["--dtype", "int8"], "--dtype"),
    ],
)
def test_bad_options_exit_2_with_an_error_line(tmp_path, args, message):
    out, result = record(tmp_path, *args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.output.strip().splitlines()[-1].startswith("Error:")
    assert message in result.output
    assert not (out / "model.pt").exists()


def test_help_has_an_example():
    result = CliRunner().invoke(cli, ["record", "--help"])
    assert result.exit_code == 0
    assert "forecastprune record --model darknet" in result.output


def test_bundled_store_has_the_documented_shape_and_real_structure():
    from forecastprune.store import bundled_store_path

    with GammaTrajectoryStore.open(bundled_store_path()) as store:
        assert (len(store), store.layout.total) == (661, 448)
        assert store.steps[0] == 0 and store.steps[-1] == store.metadata["total_steps"] == 1320
        meta = store.metadata
        final = np.abs(store.final()[1])
        early = np.abs(store.history(until_step=264)[1][-1])
    assert meta["model"] == "darknet" and meta["sparsity"] == 2e-3 and meta["accuracy"] > 0.99
    # bimodal: a large group at ~0 and a spread of survivors (scripts/make_bundled_store.sh)
    assert 0.2 < float((final < 0.01).mean()) < 0.4
    assert np.percentile(final, 75) > 0.15
    # nothing had collapsed at 20 % of training: there is something to forecast
    assert float((early < 0.01).mean()) == 0.0


def test_adamw_warmup_and_the_other_recipes_users_train_with(tmp_path):
    out, result = record(
        tmp_path,
        "--optimizer",
        "adamw",
        "--lr",
        "0.002",
        "--warmup",
        "0.5",
        "--lr-scheduler",
        "linear",
        "--gamma-init",
        "1.0",
        "--every",
        "1",
        "--sparsity",
        "0",
        "--task",
        "digits-hard",
        "--limit-batches",
        "4",
    )
    assert result.exit_code == 0, result.output
    with GammaTrajectoryStore.open(out / "gammas.fpstore") as store:
        gammas = store.history()[1]
        meta = store.metadata
    assert meta["optimizer"] == "adamw" and meta["task"] == "digits-hard"
    # warm-up: the first update runs at half the peak (2 rising updates), the peak comes next,
    # then linear decay toward 1 % of the peak (4 updates in all)
    lrs = {int(s): lr for s, lr in meta["lr_schedule"]}
    assert lrs[0] == pytest.approx(0.001) and lrs[2] == pytest.approx(0.002 * (1 - 0.99 * 0.25))
    # AdamW's first update moves every γ by ≈ the LR whatever its gradient (SGD would not)
    first = np.abs(gammas[1].astype(np.float64) - 1.0)
    assert np.median(first) == pytest.approx(0.001, rel=0.05)
    _, onecycle = record(
        tmp_path, "--lr-scheduler", "onecycle", "--optimizer", "nesterov", name="onecycle"
    )
    assert onecycle.exit_code == 0, onecycle.output
    with GammaTrajectoryStore.open(tmp_path / "onecycle" / "gammas.fpstore") as store:
        peak = max(lr for _, lr in store.metadata["lr_schedule"])
    assert peak == pytest.approx(0.05, rel=0.02) and store.metadata["optimizer"] == "nesterov"
    _, bad = record(tmp_path, "--optimizer", "lion", name="bad")
    assert bad.exit_code == 2 and "adamw" in bad.output
