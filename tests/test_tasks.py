"""The named digits tasks, the train config's ``task`` and ``eval_every`` keys."""

from __future__ import annotations

import pytest
import torch

from forecastprune.errors import ConfigError
from forecastprune.pipeline.run import run_config
from forecastprune.pipeline.train_config import TrainConfig
from forecastprune.pipeline.trainer import Trainer
from forecastprune.zoo import build_model, make_loaders
from forecastprune.zoo.data import TASKS, get_task


def test_digits_hard_trains_on_a_fifth_and_tests_on_the_rest() -> None:
    easy, hard = TASKS["digits"].split(), TASKS["digits-hard"].split()
    assert (len(easy.y_train), len(easy.y_test)) == (1437, 360)
    assert (len(hard.y_train), len(hard.y_test)) == (359, 1438)
    # stratified: every class in the small training set, in about its share
    counts = torch.bincount(hard.y_train, minlength=10)
    assert counts.min() >= 34 and counts.max() <= 38
    # the same split for every call (runs are compared on the same test images)
    assert torch.equal(hard.x_test, TASKS["digits-hard"].split().x_test)
    assert TASKS["digits-hard"].noise_std > TASKS["digits"].noise_std
    assert TASKS["digits-hard"].max_shift > TASKS["digits"].max_shift


def test_unknown_task_names_the_valid_ones() -> None:
    with pytest.raises(
        ConfigError,
        match="unknown task 'mnist'; expected one of digits, digits-hard, mnist1d, shapes$",
    ):
        get_task("mnist")
    with pytest.raises(
        ConfigError, match="task must be one of digits, digits-hard, mnist1d, shapes; got 'hard'"
    ):
        TrainConfig(task="hard")
    with pytest.raises(ConfigError, match="eval_every must be >= 1"):
        TrainConfig(eval_every=0)


def test_eval_every_skips_epochs_but_always_scores_the_last() -> None:
    torch.manual_seed(0)
    split = TASKS["digits-hard"].split()
    train, test = make_loaders(split, batch_size=64)
    model = build_model("vgg", width=0.25)
    trainer = Trainer(
        model,
        torch.optim.SGD(model.parameters(), lr=0.05),
        train,
        test,
        epochs=3,
        eval_every=2,
        progress=False,
    )
    result = trainer.fit()
    scored = [e.test_accuracy is not None for e in result.epochs]
    assert scored == [False, True, True]
    assert result.accuracy == result.epochs[-1].test_accuracy == trainer.evaluate()
    with pytest.raises(ConfigError, match="eval_every"):
        Trainer(model, trainer.optimizer, train, test, epochs=1, eval_every=0)


def test_a_run_on_digits_hard_uses_its_split() -> None:
    config = TrainConfig(
        method="normal",
        model="vgg",
        width=0.25,
        task="digits-hard",
        epochs=1,
        batch_size=64,
        eval_every=1,
    )
    run = run_config(config, progress=False)
    assert run.total_steps == 359 // 64
    # the accuracy is a count of the 1,438 test images
    assert round(run.accuracy * 1438, 6) == int(round(run.accuracy * 1438))


def test_a_run_on_the_shapes_task_trains_a_colour_model() -> None:
    config = TrainConfig(
        method="slimming", model="resnet", width=0.25, task="shapes", epochs=1, train_subset=128
    )
    run = run_config(config, progress=False)
    assert run.total_steps == 128 // 64
    # the accuracy is a count of the 512 test images
    assert round(run.accuracy * 512, 6) == int(round(run.accuracy * 512))
