"""Inputs a new user tried that ended in tracebacks, silence or misleading messages (issue 23,
items 5–7): each now ends in a correct result or one ``Error:`` line with exit code 2."""

from __future__ import annotations

import json
import shutil
import warnings
import zipfile

import _models  # noqa: F401  (one intra-op thread for the tests)
import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

from forecastprune.cli import cli
from forecastprune.compare.replay import replay
from forecastprune.compare.settings import ReplaySettings
from forecastprune.core.layout import ChannelLayout
from forecastprune.store import GammaTrajectoryStore, bundled_store_path
from forecastprune.store.timeline import run_length

LAYOUT = ChannelLayout((("a", 3), ("b", 3)))


def _run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _one_error_line(result, fragment):
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error")]
    assert len(errors) == 1 and fragment in errors[0], result.stderr


def _store(path, rows, **metadata):
    with GammaTrajectoryStore.create(path, LAYOUT, metadata=metadata, flush_every=8) as store:
        for i, row in enumerate(rows):
            store.append(10 * i, row, lr=0.1)
    return path


def _decaying(t=20):
    rates = np.random.default_rng(0).random(LAYOUT.total)
    return [np.exp(-rates * i / 10) for i in range(t)]


# ------------------------------------------------------------------ item 5: tracebacks
def test_ema_with_an_infinite_span_is_refused(tmp_path):
    _one_error_line(
        _run("forecast", "--forecaster", "ema(span=1e999)", "--out", tmp_path / "p.npz"),
        "span must be a number in [1.0, 1000000000000.0]",
    )


@pytest.mark.parametrize("alpha", ["nan", "inf"])
def test_fit_forecaster_refuses_non_finite_alpha(tmp_path, alpha):
    _one_error_line(
        _run(
            "fit-forecaster",
            "--stores",
            bundled_store_path(),
            "--alpha",
            alpha,
            "--out",
            tmp_path / "m.json",
        ),
        "--alpha",
    )


def test_fit_forecaster_names_the_nan_in_a_store(tmp_path):
    store = _store(tmp_path / "s.fpstore", _decaying())
    segment = sorted(store.glob("seg-*-values.npy"))[0]
    values = np.load(segment)
    values[3, 4] = np.nan
    np.save(segment, values)
    _one_error_line(_run("fit-forecaster", "--stores", store, "--out", tmp_path / "m.json"), "NaN")


def test_learned_model_nested_too_deep(tmp_path):
    model = tmp_path / "deep.json"
    model.write_text("[" * 100_000 + "]" * 100_000)
    _one_error_line(
        _run(
            "forecast",
            "--forecaster",
            f"learned(model={str(model)!r})",
            "--out",
            tmp_path / "p.npz",
        ),
        "RecursionError",
    )


@pytest.mark.parametrize("content", ["binary", "text"])
def test_train_and_compare_configs_that_are_not_utf8(tmp_path, content):
    config = tmp_path / "c.yaml"
    config.write_bytes(b"\xff\xfe\x00binary\x80" if content == "binary" else b"epochs: [1,\n")
    fragment = "not UTF-8 text" if content == "binary" else "not valid YAML"
    _one_error_line(_run("train", "--config", config), fragment)
    _one_error_line(_run("compare", "--config", config), fragment)


def test_prune_refuses_files_that_are_not_ultralytics_checkpoints(tmp_path):
    text, listing, other_zip = tmp_path / "a.pt", tmp_path / "b.pt", tmp_path / "c.pt"
    text.write_text("hello")
    torch.save([1, 2, 3], listing)
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("a.txt", "x")
    for path, fragment in (
        (text, "is not a torch checkpoint"),
        (listing, "not an ultralytics checkpoint"),
        (other_zip, "without a torch record"),
    ):
        _one_error_line(
            _run(
                "prune",
                "--ultralytics",
                path,
                "--store",
                bundled_store_path(),
                "--out",
                tmp_path / "o.pt",
            ),
            fragment,
        )


def test_models_too_wide_to_build_are_refused_before_allocating(tmp_path):
    store = tmp_path / "wide.fpstore"
    shutil.copytree(bundled_store_path(), store)
    manifest = json.loads((store / "manifest.json").read_text())
    manifest["metadata"]["model_kwargs"]["width"] = 1e6
    (store / "manifest.json").write_text(json.dumps(manifest))
    _one_error_line(
        _run("prune", "--store", store, "--random-init", "--out", tmp_path / "p.pt"),
        "the zoo builds at most 2,048",
    )
    config = tmp_path / "t.yaml"
    config.write_text(yaml.safe_dump({"method": "normal", "upscale": 200}))
    _one_error_line(_run("train", "--config", config), "upscale must be at most 16")


