"""One owner per setting: PruneSpec's defaults everywhere, RunPoint's meaning everywhere."""

from __future__ import annotations

import dataclasses
import inspect
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from forecastprune.cli import cli
from forecastprune.core.layout import ChannelLayout
from forecastprune.engine.spec import POLICIES, PruneSpec, field_names
from forecastprune.engine.threshold import select_channels
from forecastprune.errors import ConfigError, PruningError
from forecastprune.predict import cutoff_step
from forecastprune.runpoint import RunPoint
from forecastprune.store import GammaTrajectoryStore, bundled_store_path

SPEC_DEFAULTS = {f.name: f.default for f in dataclasses.fields(PruneSpec)}
COMMANDS_WITH_SPEC = ("compare", "prune", "forecast", "benchmark")


def _options(command: str) -> dict[str, object]:
    import click

    found = cli.get_command(click.Context(cli), command)
    return {p.name: p for p in found.params}


@pytest.mark.parametrize("command", COMMANDS_WITH_SPEC)
def test_every_prune_flag_is_generated_from_the_spec(command):
    options = _options(command)
    present = [name for name in field_names() if name in options]
    assert {"ratio", "policy", "min_keep", "group_reduce"} <= set(present)
    for name in present:
        option = options[name]
        # None: the spec (or a config file) fills it, so no command can carry its own default
        assert option.default in (None, ()), (command, name, option.default)
        shown = "none" if SPEC_DEFAULTS[name] is None else SPEC_DEFAULTS[name]
        if name == "ratio":
            shown = PruneSpec().ratio
        assert f"[default: {shown}]" in option.help, (command, name, option.help)


def test_config_files_and_apis_default_to_the_spec():
    from forecastprune.cli.compare_cmd import CompareConfig
    from forecastprune.compare.settings import ReplaySettings
    from forecastprune.integrations.ultralytics.callbacks import UltralyticsPruner
    from forecastprune.integrations.ultralytics.checkpoint import prune_ultralytics_checkpoint
    from forecastprune.pipeline import EarlyPruner
    from forecastprune.pipeline.train_config import TrainConfig

    spec = PruneSpec()
    compare = CompareConfig()
    assert compare.ratio == (spec.ratio,) and compare.policy == spec.policy
    assert (compare.min_keep, compare.min_fraction, compare.round_to, compare.group_reduce) == (
        spec.min_keep,
        spec.min_fraction,
        spec.round_to,
        spec.group_reduce,
    )
    assert ReplaySettings().spec == spec
    assert TrainConfig().prune_spec() == spec
    for name in field_names():  # the train config's keys are the spec's fields, same defaults
        assert getattr(TrainConfig(), name) == SPEC_DEFAULTS[name], name
    for api in (EarlyPruner, UltralyticsPruner, prune_ultralytics_checkpoint):
        parameters = inspect.signature(api).parameters
        assert parameters["spec"].default is None  # None: PruneSpec()
        assert not {"ratio", "policy", "min_keep", "uncertainty"} & set(parameters), api
        assert parameters["forecaster"].default == "auto", api


def test_compare_and_prune_use_the_same_policy_without_flags(tmp_path):
    runner = CliRunner()
    report = tmp_path / "c.json"
    compared = runner.invoke(
        cli, ["compare", "--forecasters", "sma", "--cutoffs", "0.3", "--json", str(report)]
    )
    assert compared.exit_code == 0, compared.output
    pruned = runner.invoke(
        cli,
        [
            "prune",
            "--forecaster",
            "sma",
            "--cutoff",
            "0.3",
            "--random-init",
            "--out",
            str(tmp_path / "p.pt"),
        ],
    )
    assert pruned.exit_code == 0, pruned.output
    policy = json.loads(report.read_text())["settings"]["spec"]["policy"]
    assert policy == PruneSpec().policy == "seed"
    assert f"policy {policy}: pruned" in pruned.output


FORMS = [0.3, "0.3", 1.0, 1, "1.0", "step:7", "STEP:7", " 0.05 "]


@pytest.mark.parametrize("value", FORMS)
def test_prune_at_and_cutoff_read_every_form_alike(value):
    for length in (1, 20, 1320):
        assert RunPoint.parse(value).resolve(length) == cutoff_step(value, length)
    if not str(value).strip().lower().startswith("step:"):
        assert RunPoint.parse(value).resolve(1320) == round(float(value) * 1320)  # 1.0: the end


