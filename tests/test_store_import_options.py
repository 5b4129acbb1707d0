"""``store import --metadata/--lr-schedule``: runs without recorded LRs get a clock."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from forecastprune.cli import cli
from forecastprune.errors import ConfigError
from forecastprune.predict import predict_store
from forecastprune.store import GammaTrajectoryStore
from forecastprune.store.import_options import parse_lr_schedule, parse_metadata_items


def test_metadata_items_keep_json_types():
    parsed = parse_metadata_items(["total_steps=600", "model=vgg", "ok=true", "w=[1,2]", "e="])
    assert parsed == {"total_steps": 600, "model": "vgg", "ok": True, "w": [1, 2], "e": ""}
    with pytest.raises(ConfigError, match="key=value"):
        parse_metadata_items(["no-equals"])


def test_lr_schedule_forms(tmp_path):
    expected = [[0, 0.1], [300, 0.01]]
    assert parse_lr_schedule("0:0.1,300:0.01") == expected
    assert parse_lr_schedule("[[0, 0.1], [300, 0.01]]") == expected
    (tmp_path / "s.json").write_text("[[0, 0.1], [300, 0.01]]")
    assert parse_lr_schedule(str(tmp_path / "s.json")) == expected
    with pytest.raises(ConfigError, match="lr-schedule"):
        parse_lr_schedule("300:0.1,0:0.01")


def test_import_with_a_schedule_enables_the_lr_axis_and_reports_unkept_arrays(tmp_path):
    rng = np.random.default_rng(0)
    npz = tmp_path / "run.npz"
    np.savez(
        npz,
        steps=np.arange(0, 60, 6),
        gammas=rng.uniform(0.1, 1, (10, 6)),
        layer_names=np.array(["a", "b"]),
        layer_sizes=np.array([3, 3]),
        epochs=np.ones(3),
    )
    plain, timed = tmp_path / "plain.fpstore", tmp_path / "timed.fpstore"
    runner = CliRunner()
    assert runner.invoke(cli, ["store", "import", str(npz), str(plain)]).exit_code == 0
    result = runner.invoke(
        cli,
        [
            "store",
            "import",
            str(npz),
            str(timed),
            "--lr-schedule",
            "0:0.1,30:0.01",
            "--metadata",
            "total_steps=60",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "not kept" in result.output and "epochs" in result.output
    with GammaTrajectoryStore.open(plain) as store:
        with pytest.raises(Exception, match="LR|lr"):
            predict_store(store, "linear(time_axis=lr, window=3)", 0.5)
        assert predict_store(store, "auto", 0.5).scores.shape == (6,)  # the clock is optional
    with GammaTrajectoryStore.open(timed) as store:
        assert store.metadata["total_steps"] == 60
        prediction = predict_store(store, "linear(time_axis=lr, window=3)", 0.5)
        assert prediction.scores.shape == (6,) and prediction.target_step == 60
