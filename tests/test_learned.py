"""Learned cross-channel forecasters: JSON models (no pickle), fitting on runs, in-run ridge."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from forecastprune.cli import cli
from forecastprune.compare.suite import bundled_suite
from forecastprune.errors import ForecasterError
from forecastprune.forecasters import get_forecaster
from forecastprune.forecasters.candidates import Window
from forecastprune.forecasters.features import FEATURES, channel_features, from_change
from forecastprune.forecasters.learned import GlobalRidgeForecaster, bundled_model_path
from forecastprune.forecasters.ridge import RidgeModel
from forecastprune.forecasters.training import fit_learned
from forecastprune.predict import predict_store
from forecastprune.store import GammaTrajectoryStore
from forecastprune.store.bundled import bundled_store_path

RUNS = [bundled_suite() / f"{name}.fpstore" for name in ("vgg-w0.5-s3e-3-cos", "resnet-s3e-3-cos")]


def toy_model(seed: int = 0) -> RidgeModel:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, len(FEATURES)))
    y = x @ rng.normal(size=len(FEATURES)) + 0.1 * rng.normal(size=200)
    return RidgeModel.fit(x, y, FEATURES, alpha=0.01, info={"trained_on": ["toy"]})


def test_ridge_recovers_coefficients_and_round_trips_through_plain_json(tmp_path):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 3))
    model = RidgeModel.fit(x, 2.0 + x @ [1.0, -2.0, 0.5], ("a", "b", "c"), alpha=0.0)
    np.testing.assert_allclose(model.predict(x[:5]), 2.0 + x[:5] @ [1.0, -2.0, 0.5])
    path = toy_model().save(tmp_path / "m.json")
    text = path.read_text()
    assert text.lstrip().startswith("{") and json.loads(text)["format"] == "forecastprune-ridge"
    loaded = RidgeModel.load(path, expected=FEATURES)
    probe = np.random.default_rng(2).normal(size=(7, len(FEATURES)))
    np.testing.assert_array_equal(loaded.predict(probe), toy_model().predict(probe))
    assert loaded.info == {"trained_on": ["toy"]}


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.update(format="pickle"), "format"),
        (lambda d: d.update(version=99), "version"),
        (lambda d: d.update(coef=d["coef"][:-1]), "coef"),
        (lambda d: d.update(features=["x"] * len(d["features"])), "features"),
        (lambda d: d.update(std=[0.0] * len(d["std"])), "std"),
    ],
)
def test_bad_model_files_are_refused_with_a_reason(tmp_path, edit, message):
    data = toy_model().to_json()
    edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ForecasterError, match=message):
        RidgeModel.load(path, expected=FEATURES)
    with pytest.raises(ForecasterError, match="fit-forecaster"):
        RidgeModel.load(tmp_path / "missing.json")


def test_fit_on_runs_then_forecast_by_spec(tmp_path):
    model = fit_learned(RUNS, cutoffs=(0.1,))
    assert model.info["trained_on"] == [p.name for p in RUNS] and model.info["examples"] > 0
    path = model.save(tmp_path / "model.json")
    forecaster = get_forecaster(f"learned(model='{path}')")
    rng = np.random.default_rng(0)
    values = np.abs(0.5 + np.cumsum(rng.normal(0, 0.01, (20, 40)), axis=0))
    predicted = forecaster.fit(np.arange(20) * 5, values).predict(400)
    assert predicted.shape == (40,) and np.all(predicted > 0) and np.all(np.isfinite(predicted))
    assert get_forecaster("learned").model_path == bundled_model_path()


def test_fit_forecaster_command_writes_a_model(tmp_path):
    out = tmp_path / "m.json"
    args = ["fit-forecaster", "--out", str(out), "--cutoffs", "0.1,0.2"]
    args += [a for run in RUNS for a in ("--stores", str(run))]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert RidgeModel.load(out, FEATURES).info["cutoffs"] == ["0.1", "0.2"]


def test_squash_keeps_the_order_of_channels_predicted_below_zero():
    values = np.tile([0.5, 0.4, 0.3, 0.2], (5, 1)) + np.linspace(0, 0.01, 5)[:, None]
    window = Window(np.arange(5.0), np.arange(5.0), values, 10.0, 10.0)
    out = from_change(window, np.array([-6.0, -7.0, -8.0, 0.0]))  # in units of the spread
    assert np.all(out > 0) and list(np.argsort(out)) == [2, 1, 0, 3]
    still = Window(np.arange(5.0), np.arange(5.0), values[:, :1] * 0 + 0.5, 10.0, 10.0)
    np.testing.assert_array_equal(from_change(still, np.array([-3.0])), [0.5])


def test_global_ridge_learns_a_steady_drift_and_falls_back_on_short_histories():
    steps = np.arange(0, 200, 2)
    rng = np.random.default_rng(3)
    start, rate = rng.uniform(0.5, 1.0, 200), rng.uniform(0, 2e-3, 200)
    values = np.abs(start - np.outer(steps, rate))
    model = GlobalRidgeForecaster().fit(steps[:40], values[:40])
    predicted = model.predict(int(steps[-1]))
    assert model.fitted_on_ == 3
    assert np.corrcoef(predicted, values[-1])[0, 1] > np.corrcoef(values[39], values[-1])[0, 1]
    short = GlobalRidgeForecaster().fit(steps[:3], values[:3])
    np.testing.assert_array_equal(short.predict(198), values[2])
    assert channel_features(
        Window(steps[:3] * 1.0, steps[:3] * 1.0, values[:3], 9.0, 9.0)
    ).shape == (200, len(FEATURES))


def test_global_ridge_ignores_a_feature_constant_up_to_rounding():
    # on the bundled run at 20 % every backtest matches the real horizon ratio, so the
    # horizon_ratio column varies by ~1e-15 only; scaled by its "std" it used to put every
    # channel at 0 (measured before the relative-spread guard: all 448 predictions 0.0)
    with GammaTrajectoryStore.open(bundled_store_path()) as store:
        scores = predict_store(store, "global_ridge", 0.2).scores
        last = np.abs(store.view(until_step=store.steps[-1])[-1])
    assert np.ptp(scores) > 0.1 and np.mean(scores < 1e-3) < 0.5
    assert np.corrcoef(scores, last)[0, 1] > 0.5
    x = np.column_stack([np.arange(50.0), np.full(50, 0.3) + 1e-16 * np.arange(50)])
    model = RidgeModel.fit(x, 2.0 * np.arange(50.0), ("a", "b"), alpha=0.0)
    assert model.coef[1] == 0.0 and model.std[1] == 1.0
    np.testing.assert_allclose(model.predict(np.array([[10.0, 7.0]])), [20.0])