@pytest.mark.parametrize(
    "value, match",
    [
        (120, "write 'step:120'"),
        ("120", "write 'step:120'"),
        (0, "expected a fraction"),
        (1.5, "expected a fraction"),
        ("soon", "expected a fraction"),
        (True, "expected"),
        (float("nan"), "expected"),
        ("step:-1", "whole step number"),
    ],
)
def test_prune_at_and_cutoff_refuse_the_same_things(value, match):
    with pytest.raises(ConfigError, match=match):
        RunPoint.parse(value)
    with pytest.raises(ConfigError, match=match):
        cutoff_step(value, 100)


def test_timing_rules_are_prune_points_not_cutoffs():
    assert RunPoint.parse("confidence").rule == "confidence"
    assert RunPoint.parse("auto").rule == "stability"  # the rule's older name
    with pytest.raises(ConfigError, match="timing rule"):
        cutoff_step("stability", 100)
    with pytest.raises(ConfigError, match="names no fixed step"):
        RunPoint.parse("stability").resolve(100)


def test_a_prune_at_of_one_prunes_at_the_end_as_a_cutoff_of_one_sees_the_whole_run():
    from forecastprune.pipeline import EarlyPruner
    from forecastprune.zoo import build_model, load_digits_split

    split = load_digits_split(seed=0)
    digits = split.x_train, split.y_train
    model = build_model("vgg", width=0.25)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = digits[0][:16], digits[1][:16]
    pruner = EarlyPruner(
        model,
        optimizer,
        forecaster="naive",
        prune_at=1.0,
        total_steps=4,
        example_inputs=x[:1],
        sparsity=0.0,
    )
    for step in range(1, 5):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        model, optimizer = pruner.step(step)
    assert pruner.pruned_at == 4
    with GammaTrajectoryStore.open(bundled_store_path()) as store:
        assert cutoff_step(1.0, 1320) == 1320 == int(store.steps[-1])


@settings(max_examples=60, deadline=None)
@given(
    ratio=st.floats(0, 1),
    sizes=st.lists(st.integers(1, 12), min_size=1, max_size=5),
    seed=st.integers(0, 10**6),
)
def test_a_ratio_spec_prunes_its_share_of_free_channels(ratio, sizes, seed):
    layout = ChannelLayout(tuple((f"l{i}", n) for i, n in enumerate(sizes)))
    scores = np.random.default_rng(seed).random(layout.total)
    decision = select_channels(scores, layout, PruneSpec(ratio=ratio, min_keep=1))
    wanted = min(layout.total, int(np.floor(ratio * layout.total + 0.5)))
    assert decision.requested == wanted
    assert decision.n_pruned <= wanted  # floors only give channels back
    assert all(r.kept >= 1 for r in decision.report)


@settings(max_examples=80, deadline=None)
@given(
    ratio=st.one_of(st.floats(allow_nan=True), st.integers(-3, 3)),
    policy=st.sampled_from([*POLICIES, "loose", ""]),
    min_keep=st.integers(-2, 3),
)
def test_the_spec_accepts_exactly_the_documented_ranges(ratio, policy, min_keep):
    valid = (0 <= ratio <= 1) and policy in POLICIES and min_keep >= 1
    if valid:
        assert PruneSpec(ratio=ratio, policy=policy, min_keep=min_keep).ratio == ratio
    else:
        with pytest.raises(PruningError):
            PruneSpec(ratio=ratio, policy=policy, min_keep=min_keep)


def test_replacing_a_ratio_by_a_threshold_and_back():
    spec = PruneSpec(ratio=0.3, policy="grouped")
    by_threshold = spec.replace(threshold=0.1)
    assert by_threshold.ratio is None and by_threshold.policy == "grouped"
    assert by_threshold.replace(ratio=0.2).threshold is None
    with pytest.raises(PruningError, match="a cut needs policy"):
        PruneSpec(policy="none").coupling_policy()
    with pytest.raises(PruningError, match="unknown prune setting"):
        PruneSpec.from_mapping({"ratios": 0.2})
