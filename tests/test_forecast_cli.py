"""`forecastprune list` and `forecastprune forecast` through click's CliRunner."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

from forecastprune.cli import cli
from forecastprune.core.layout import ChannelLayout
from forecastprune.core.lr_clock import clock_for_store
from forecastprune.forecasters import get_forecaster
from forecastprune.store import GammaTrajectoryStore
from forecastprune.testing import isolated_registry, synthetic_history

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
LAYOUT = ChannelLayout((("features.0.bn", 4), ("features.1.bn", 6)))
TOTAL_STEPS = 600


@pytest.fixture(scope="module")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 snapshots every 10 steps of signed γ, LR recorded, a step-decay schedule planned."""
    path = tmp_path_factory.mktemp("cli") / "run.fpstore"
    steps, values = synthetic_history(40, LAYOUT.total, seed=3)
    signs = np.where(np.arange(LAYOUT.total) % 3 == 0, -1.0, 1.0)  # the CLI must take |γ|
    schedule = [[0, 0.1], [300, 0.01]]
    with GammaTrajectoryStore.create(
        path, LAYOUT, metadata={"total_steps": TOTAL_STEPS, "lr_schedule": schedule}
    ) as store:
        for step, row in zip(steps, values, strict=True):
            store.append(int(step), row * signs, lr=0.1 if step < 300 else 0.01)
    return path


def invoke(*args: str) -> Result:
    with isolated_registry():  # --plugins must not leak into other tests
        return CliRunner().invoke(cli, [str(a) for a in args])


def load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def history_abs(store_path: Path, until: int) -> tuple[np.ndarray, np.ndarray]:
    with GammaTrajectoryStore.open(store_path) as store:
        steps, values = store.history(until_step=until)
    return steps, np.abs(values)


