"""``learned_gbr``: layer features, a ranking model saved with skops (trusted types only), and
the layout every store-based path hands over."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from click.testing import CliRunner

from forecastprune.cli import cli
from forecastprune.compare.suite import bundled_suite
from forecastprune.errors import ForecasterError
from forecastprune.forecasters import get_forecaster
from forecastprune.forecasters.boosted import FORMAT, VERSION, BoostedModel
from forecastprune.forecasters.candidates import Window
from forecastprune.forecasters.features import (
    FEATURES,
    LAYER_FEATURES,
    from_ranks,
    layered_features,
    rank_target,
)
from forecastprune.forecasters.learned import LAYERED
from forecastprune.predict import attach_layout, predict_history, predict_store
from forecastprune.store import GammaTrajectoryStore

RUN = bundled_suite() / "vgg-w0.5-s3e-3-cos.fpstore"


def window(layers: np.ndarray | None) -> Window:
    """Three snapshots of five channels in two layers (3 + 2 channels)."""
    values = np.array(
        [[1.0, 0.9, 0.8, 0.5, 0.4], [0.9, 0.8, 0.8, 0.5, 0.3], [0.8, 0.6, 0.7, 0.4, 0.2]]
    )
    steps = np.array([0.0, 10.0, 20.0])
    return Window(steps, steps, values, 100.0, 100.0, layers)


def toy_booster(**params) -> BoostedModel:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, len(LAYERED)))
    y = (x[:, 0] > 0).astype(float) + 0.1 * x[:, 1]
    return BoostedModel.fit(x, y, LAYERED, {"trained_on": ["toy"]}, max_iter=10, **params)


def test_layer_columns_are_layer_level_rank_within_layer_depth_and_signed_volatility():
    w = window(np.array([0, 0, 0, 1, 1]))
    x = layered_features(w)
    assert x.shape == (5, len(FEATURES) + len(LAYER_FEATURES))
    layer_level, within, depth, side = x[:, len(FEATURES) :].T
    last = w.values[-1]
    scale, mean = last.std(), last.mean()  # centred on the run's mean, in units of its spread
    np.testing.assert_allclose(layer_level, [(0.7 - mean) / scale] * 3 + [(0.3 - mean) / scale] * 2)
    np.testing.assert_allclose(within, [1.0, 0.0, 0.5, 1.0, 0.0])
    np.testing.assert_allclose(depth, [0, 0, 0, 1, 1])
    volatility, percentile = x[:, FEATURES.index("volatility")], x[:, 1]
    np.testing.assert_allclose(side, volatility * (percentile - 0.5))
    with pytest.raises(ValueError, match="layer"):
        layered_features(window(None))


def test_from_ranks_hands_out_the_current_values_in_the_predicted_order():
    w = window(None)
    out = from_ranks(w, np.array([5.0, 1.0, 4.0, 2.0, 3.0]))
    np.testing.assert_allclose(np.sort(out), np.sort(w.values[-1]))
    np.testing.assert_array_equal(np.argsort(out), [1, 3, 4, 2, 0])
    np.testing.assert_allclose(rank_target(np.array([3.0, 1.0, 2.0])), [1.0, 0.0, 0.5])


@pytest.mark.slow
def test_boosted_model_round_trips_through_skops(tmp_path):
    model = toy_booster()
    model.save(tmp_path / "m.skops")
    loaded = BoostedModel.load(tmp_path / "m.skops", LAYERED)
    probe = np.random.default_rng(3).normal(size=(9, len(LAYERED)))
    np.testing.assert_array_equal(loaded.predict(probe), model.predict(probe))
    assert loaded.info == {"trained_on": ["toy"]}


def test_a_file_asking_for_untrusted_types_is_refused_before_it_is_built(tmp_path):
    import skops.io as sio

    payload = {
        "format": FORMAT,
        "version": VERSION,
        "features": list(LAYERED),
        "info": {},
        "estimator": functools.partial(print, "loaded"),
    }
    (tmp_path / "evil.skops").write_bytes(sio.dumps(payload))
    with pytest.raises(ForecasterError, match="refusing"):
        BoostedModel.load(tmp_path / "evil.skops", LAYERED)


@pytest.mark.parametrize(
    "edit, message",
    [
        ({"format": "other"}, "not a forecastprune"),
        ({"version": 99}, "version"),
        ({"features": ["x"]}, "features"),
    ],
)
def test_bad_model_files_are_refused_with_a_reason(tmp_path, edit, message):
    import skops.io as sio

    model = toy_booster()
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "features": list(LAYERED),
        "info": {},
        "estimator": model.estimator,
        **edit,
    }
    data = sio.dumps(payload)
    (tmp_path / "bad.skops").write_bytes(data)
    with pytest.raises(ForecasterError, match=message):
        BoostedModel.load(tmp_path / "bad.skops", LAYERED)
    with pytest.raises(ForecasterError, match="cannot read"):
        BoostedModel.load(tmp_path / "missing.skops", LAYERED)
    (tmp_path / "junk.skops").write_bytes(b"not a zip archive")
    with pytest.raises(ForecasterError, match="cannot read"):
        BoostedModel.load(tmp_path / "junk.skops", LAYERED)


def test_learned_gbr_needs_the_layout_and_says_how_to_give_it():
    with GammaTrajectoryStore.open(RUN) as store:
        steps, gammas = store.history()
        sizes = store.layout.sizes
    model = get_forecaster("learned_gbr")
    assert model.get_tag("uses_layout")
    with pytest.raises(ForecasterError, match="layout"):
        predict_history(model, steps[:20], gammas[:20], int(steps[-1]))
    with pytest.raises(ForecasterError, match="channels"):
        predict_history(model.set_layout([3, 4]), steps[:20], gammas[:20], int(steps[-1]))
    given = attach_layout(get_forecaster("learned_gbr"), store.layout)
    assert given.layer_of_channel(sum(sizes)).max() == len(sizes) - 1
    untouched = attach_layout(get_forecaster("naive"), store.layout)
    assert untouched.layer_of_channel(sum(sizes)) is None


def test_learned_gbr_reorders_the_current_values_through_a_store():
    with GammaTrajectoryStore.open(RUN) as store:
        prediction = predict_store(store, "learned_gbr(gated=False)", 0.1)
        naive = predict_store(store, "naive", 0.1)
    np.testing.assert_allclose(np.sort(prediction.scores), np.sort(naive.scores))
    # a model that only copied the current order would be worthless: it moves channels
    assert not np.array_equal(np.argsort(prediction.scores), np.argsort(naive.scores))


def test_the_forecast_reuses_the_domain_checks_columns_only_for_the_same_window():
    from forecastprune.forecasters.features import ranking_features
    from forecastprune.forecasters.learned import _gbr_apply, bundled_model_path

    path = str(bundled_model_path("learned-gbr-corpus.skops"))
    with GammaTrajectoryStore.open(RUN) as store:
        steps, gammas = store.history()
        layers = np.repeat(np.arange(len(store.layout.sizes)), store.layout.sizes)
    head = np.abs(gammas[:20].astype(float))
    w = Window(steps[:20], steps[:20].astype(float), head, steps[-1], float(steps[-1]), layers)
    fresh = _gbr_apply(w, path)
    assert not np.array_equal(fresh, head[-1])  # the model moves channels on this run
    np.testing.assert_array_equal(_gbr_apply(w, path, seen=(w, ranking_features(w))), fresh)
    # columns computed for another window are never used for this one
    other = Window(w.steps, w.t, w.values, w.target_step, w.target_t, layers)
    shifted = np.roll(ranking_features(w), 7, axis=0)
    assert not np.array_equal(_gbr_apply(w, path, seen=(w, shifted)), fresh)
    np.testing.assert_array_equal(_gbr_apply(w, path, seen=(other, shifted)), fresh)


def test_fit_forecaster_gbr_writes_a_model_learned_gbr_loads(tmp_path):
    other = bundled_suite() / "resnet-s3e-3-cos.fpstore"
    out = tmp_path / "new-folder" / "m.skops"  # the folder is created, as for ridge models
    result = CliRunner().invoke(
        cli,
        [
            "fit-forecaster",
            "--kind",
            "gbr",
            "--stores",
            str(other),
            "--out",
            str(out),
            "--cutoffs",
            "0.1,0.2",
        ],
    )
    assert result.exit_code == 0, result.output
    assert BoostedModel.load(out, LAYERED).info["trained_on"] == ["resnet-s3e-3-cos.fpstore"]
    with GammaTrajectoryStore.open(RUN) as store:
        scores = predict_store(store, f"learned_gbr(model='{out}')", 0.2).scores
    assert scores.shape == (sum(store.layout.sizes),)


def test_fit_forecaster_gbr_weighs_runs_alike_by_default_and_refuses_other_weightings(tmp_path):
    stores = [bundled_suite() / f"{name}.fpstore" for name in ("resnet-s3e-3-cos", "vgg-s5e-3-cos")]
    base = ["fit-forecaster", "--kind", "gbr", "--cutoffs", "0.1"]
    base += [arg for store in stores for arg in ("--stores", str(store))]
    runner = CliRunner()
    for weighting in (None, "channel"):
        out = tmp_path / f"{weighting}.skops"
        extra = [] if weighting is None else ["--weighting", weighting]
        assert runner.invoke(cli, [*base, "--out", str(out), *extra]).exit_code == 0
        assert BoostedModel.load(out, LAYERED).info["weighting"] == (weighting or "run")
    bad = runner.invoke(cli, [*base, "--out", str(tmp_path / "x.skops"), "--weighting", "layer"])
    assert bad.exit_code == 2 and "'layer' is not one of 'channel', 'run'" in bad.output
    assert not (tmp_path / "x.skops").exists()
