"""The whole data path through the CLI: record → compare → prune → load → forward."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from forecastprune.cli import cli
from forecastprune.engine.persist import load_pruned
from forecastprune.engine.stats import count_params
from forecastprune.store import GammaTrajectoryStore
from forecastprune.zoo import build_model


def invoke(*args: str) -> str:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
def test_record_compare_prune_load_forward(tmp_path):
    run = tmp_path / "run"
    invoke(
        "record",
        "--model",
        "darknet",
        "--epochs",
        "2",
        "--limit-batches",
        "6",
        "--every",
        "1",
        "--sparsity",
        "5e-3",
        "--no-progress",
        "--threads",
        "1",
        "--out",
        str(run),
    )
    store_path = run / "gammas.fpstore"
    with GammaTrajectoryStore.open(store_path) as store:
        n_steps, layout = len(store), store.layout
    assert n_steps == 13  # the initial γ and one snapshot per update

    report = tmp_path / "compare.json"
    output = invoke(
        "compare",
        "--store",
        str(store_path),
        "--forecasters",
        "sma,ema",
        "--cutoffs",
        "0.3,0.6",
        "--policy",
        "seed",
        "--json",
        str(report),
    )
    assert "naive" in output and "sma" in output
    rows = json.loads(report.read_text())["rows"]
    assert {row["forecaster"] for row in rows} == {"naive", "sma", "ema"}
    assert all(0.0 <= row["iou"] <= 1.0 for row in rows if row.get("iou") is not None)

    pruned_path = tmp_path / "pruned.pt"
    invoke(
        "prune",
        "--model",
        "darknet",
        "--checkpoint",
        str(run / "model.pt"),
        "--store",
        str(store_path),
        "--forecaster",
        "sma",
        "--cutoff",
        "0.5",
        "--ratio",
        "0.5",
        "--policy",
        "seed",
        "--out",
        str(pruned_path),
    )

    original = build_model("darknet")
    original.load_state_dict(torch.load(run / "model.pt", weights_only=True))
    pruned = load_pruned(pruned_path).eval()
    assert count_params(pruned) < count_params(original)
    bns = [m for m in pruned.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert sum(bn.num_features for bn in bns) < layout.total
    with torch.no_grad():
        logits = pruned(torch.randn(4, 1, 8, 8))
    assert logits.shape == (4, 10) and bool(torch.isfinite(logits).all())
