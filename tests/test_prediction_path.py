"""One prediction path: what ``compare`` scores is what ``prune`` and EarlyPruner remove.

For a store, a cutoff and a forecaster, the channels ``compare`` judged a forecaster on must
be exactly the channels ``forecastprune prune`` cuts at that cutoff; and the channels an
:class:`EarlyPruner` removes during training must be what ``prune`` cuts from the store the
pruner recorded, with the whole recording as history. Linear extrapolation drives some |γ|
below zero, so these cases also cover clipping.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from forecastprune.cli import cli
from forecastprune.compare.replay import ReplaySettings, replay
from forecastprune.engine.spec import PruneSpec
from forecastprune.pipeline import EarlyPruner
from forecastprune.predict import cutoff_step, predict_store
from forecastprune.store import GammaTrajectoryStore, bundled_store_path
from forecastprune.store.timeline import run_length
from forecastprune.zoo import build_model
from forecastprune.zoo.data import load_digits_split

FORECASTERS = ["sma", "linear"]


def _pruned_by_cli(store: Path, spec: str, cutoff: str, out: Path, *extra: str) -> np.ndarray:
    """Run ``forecastprune prune`` and read the removed channels back from the saved plan."""
    result = CliRunner().invoke(
        cli,
        [
            "prune",
            "--store",
            str(store),
            "--forecaster",
            spec,
            "--cutoff",
            cutoff,
            "--ratio",
            "0.5",
            "--policy",
            "seed",
            "--out",
            str(out),
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(torch.load(out, weights_only=True)["plan"])
    with GammaTrajectoryStore.open(store) as opened:
        layout = opened.layout
    pruned = np.zeros(layout.total, dtype=bool)
    for name, size in layout.layers:
        kept = plan["keep"].get(name, list(range(size)))
        gone = np.setdiff1d(np.arange(size), kept)
        pruned[layout.slice(name)][gone] = True
    return pruned


@pytest.mark.parametrize("spec", FORECASTERS)
def test_compare_scores_the_channels_prune_removes(spec: str, tmp_path: Path) -> None:
    store_path = bundled_store_path()
    with GammaTrajectoryStore.open(store_path) as store:
        result = replay(
            store, [spec], ReplaySettings(cutoffs=(0.3,), spec=PruneSpec(policy="seed"))
        )
        step = cutoff_step(0.3, run_length(store))
        negative = predict_store(store, spec, 0.3).scores
    scored = result.pruned_set(spec, step, 0.5)
    removed = _pruned_by_cli(store_path, spec, "0.3", tmp_path / "p.pt", "--random-init")
    assert scored.sum() > 0
    np.testing.assert_array_equal(scored, removed)
    assert negative.min() >= 0.0  # clipped on both paths


def test_a_linear_trend_below_zero_is_clipped_before_ranking() -> None:
    with GammaTrajectoryStore.open(bundled_store_path()) as store:
        steps, gammas = store.history(until_step=400)
    from forecastprune.predict import predict_history

    raw = np.abs(gammas).astype(np.float64)
    slope = (raw[-1] - raw[-20]) / (steps[-1] - steps[-20])
    assert (raw[-1] + slope * (1320 - steps[-1]) < 0).any()  # some trends cross zero
    prediction = predict_history("linear(window=20)", steps, gammas, 1320)
    assert prediction.scores.min() == 0.0


@pytest.mark.parametrize("spec", FORECASTERS)
def test_early_pruner_removes_what_prune_cuts_from_its_store(spec: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    data = load_digits_split(seed=0)
    x, y = data.x_train[:128], data.y_train[:128]
    model = build_model("darknet", widths=(8, 16, 16, 8))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    store_path = tmp_path / "run" / "gammas.fpstore"
    pruner = EarlyPruner(
        model,
        optimizer,
        forecaster=spec,
        prune_at="step:24",
        sparsity=5e-3,
        total_steps=60,
        example_inputs=x[:1],
        store_path=store_path,
        metadata={"model": "darknet", "model_kwargs": {"widths": [8, 16, 16, 8]}},
    )
    for step in range(1, 25):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        pruner.regularize(step)
        optimizer.step()
        model, optimizer = pruner.step(step)
    assert pruner.pruned_at == 24
    by_pruner = pruner.last_mask.decision.pruned
    # the mask depends on the recorded γ and the model's structure, not on its weights
    by_cli = _pruned_by_cli(store_path, spec, "1.0", tmp_path / "p.pt", "--random-init")
    assert by_pruner.sum() > 0
    np.testing.assert_array_equal(by_pruner, by_cli)
