"""``forecastprune store``: info, import, export, from-checkpoints, and their error paths."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from forecastprune.cli import cli, store_cmd
from forecastprune.core.layout import ChannelLayout
from forecastprune.store import GammaTrajectoryStore, bundled

LAYOUT = ChannelLayout(tuple((f"backbone.{i}.bn", 4) for i in range(14)))


@pytest.fixture()
def store_path(tmp_path):
    path = tmp_path / "run.fpstore"
    rows = np.random.default_rng(0).normal(0.4, 0.2, (6, LAYOUT.total))
    with GammaTrajectoryStore.create(
        path, LAYOUT, metadata={"model": "darknet"}, fingerprint="fp1", flush_every=4
    ) as store:
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
    data = json.loads(result.stdout)
    assert data.pop("values_check")["bad_values"] == 0  # the CLI adds the NaN/Inf check
    assert data == GammaTrajectoryStore.open(store_path).info()


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
    net = nn.Sequential(
        nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Conv2d(3, 2, 1), nn.BatchNorm2d(2)
    )
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
    _assert_one_line_error(
        _run("from-checkpoints", tmp_path / "c", *paths, "--steps", "1,x"),
        "--steps must be comma-separated training steps",
    )
    _assert_one_line_error(
        _run("from-checkpoints", tmp_path / "d", *paths, "--steps", "-5,1,2"), "whole numbers ≥ 0"
    )


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


@pytest.mark.parametrize("command", ["info", "verify", "import", "export", "from-checkpoints"])
def test_help_has_an_example(command):
    result = _run(command, "--help")
    assert result.exit_code == 0 and "Example:" in result.stdout
    assert "forecastprune store" in result.stdout


def _damage(path, row, channel, value):
    """Write a value into a committed segment, as a disk fault or another tool might."""
    segment = sorted(path.glob("seg-*-values.npy"))[0]
    values = np.load(segment, mmap_mode="r+")
    values[row, channel] = value
    values.flush()


def test_verify_passes_a_sound_store_and_info_says_it_checked(store_path):
    result = _run("verify", store_path)
    assert result.exit_code == 0, result.output
    assert "is sound: 6 snapshots × 56 channels, every γ finite" in result.stdout
    assert "values     all 6 snapshots finite" in _run("info", store_path).stdout


def test_nan_and_inf_inside_a_store_are_found_and_located(store_path):
    _damage(store_path, 1, 5, np.nan)  # step 10, backbone.1.bn channel 1
    _damage(store_path, 2, 0, np.inf)  # step 20, backbone.0.bn channel 0
    result = _run("verify", store_path)
    _assert_one_line_error(
        result,
        "2 NaN/Inf values in 2 snapshot(s), first at step 10, layer 'backbone.1.bn' channel 1: nan",
    )
    assert "step 20, layer 'backbone.0.bn' channel 0: inf" in result.stdout
    assert "backbone.0.bn" in result.stdout and "1 NaN/Inf" in result.stdout
    info = _run("info", store_path)
    assert info.exit_code == 0 and "values     DAMAGED: store" in info.stdout
    assert info.stderr.startswith("warning: ") and "first at step 10" in info.stderr
    data = json.loads(_run("info", "--json", store_path).stdout)
    assert data["values_check"]["scope"] == "all" and data["values_check"]["bad_values"] == 2
    compare = CliRunner().invoke(
        cli, ["compare", "--store", str(store_path), "--forecasters", "sma", "--cutoffs", "0.5"]
    )
    _assert_one_line_error(compare, "first at step 10, layer 'backbone.1.bn' channel 1")
    assert str(store_path) in compare.stderr and "store verify" in compare.stderr


def test_info_on_a_large_store_checks_only_the_final_snapshot(store_path, monkeypatch):
    monkeypatch.setattr(store_cmd, "_INFO_VERIFY_VALUES", 10)
    _damage(store_path, 1, 5, np.nan)  # not in the final snapshot: info cannot see it
    out = _run("info", store_path).stdout
    assert "final snapshot finite; `forecastprune store verify" in out


def test_import_rejects_a_non_zip_file_and_negative_steps(tmp_path):
    text = tmp_path / "notes.npz"
    text.write_text("steps,gammas\n0,1\n")
    _assert_one_line_error(_run("import", text, tmp_path / "a"), "is not an NPZ file (a zip")
    negative = tmp_path / "neg.npz"
    np.savez(
        negative,
        steps=np.array([-5, 0, 5]),
        gammas=np.ones((3, 2)),
        layer_names=np.array(["a"]),
        layer_sizes=np.array([2]),
    )
    _assert_one_line_error(
        _run("import", negative, tmp_path / "b"),
        "steps count training steps from 0; the first is -5",
    )
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_manifest_asking_for_a_huge_buffer_is_corrupt_not_an_allocation(store_path):
    manifest = json.loads((store_path / "manifest.json").read_text())
    manifest["flush_every"] = 2**63
    (store_path / "manifest.json").write_text(json.dumps(manifest))
    _assert_one_line_error(_run("info", store_path), "above the largest buffer")


def test_a_damaged_npy_header_is_one_line_in_a_store_and_in_an_npz(store_path, tmp_path):
    # numpy parses .npy headers with Python's tokenizer: a broken one raises TokenError
    segment = sorted(store_path.glob("seg-*-lrs.npy"))[0]
    raw = bytearray(segment.read_bytes())
    raw[10] = 0
    segment.write_bytes(bytes(raw))
    _assert_one_line_error(_run("info", store_path), "is unreadable or truncated")
    npz = tmp_path / "hdr.npz"
    with zipfile.ZipFile(npz, "w") as archive:
        archive.writestr("steps.npy", bytes(raw))
    _assert_one_line_error(_run("import", npz, tmp_path / "s"), "cannot read")
