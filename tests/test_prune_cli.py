"""``forecastprune prune``: forecast → threshold → surgery → saved model, and its error paths."""

from __future__ import annotations

import _models  # noqa: F401  (one intra-op thread for the tests)
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from forecastprune.cli import cli
from forecastprune.core.bn_layers import layout_of, select_bn_layers
from forecastprune.engine.persist import load_pruned
from forecastprune.store import GammaTrajectoryStore
from forecastprune.zoo import build_model

X8 = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))


def _run(*args):
    return CliRunner().invoke(cli, ["prune", *[str(a) for a in args]])


@pytest.fixture
def vgg_store(tmp_path):
    """A small store recorded (synthetically, decaying γ) on the zoo's VGG, plus a checkpoint."""
    model = build_model("vgg", width=0.5)
    layout = layout_of(select_bn_layers(model))
    path = tmp_path / "vgg.fpstore"
    rates = np.random.default_rng(0).random(layout.total)
    meta = {"model": "vgg", "model_kwargs": {"width": 0.5}, "total_steps": 40}
    with GammaTrajectoryStore.create(path, layout, metadata=meta) as store:
        for step in range(0, 41, 2):
            store.append(step, np.exp(-rates * step / 10))
    checkpoint = tmp_path / "model.pt"
    torch.save(model.state_dict(), checkpoint)
    return path, checkpoint, model, rates


def test_prune_the_bundled_store_and_reload(tmp_path):
    out = tmp_path / "pruned.pt"
    result = _run(
        "--forecaster",
        "sma",
        "--cutoff",
        "0.3",
        "--policy",
        "grouped",
        "--out",
        out,
        "--random-init",
    )
    assert result.exit_code == 0, result.output
    assert "freshly initialised" in result.output
    assert "params" in result.output and "MACs" in result.output and "% less" in result.output
    assert "pruned 224 of 448 prunable channels" in result.output
    model = load_pruned(out).eval()
    full = build_model("darknet", widths=[16, 32, 64, 32], gamma_init=0.5)
    assert sum(p.numel() for p in model.parameters()) < sum(p.numel() for p in full.parameters())
    with torch.no_grad():
        assert model(X8).shape == (2, 10)


def test_checkpoint_weights_are_carried_and_forecast_ranks_channels(vgg_store, tmp_path):
    path, checkpoint, model, rates = vgg_store
    out = tmp_path / "p.pt"
    result = _run(
        "--store",
        path,
        "--checkpoint",
        checkpoint,
        "--forecaster",
        "linear",
        "--cutoff",
        "0.5",
        "--ratio",
        "0.25",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    pruned = load_pruned(out)
    # the fastest-decaying quarter of conv1's channels is gone, the rest kept with its weights
    first = model.features.conv1
    n = first.bn.num_features
    kept = pruned.features.conv1.bn.num_features
    assert kept < n
    survivors = np.sort(np.argsort(rates[:n])[:kept]) if kept else []
    assert torch.equal(pruned.features.conv1.conv.weight, first.conv.weight[survivors])


def test_out_is_never_overwritten_silently(vgg_store, tmp_path):
    path, *_ = vgg_store
    out = tmp_path / "p.pt"
    out.write_bytes(b"precious")
    result = _run("--store", path, "--forecaster", "naive", "--out", out)
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert out.read_bytes() == b"precious"
    result = _run("--store", path, "--forecaster", "naive", "--out", out, "--overwrite")
    assert result.exit_code == 0, result.output
    assert load_pruned(out) is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--model", "resnet"],
            "layer 'features.conv1.bn' of the layout is not an affine BatchNorm",
        ),
        (["--forecaster", "smaa"], "unknown forecaster 'smaa'"),
        (["--ratio", "1.5"], "Invalid value for --ratio: ratio is the fraction"),
        (["--policy", "none"], "a cut needs policy seed or grouped"),
        (["--ratio", "0.3", "--threshold", "0.1"], "give a ratio or a threshold, not both"),
        (["--cutoff", "0"], "expected a fraction of the run in (0, 1]"),
        (["--cutoff", "2"], "for step 2 write 'step:2'"),
        (["--input-shape", "1,1,100000,100000"], "tracing needs one small batch"),
        (["--input-shape", "1,x"], "comma-separated positive sizes"),
        (["--model", "yolo"], "model 'yolo' is not in the zoo"),
    ],
)
def test_bad_arguments_are_one_line_errors(vgg_store, tmp_path, args, message):
    path, *_ = vgg_store
    forecaster = [] if "--forecaster" in args else ["--forecaster", "naive"]
    result = _run("--store", path, "--out", tmp_path / "p.pt", *forecaster, *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "p.pt").exists()


def test_a_checkpoint_of_another_model_and_a_store_without_model(vgg_store, tmp_path):
    path, *_ = vgg_store
    other = tmp_path / "other.pt"
    torch.save(build_model("vgg").state_dict(), other)  # full width, store says width 0.5
    result = _run(
        "--store", path, "--checkpoint", other, "--forecaster", "naive", "--out", tmp_path / "p.pt"
    )
    assert result.exit_code == 2 and "does not fit VGG" in result.output
    assert "size mismatches (first: features.conv1.conv.weight" in result.output
    bare = tmp_path / "bare.fpstore"
    layout = layout_of(select_bn_layers(build_model("vgg")))
    with GammaTrajectoryStore.create(bare, layout) as store:
        store.append(0, np.ones(layout.total))
    result = _run("--store", bare, "--forecaster", "naive", "--out", tmp_path / "p.pt")
    assert result.exit_code == 2 and "names no model" in result.output


def test_help_has_an_example():
    result = CliRunner().invoke(cli, ["prune", "--help"])
    assert result.exit_code == 0 and "Example:" in result.output
    assert "forecastprune prune --store" in result.output


def test_the_runs_weights_are_used_and_an_untrained_model_needs_consent(vgg_store, tmp_path):
    path, checkpoint, *_ = vgg_store
    used = _run("--store", path, "--forecaster", "naive", "--out", tmp_path / "a.pt")
    assert used.exit_code == 0, used.output
    assert f"using the run's weights {checkpoint}" in used.output
    checkpoint.unlink()
    refused = _run("--store", path, "--forecaster", "naive", "--out", tmp_path / "b.pt")
    assert refused.exit_code == 2 and "--random-init" in refused.output
    assert not (tmp_path / "b.pt").exists()
