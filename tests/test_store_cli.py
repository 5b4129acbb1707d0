"""``forecastprune store``: info, import, export, from-checkpoints, and their error paths."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from forecastprune.cli import cli, store_cmd
from forecastprune.store.layout import ChannelLayout
from forecastprune.store import GammaTrajectoryStore, bundled

LAYOUT = ChannelLayout(tuple((f"backbone.{i}.bn", 4) for i in range(14)))


@pytest.fixture()
def store_path(tmp_path):
    path = tmp_path / "run.fpstore"
    rows = np.random.default_rng(0).normal(0.4, 0.2, (6, LAYOUT.total))
    with GammaTrajectoryStore.create(path, LAYOUT, metadata={"model": "darknet"},
                                     fingerprint="fp1", flush_every=4) as store:
        for i, row in enumerate(rows):
            store.append(10 * i, row, lr=0.1)
    return path


def _run(*args):
    return CliRunner().invoke(cli, ["store", *map(str, args)])


def _assert_one_line_error(result, fragment):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert fragment in lines[0]
    assert "Traceback" not in result.output + result.stderr


def test_info_prints_layout_steps_metadata_and_percentiles(store_path):
    result = _run("info", store_path)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "6 (steps 0..50; LR known at 6)" in out
    assert "14 BN layers, 56 channels" in out
    assert "backbone.0.bn" in out and "... and 3 more" in out and "backbone.13.bn" not in out
    assert 'meta       model = "darknet"' in out and "fingerprint fp1" in out
    final = np.abs(GammaTrajectoryStore.open(store_path).final()[1])
    assert f"p50 {np.percentile(final, 50):.4g}" in out


def test_info_json_is_the_info_dict(store_path):
    result = _run("info", store_path, "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == GammaTrajectoryStore.open(store_path).info()


def test_info_defaults_to_the_bundled_store(store_path, monkeypatch):
    monkeypatch.setattr(store_cmd, "bundled_store_path", lambda: store_path)
    result = _run("info")
    assert result.exit_code == 0 and str(store_path) in result.stdout


def test_missing_bundled_store_is_a_one_line_error(monkeypatch):
    monkeypatch.setattr(bundled, "BUNDLED_STORE_NAME", "absent.fpstore")
    _assert_one_line_error(_run("info"), "the bundled store is missing")


def test_export_then_import_round_trip(store_path, tmp_path):
    npz = tmp_path / "out.npz"
    result = _run("export", store_path, npz)
    assert result.exit_code == 0 and f"wrote {npz}" in result.stdout
    result = _run("import", npz, tmp_path / "copy", "--dtype", "float16", "--fingerprint", "fp2")
    assert result.exit_code == 0, result.output
    assert "6 snapshots x 56 channels in 14 BN layers" in result.stdout
    copy, original = (GammaTrajectoryStore.open(p) for p in (tmp_path / "copy", store_path))
    assert copy.dtype == "float16" and copy.fingerprint == "fp2"
    assert copy.metadata == original.metadata
    np.testing.assert_allclose(copy.history()[1], original.history()[1], rtol=1e-3)
    _assert_one_line_error(_run("export", store_path, npz), "already exists")
    assert _run("export", store_path, npz, "--overwrite").exit_code == 0
    _assert_one_line_error(_run("import", npz, tmp_path / "copy"), "already exists")


def test_from_checkpoints(tmp_path):
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 2, 1),
                        nn.BatchNorm2d(2))
    paths = []
    for epoch in (5, 1, 3):
        with torch.no_grad():
            net[1].weight.fill_(epoch)
        paths.append(tmp_path / f"epoch_{epoch}.pt")
        torch.save(net.state_dict(), paths[-1])
    out = tmp_path / "ck.fpstore"
    result = _run("from-checkpoints", out, *paths, "--layers", "1")
    assert result.exit_code == 0, result.output
    store = GammaTrajectoryStore.open(out)
    assert store.steps.tolist() == [1, 3, 5]
    np.testing.assert_array_equal(store.history()[1][:, 0], [1, 3, 5])
    result = _run("from-checkpoints", tmp_path / "b", *paths, "--steps", "30,10,20")
    assert result.exit_code == 0
    store = GammaTrajectoryStore.open(tmp_path / "b")
    assert store.layout.names == ("1", "4") and store.steps.tolist() == [10, 20, 30]
    np.testing.assert_array_equal(store.history()[1][:, 0], [1, 3, 5])
    _assert_one_line_error(_run("from-checkpoints", tmp_path / "c", *paths, "--steps", "1,x"),
                           "--steps must be comma-separated integers")


@pytest.mark.parametrize(
    ("make_args", "fragment"),
    [
        (lambda t: ("info", t / "absent"), "no γ trajectory store at"),
        (lambda t: ("info", t), "has no manifest.json"),
        (lambda t: ("export", t / "absent", t / "x.npz"), "no γ trajectory store at"),
        (lambda t: ("import", t / "absent.npz", t / "s"), "no NPZ file at"),
        (lambda t: ("from-checkpoints", t / "s", t / "nothing_1.pt"), "does not exist"),
    ],
)
def test_errors_are_one_line_exit_2(tmp_path, make_args, fragment):
    _assert_one_line_error(_run(*make_args(tmp_path)), fragment)


def test_corrupted_store_is_a_one_line_error(store_path):
    (store_path / "manifest.json").write_text("{broken")
    _assert_one_line_error(_run("info", store_path), f"corrupted store manifest {store_path}")


@pytest.mark.parametrize("command", ["info", "import", "export", "from-checkpoints"])
def test_help_has_an_example(command):
    result = _run(command, "--help")
    assert result.exit_code == 0 and "Example:" in result.stdout
    assert "forecastprune store" in result.stdout