# ------------------------------------------------------------------ forecast
def test_forecast_sma_at_a_step(store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "pred.npz"
    result = invoke(
        "forecast",
        "--store",
        store_path,
        "--forecaster",
        "sma(window=4)",
        "--at",
        105,
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    saved = load(out)
    _, values = history_abs(store_path, 105)
    np.testing.assert_allclose(saved["prediction"], values[-4:].mean(axis=0), rtol=1e-6)
    assert saved["cutoff_step"] == 100 and saved["n_history"] == 4  # sma reads its window
    assert saved["target_step"] == TOTAL_STEPS
    assert list(saved["layer_names"]) == list(LAYOUT.names)
    assert list(saved["layer_sizes"]) == list(LAYOUT.sizes)
    assert "lower" not in saved
    assert f"wrote {out}: 10 channels" in result.output


def test_forecast_linear_with_interval_cutoff_and_target(store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "pred.npz"
    result = invoke(
        "forecast",
        "--store",
        store_path,
        "--forecaster",
        "linear(window=6)",
        "--cutoff",
        0.25,
        "--target",
        500,
        "--coverage",
        0.8,
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    saved = load(out)
    assert saved["cutoff_step"] == 150 and saved["target_step"] == 500  # 0.25 × 600
    steps, values = history_abs(store_path, 150)
    forecaster = get_forecaster("linear(window=6)").fit(steps, values)
    np.testing.assert_allclose(saved["prediction"], forecaster.predict(500))
    lower, upper = forecaster.predict_interval(500, 0.8)
    np.testing.assert_allclose(saved["lower"], lower)
    np.testing.assert_allclose(saved["upper"], upper)
    assert saved["coverage"] == 0.8
    assert np.all(saved["lower"] <= saved["prediction"]) and np.all(
        saved["prediction"] <= saved["upper"]
    )


def test_forecast_on_the_lr_axis_uses_the_store_clock(store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "pred.npz"
    result = invoke(
        "forecast",
        "--store",
        store_path,
        "--forecaster",
        "linear(window=5)",
        "--at",
        200,
        "--time-axis",
        "lr",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    saved = load(out)
    with GammaTrajectoryStore.open(store_path) as store:
        clock = clock_for_store(store)
        steps, values = store.history(until_step=200)
    expected = (
        get_forecaster("linear(window=5, time_axis=lr)")
        .fit(steps, np.abs(values), clock=clock)
        .predict(TOTAL_STEPS)
    )
    np.testing.assert_allclose(saved["prediction"], expected)
    assert "time_axis='lr'" in str(saved["forecaster"])
    assert str(saved["clock_assumption"]) == clock.assumption != ""
    assert "clock:" in result.output


def test_forecast_with_a_plugin(store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "pred.npz"
    result = invoke(
        "forecast",
        "--store",
        store_path,
        "--forecaster",
        "median(window=3)",
        "--plugins",
        PLUGINS / "single_file_plugin.py",
        "--at",
        90,
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    _, values = history_abs(store_path, 90)
    np.testing.assert_allclose(load(out)["prediction"], np.median(values[-3:], axis=0))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--forecaster", "sma", "--at", "5", "--cutoff", "0.5"], "got both"),
        (["--forecaster", "sma", "--cutoff", "1.5"], "expected a fraction of the run in (0, 1]"),
        (["--forecaster", "sma", "--cutoff", "step:x"], "after 'step:' comes a whole step"),
        (["--forecaster", "smaa", "--at", "100"], "Did you mean 'sma'?"),
        (["--forecaster", "__import__('os').system('x')", "--at", "100"], "cannot parse"),
        (["--forecaster", "sma(windw=3)", "--at", "100"], "valid parameters: window=5"),
        (["--forecaster", f"sma(window={'9' * 5000})", "--at", "100"], "has 5000 digits"),
        (
            ["--forecaster", "sma", "--time-axis", "lr", "--at", "100"],
            "has none. Drop the time axis",
        ),
        (["--forecaster", "linear(time_axis=lr)", "--time-axis", "lr", "--at", "100"], "both"),
        (["--forecaster", "linear(window=20)", "--at", "100"], "min_history=20"),
        (["--forecaster", "sma", "--at", "100", "--target", "50"], "before the cutoff"),
        (
            ["--forecaster", "sma", "--at", "100", "--plugins", "no/such/plugin.py"],
            "does not exist",
        ),
    ],
)
def test_forecast_user_errors_are_one_line_exit_2(
    store_path: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "pred.npz"
    result = invoke("forecast", "--store", store_path, "--out", out, *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert message in " ".join(result.output.split())
    assert not out.exists()


def test_forecast_missing_store_and_existing_output(store_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "pred.npz"
    missing = invoke(
        "forecast", "--store", tmp_path / "nope", "--forecaster", "sma", "--at", 100, "--out", out
    )
    assert missing.exit_code == 2 and "Error:" in missing.output and not out.exists()
    out.write_bytes(b"keep me")
    taken = invoke(
        "forecast", "--store", store_path, "--forecaster", "sma", "--at", 100, "--out", out
    )
    assert taken.exit_code == 2 and "--overwrite" in taken.output
    assert out.read_bytes() == b"keep me"
    replaced = invoke(
        "forecast",
        "--store",
        store_path,
        "--forecaster",
        "sma",
        "--at",
        100,
        "--out",
        out,
        "--overwrite",
    )
    assert replaced.exit_code == 0 and "prediction" in load(out)
    assert [p.name for p in tmp_path.iterdir()] == ["pred.npz"]  # no temp files left


# ------------------------------------------------------------------ list
def test_list_shows_builtins_with_defaults_and_sources() -> None:
    result = invoke("list")
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()[1:]}
    assert result.output.splitlines()[0].split() == ["NAME", "PARAMS", "SOURCE", "DESCRIPTION"]
    assert {"naive", "sma", "ema", "linear"} <= set(lines)
    assert "window=5" in lines["sma"] and "built-in" in lines["sma"]
    assert "time_axis='step'" in lines["linear"] and "[intervals]" in lines["linear"]


def test_list_pattern_and_plugins(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("import no_such_module_for_the_test\n")
    result = invoke(
        "list", "--plugins", PLUGINS / "single_file_plugin.py", "--plugins", tmp_path, "med"
    )
    assert result.exit_code == 0, result.output
    names = [line.split()[0] for line in result.output.splitlines()[1:] if line.strip()]
    assert names[0] == "median" and "sma" not in names
    assert f"file: {PLUGINS / 'single_file_plugin.py'}" in result.output
    assert "Plugins that failed to load:" in result.output
    assert "No module named 'no_such_module_for_the_test'" in result.output


def test_list_without_match() -> None:
    result = invoke("list", "zzz")
    assert result.exit_code == 0 and "no forecaster matches 'zzz'" in result.output


@pytest.mark.parametrize("command", ["list", "forecast"])
def test_help_has_an_example(command: str) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0 and "Example:" in result.output
