"""`forecastprune compare` through click's CliRunner: outputs, config, and every error path."""

from __future__ import annotations

import csv
import io
import json

import matplotlib.image
import pytest
from _replay_data import linear_store
from click.testing import CliRunner

from forecastprune.cli import cli
from forecastprune.errors import ConfigError
from forecastprune.testing import isolated_registry

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

PLUGIN = """
import time
import numpy as np
from forecastprune.forecasters import Forecaster, register_forecaster

@register_forecaster("raiser")
class Raiser(Forecaster):
    def _fit(self, t, values):
        raise RuntimeError("plugin exploded")

@register_forecaster("nanner")
class Nanner(Forecaster):
    def _fit(self, t, values):
        self.width = values.shape[1]
    def _predict(self, target_t):
        return np.full(self.width, np.nan)

@register_forecaster("sleeper")
class Sleeper(Forecaster):
    def _fit(self, t, values):
        time.sleep(30)
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return str(linear_store(tmp_path_factory.mktemp("cli") / "line.fpstore"))


@pytest.fixture
def plugin(tmp_path):
    path = tmp_path / "bad_plugins.py"
    path.write_text(PLUGIN)
    return str(path)


def run(*args):
    with isolated_registry():  # plugin loads must not leak into other tests
        return CliRunner().invoke(cli, ["compare", *args])


@pytest.mark.slow
def test_full_report_json_csv_plots_html(store, tmp_path):
    out = tmp_path / "report"
    result = run(
        "--store",
        store,
        "--forecasters",
        "linear(window=5),sma",
        "--cutoffs",
        "0.3,0.5",
        "--ratio",
        "0.5",
        "--ratio",
        "0.75",
        "--json",
        str(tmp_path / "r.json"),
        "--csv",
        str(tmp_path / "r.csv"),
        "--out",
        str(out),
        "--html",
    )
    assert result.exit_code == 0, result.output
    assert "ratio 0.5, policy none: the oracle prunes 4 of 8" in result.output
    assert "1.000*" in result.output  # linear extrapolates the straight lines exactly

    data = json.loads((tmp_path / "r.json").read_text())
    assert data["forecasters"] == ["naive", "linear(window=5)", "sma"]
    assert len(data["rows"]) == 3 * 2 * 2
    assert [o["best"]["50%"] for o in data["oracle"]] == ["linear(window=5)"] * 2
    row = next(
        r
        for r in data["rows"]
        if r["forecaster"] == "naive" and r["cutoff"] == "50%" and r["ratio"] == 0.5
    )
    assert row["iou"] == pytest.approx(0.6) and row["best"] is False

    lines = list(csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text())))
    assert len(lines) == 12 and float(lines[0]["iou"]) <= 1.0
    assert {line["forecaster"] for line in lines} == {"naive", "linear(window=5)", "sma"}

    for name in ("iou_vs_cutoff.png", "gamma_evolution.png", "layer_pruned.png"):
        assert (out / name).read_bytes().startswith(PNG_MAGIC)
        height, width, _ = matplotlib.image.imread(out / name).shape  # decodes: a valid PNG
        assert height > 200 and width > 300
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3 and "linear(window=5)" in page


def test_specs_with_commas_inside_parentheses(store):
    result = run("--store", store, "--forecasters", "arima(p=1,d=1,q=0),sma", "--cutoffs", "0.5")
    assert result.exit_code == 0, result.output
    assert "arima(p=1,d=1,q=0)" in result.output and "sma" in result.output


@pytest.mark.slow
def test_all_runs_every_registered_forecaster(store, tmp_path):
    result = run(
        "--store",
        store,
        "--forecasters",
        "all",
        "--cutoffs",
        "0.5",
        "--json",
        str(tmp_path / "r.json"),
    )
    assert result.exit_code == 0, result.output
    names = json.loads((tmp_path / "r.json").read_text())["forecasters"]
    assert {"naive", "sma", "ema", "linear", "arima"} <= set(names)


def test_unwritable_output_is_one_line(store, tmp_path):
    (tmp_path / "file").write_text("in the way")
    line = _one_error_line(
        run(
            "--store",
            store,
            "--cutoffs",
            "0.5",
            "--forecasters",
            "sma",
            "--json",
            str(tmp_path / "file" / "r.json"),
        )
    )
    assert "cannot write" in line


@pytest.mark.slow
def test_failing_plugins_show_as_failed_while_others_complete(store, plugin, tmp_path):
    result = run(
        "--store",
        store,
        "--plugins",
        plugin,
        "--forecasters",
        "raiser,nanner,sleeper,sma",
        "--cutoffs",
        "0.3,0.5",
        "--timeout",
        "1",
        "--json",
        str(tmp_path / "r.json"),
    )
    assert result.exit_code == 0, result.output
    assert "RuntimeError: plugin exploded" in result.output
    assert "returned 8 NaN/Inf values" in result.output
    assert "timed out after 1 s" in result.output
    rows = json.loads((tmp_path / "r.json").read_text())["rows"]
    assert all(
        r["error"] is None and r["iou"] is not None for r in rows if r["forecaster"] == "sma"
    )
    assert all(r["error"] and r["iou"] is None for r in rows if r["forecaster"] == "raiser")


def test_all_requested_failing_exits_non_zero(store, plugin):
    result = run(
        "--store", store, "--plugins", plugin, "--forecasters", "raiser", "--cutoffs", "0.5"
    )
    assert result.exit_code == 1
    assert "every requested forecaster failed" in result.output


def _one_error_line(result):
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1
    return lines[0]


def test_missing_store_is_one_line(tmp_path):
    line = _one_error_line(run("--store", str(tmp_path / "nope.fpstore")))
    assert "nope.fpstore" in line


def test_corrupt_store_is_one_line(tmp_path):
    bad = tmp_path / "bad.fpstore"
    bad.mkdir()
    (bad / "manifest.json").write_text("{not json")
    _one_error_line(run("--store", str(bad)))


def test_unknown_forecaster_lists_valid_ones(store):
    line = _one_error_line(run("--store", store, "--forecasters", "smaa"))
    assert "smaa" in line and "'sma'" in line and "linear" in line


@pytest.mark.parametrize(
    "args, message",
    [
        (["--cutoffs", "0.5,abc"], "expected a fraction of the run"),
        (["--cutoffs", "1.5"], "expected a fraction of the run"),
        (["--cutoffs", "1"], "not before the store's final step"),
        (["--cutoffs", ""], "names nothing"),
        (["--cutoffs", ",,,"], "names nothing"),
        (["--forecasters", ""], "names nothing"),
        (["--forecasters", ",,,"], "names nothing"),
        (["--forecasters", f"sma(window={'9' * 5000})"], "has 5000 digits"),
        (["--ratio", "2"], "must lie in [0, 1]; got 2"),
        (["--html"], "--out DIR"),
        (["--policy", "loose"], "'loose' is not one of 'none', 'seed', 'grouped'"),
    ],
)
def test_bad_arguments_exit_2(store, args, message):
    result = run("--store", store, *args)
    assert result.exit_code == 2 and message in result.output
    assert "Traceback" not in result.output


def test_a_store_without_its_model_is_scored_under_none_and_says_why(store, tmp_path):
    out = tmp_path / "r.json"
    result = run(
        "--store", store, "--forecasters", "sma", "--cutoffs", "0.5", "--json", str(out)
    )  # no --policy: the default, seed, needs the model to plan with
    assert result.exit_code == 0, result.output
    assert "scored under policy none, not seed" in result.output
    data = json.loads(out.read_text())
    assert data["settings"]["spec"]["policy"] == "none"
    assert any("policy none, not seed" in w for w in data["warnings"])


def test_config_file_with_flag_overrides(store, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        f"store: {store}\nforecasters: [sma, linear]\ncutoffs: [0.2, 0.5]\n"
        "ratio: 0.5\nmin-keep: 1\n"
    )
    result = run("--config", str(config), "--cutoffs", "0.5", "--json", str(tmp_path / "j"))
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "j").read_text())
    assert [c["label"] for c in data["cutoffs"]] == ["50%"]  # the flag won
    assert data["forecasters"] == ["naive", "sma", "linear"]  # the file's list


def test_config_unknown_key_names_valid_ones(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("ratios: [0.5]\n")
    line = _one_error_line(run("--config", str(config)))
    assert "'ratios'" in line and "Did you mean 'ratio'" in line and "min_keep" in line


def test_bundled_configs_compare_yaml_is_valid():
    from pathlib import Path

    from forecastprune.cli.compare_cmd import CompareConfig
    from forecastprune.config import load_config

    config = load_config(Path(__file__).parents[1] / "configs" / "compare.yaml", CompareConfig)
    assert "arima(p=2, d=1, q=1)" in config.forecasters and config.ratio == (0.5, 0.7)
    # the replay keys it documents are the defaults a bare command uses: one source
    from forecastprune.compare.settings import ReplaySettings

    defaults = ReplaySettings()
    assert config.timeout == defaults.timeout == 300
    spec = defaults.spec
    assert (config.eps, config.min_keep, config.policy, config.group_reduce) == (
        defaults.eps,
        spec.min_keep,
        spec.policy,
        spec.group_reduce,
    )
    assert tuple(float(c) for c in config.cutoffs) == defaults.cutoffs


@pytest.mark.parametrize(
    ("flags", "timeout"), [([], 300), (["--timeout", "0"], None), (["--timeout", "12.5"], 12.5)]
)
def test_the_timeout_default_is_the_replays_and_zero_lifts_it(store, tmp_path, flags, timeout):
    out = tmp_path / "r.json"
    result = run(
        "--store", store, "--forecasters", "sma", "--cutoffs", "0.5", "--json", str(out), *flags
    )
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["settings"]["timeout"] == timeout


def test_help_has_an_example():
    result = CliRunner().invoke(cli, ["compare", "--help"])
    assert result.exit_code == 0 and "Example:" in result.output
    assert "forecastprune compare --forecasters" in result.output


# ------------------------------------------------------------------------------ config
def test_split_list_respects_parentheses_and_quotes():
    from forecastprune.config import split_list

    assert split_list("arima(p=2,d=1,q=1), sma ,linear(x='a,b')") == [
        "arima(p=2,d=1,q=1)",
        "sma",
        "linear(x='a,b')",
    ]
    with pytest.raises(ConfigError, match="unclosed"):
        split_list("arima(p=2")
    with pytest.raises(ConfigError, match="unbalanced"):
        split_list("sma)")


@pytest.mark.parametrize(
    "text, message",
    [
        ("eps: abc\n", "eps must be a number; got 'abc'"),
        ("html: yes please\n", "html must be true or false"),
        ("min_keep: 1.5\n", "min_keep must be a whole number"),
        ("- just\n- a list\n", "must hold a mapping"),
        ("ratio: [0.5\n", "not valid YAML"),
    ],
)
def test_config_values_are_type_checked(tmp_path, text, message):
    from forecastprune.cli.compare_cmd import CompareConfig
    from forecastprune.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(path, CompareConfig)