def test_train_with_nothing_recorded_before_the_prune(tmp_path):
    config = tmp_path / "t.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "method": "forecast",
                "forecaster": "naive",
                "prune_at": 0.5,
                "width": 0.5,
                "epochs": 1,
                "batch_size": 32,
                "train_subset": 64,
                "record_every": 100000,
            }
        )
    )
    _one_error_line(_run("train", "--config", config, "--quiet"), "record more often")


def test_record_refuses_more_threads_than_makes_sense(tmp_path):
    _one_error_line(_run("record", "--out", tmp_path / "r", "--threads", 100000), "--threads")


# ------------------------------------------------------------------ item 6: silent answers
def test_train_says_when_min_keep_prunes_nothing(tmp_path):
    config = tmp_path / "t.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "method": "forecast",
                "forecaster": "naive",
                "prune_at": 0.5,
                "width": 0.5,
                "epochs": 2,
                "batch_size": 32,
                "train_subset": 64,
                "min_keep": 1000000,
            }
        )
    )
    result = _run("train", "--config", config, "--quiet")
    assert result.exit_code == 0, result.output
    assert "the prune removed no channel: min_keep 1000000" in result.output


def test_compare_warns_when_the_final_gammas_tie_across_the_cut(tmp_path):
    store = _store(tmp_path / "flat.fpstore", [np.full(6, 0.5)] * 12)
    with GammaTrajectoryStore.open(store) as opened:
        result = replay(opened, ["sma"], ReplaySettings(cutoffs=(0.5,), ratios=(0.5,)))
    assert any(
        "cuts through 6 prunable channels whose final |γ| are all 0.5" in w for w in result.warnings
    ), result.warnings
    with GammaTrajectoryStore.open(bundled_store_path()) as opened:  # real runs: no such note
        real = replay(opened, ["naive"], ReplaySettings(cutoffs=(0.5,), ratios=(0.5,)))
    assert not any("cuts through" in w for w in real.warnings)


def test_total_steps_below_the_recording_is_not_used(tmp_path):
    store = _store(tmp_path / "s.fpstore", _decaying(), total_steps=50)
    with GammaTrajectoryStore.open(store) as opened, warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert run_length(opened) == 190  # the last recorded step, not 50
    assert any(
        "total_steps 50 is smaller than the last recorded step 190" in str(w.message) for w in seen
    )


def test_export_of_an_empty_store_is_refused(tmp_path):
    with GammaTrajectoryStore.create(tmp_path / "e.fpstore", LAYOUT):
        pass
    _one_error_line(
        _run("store", "export", tmp_path / "e.fpstore", tmp_path / "e.npz"), "has no snapshots"
    )
    assert not (tmp_path / "e.npz").exists()


# ------------------------------------------------------------------ item 7: messages
def test_compare_out_that_is_a_file_fails_before_the_work(tmp_path):
    taken = tmp_path / "plots"
    taken.write_text("x")
    result = _run("compare", "--forecasters", "arima", "--out", taken)
    _one_error_line(result, "is a file; --out names a folder")
    assert "compared" not in result.output  # refused before any replay


def test_json_dash_writes_the_report_to_stdout_and_the_table_to_stderr(tmp_path):
    result = CliRunner().invoke(
        cli,
        ["compare", "--forecasters", "sma", "--cutoffs", "0.3", "--json", "-"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert "sma" in json.dumps(report) and "IoU" in result.stderr
    assert not (tmp_path / "-").exists()


def test_store_write_failures_do_not_tell_a_cli_user_to_flush_again(tmp_path):
    import resource

    npz = tmp_path / "in.npz"
    rng = np.random.default_rng(0)
    np.savez(
        npz,
        steps=np.arange(1000),
        gammas=rng.random((1000, 6)).astype(np.float32),
        layer_names=np.array(LAYOUT.names),
        layer_sizes=np.array(LAYOUT.sizes),
    )
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        result = _run("store", "import", npz, tmp_path / "s.fpstore")
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    _one_error_line(result, "cannot write to store")
    assert "flush again" not in result.stderr and "file-size limit" in result.stderr
    assert not (tmp_path / "s.fpstore").exists()


def test_a_per_channel_forecaster_says_it_may_take_minutes(tmp_path):
    pytest.importorskip("statsforecast", reason="the statsforecast extra is not installed")
    result = _run("forecast", "--forecaster", "statsforecast:Naive", "--out", tmp_path / "p.npz")
    assert result.exit_code == 0, result.output
    assert "fits one model per channel (448 here)" in result.stderr
