"""The learned forecasters' domain check and their scale-free features, on real recorded runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import spearmanr

from forecastprune.cli import cli
from forecastprune.compare.suite import bundled_suite
from forecastprune.errors import ForecasterError
from forecastprune.forecasters import get_forecaster
from forecastprune.forecasters.domain import LIMIT, Domain
from forecastprune.forecasters.features import FEATURES
from forecastprune.forecasters.learned import bundled_model_path
from forecastprune.forecasters.training import fit_learned, fit_learned_gbr
from forecastprune.predict import predict_store
from forecastprune.store import GammaTrajectoryStore

SUITE_RUN = bundled_suite() / "vgg-s3e-3-step.fpstore"


def record(tmp_path, *args):
    out = tmp_path / "run"
    result = CliRunner().invoke(
        cli, ["record", "--out", str(out), "--no-progress", "--threads", "1", "--every", "3", *args]
    )
    assert result.exit_code == 0, result.output
    return out / "gammas.fpstore"


@pytest.mark.slow
def test_learned_models_fall_back_to_naive_outside_what_they_were_fitted_on(tmp_path):
    # models fitted on the suite's recipe only (SGD, γ at 0.5), as the first learned models
    # were; the bundled ones are fitted on a corpus that holds ultralytics-style runs too
    suite_runs = [
        bundled_suite() / f"{name}.fpstore" for name in ("vgg-s3e-3-step", "resnet-s3e-3-cos")
    ]
    models = {
        "learned": fit_learned(suite_runs, cutoffs=(0.1, 0.2)).save(tmp_path / "ridge.json"),
        "learned_gbr": fit_learned_gbr(suite_runs, cutoffs=(0.1, 0.2)).save(tmp_path / "gbr.skops"),
    }
    # ultralytics-style: AdamW, a long warm-up, γ at 1.0, few images. At 10 % the LR has
    # barely risen, so the horizon in cumulative LR is far longer than any the suite showed
    store_path = record(
        tmp_path,
        "--optimizer",
        "adamw",
        "--lr",
        "0.003",
        "--warmup",
        "0.3",
        "--lr-scheduler",
        "linear",
        "--gamma-init",
        "1.0",
        "--task",
        "digits-hard",
        "--epochs",
        "8",
        "--model",
        "vgg",
    )
    with GammaTrajectoryStore.open(store_path) as store:
        naive = predict_store(store, "naive", 0.1).scores
        for name, path in models.items():
            prediction = predict_store(store, f"{name}(model='{path}', gated=False)", 0.1)
            np.testing.assert_array_equal(prediction.scores, naive)
            assert prediction.note.startswith("naive: ") and "was fitted on" in prediction.note
    with GammaTrajectoryStore.open(SUITE_RUN) as store:
        naive = predict_store(store, "naive", 0.1).scores
        for name, path in models.items():  # inside the domain; the gates aside
            prediction = predict_store(store, f"{name}(model='{path}', gated=False)", 0.1)
            assert prediction.note.startswith(f"{name}: ") and not np.array_equal(
                prediction.scores, naive
            )


@pytest.mark.slow
def test_learned_does_not_reverse_the_ranking_of_an_adamw_run_with_gamma_at_one(tmp_path):
    # with γ at 1.0 the channels sit twice as close together relative to their mean as in the
    # suite's γ-0.5 runs; divided by the mean, the suite-fitted model pulled the top channels
    # below the bottom ones. Divided by the run's spread, the ranking holds
    store_path = record(
        tmp_path,
        "--optimizer",
        "adamw",
        "--lr",
        "0.003",
        "--warmup",
        "0.05",
        "--lr-scheduler",
        "cosine",
        "--gamma-init",
        "1.0",
        "--epochs",
        "30",
        "--task",
        "digits-hard",
        "--batch-size",
        "32",
        "--model",
        "vgg",
        "--sparsity",
        "5e-3",
    )
    with GammaTrajectoryStore.open(store_path) as store:
        final = np.abs(store.final()[1].astype(np.float64))
        for name in ("learned", "learned_gbr"):  # the models themselves, ungated
            prediction = predict_store(store, f"{name}(gated=False)", 0.2)
            assert prediction.note.startswith(f"{name}: ")  # applied, not fallen back
            assert spearmanr(prediction.scores, final)[0] > 0.5


def test_domain_round_trips_through_the_model_info_and_refuses_a_malformed_one(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 3))
    domain = Domain.of(x, ("a", "b", "c"))
    assert domain.check(x).share < 0.05 and domain.check(x).inside
    far = domain.check(x + np.array([0.0, 0.0, 10.0]))
    assert far.share > LIMIT and not far.inside and far.worst == "c"
    again = Domain.from_info(
        json.loads(json.dumps({"domain": domain.to_info()})), "m", ("a", "b", "c")
    )
    np.testing.assert_array_equal(again.low, domain.low)
    assert Domain.from_info({}, "m", ("a", "b", "c")) is None
    with pytest.raises(ForecasterError, match="features"):
        Domain.from_info({"domain": domain.to_info()}, "m", ("a", "b"))
    broken = {"domain": {**domain.to_info(), "high": [1.0, float("nan"), 2.0]}}
    with pytest.raises(ForecasterError, match="finite"):
        Domain.from_info(broken, "m", ("a", "b", "c"))


def test_the_bundled_models_carry_their_domain():
    info = json.loads(bundled_model_path().read_text())["info"]
    assert info["domain"]["features"] == list(FEATURES)
    assert get_forecaster("learned")._domain is not None
