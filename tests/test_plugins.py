"""The example plugins in plugins/: the single file and the installable fp-expdecay package."""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from forecastprune.forecasters import (
    PluginWarning,
    broken_plugins,
    get_forecaster,
    get_forecaster_class,
    list_forecasters,
    load_plugins,
)
from forecastprune.testing import CHECKS, PASSED, check_forecaster, isolated_registry

PLUGINS = Path(__file__).resolve().parents[1] / "plugins"
PACKAGE_DIR = PLUGINS / "fp-expdecay"


@pytest.fixture
def expdecay_module(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """fp_expdecay imported from its source folder (whether or not it is installed)."""
    monkeypatch.syspath_prepend(str(PACKAGE_DIR))
    # An installed copy may already be imported (entry-point discovery): import the source.
    monkeypatch.delitem(sys.modules, "fp_expdecay", raising=False)
    module = importlib.import_module("fp_expdecay")
    assert Path(module.__file__).parent == PACKAGE_DIR
    return module


# ------------------------------------------------------------------ single file
def test_single_file_plugin_loads_and_conforms() -> None:
    with isolated_registry():
        assert load_plugins(PLUGINS / "single_file_plugin.py") == ["median"]
        (info,) = list_forecasters("median")
        assert info.source == f"file: {PLUGINS / 'single_file_plugin.py'}"
        results = check_forecaster(get_forecaster_class("median"))
        assert len(results) == len(CHECKS) and set(results.values()) == {PASSED}
        values = np.array([[1.0, 5.0], [9.0, 5.0], [2.0, 5.0], [3.0, 100.0], [2.5, 5.0]])
        prediction = get_forecaster("median(window=5)").fit(np.arange(5), values).predict(9)
        np.testing.assert_array_equal(prediction, [2.5, 5.0])  # spikes ignored


# ------------------------------------------------------------------ the package
def test_expdecay_from_source_conforms(expdecay_module: ModuleType) -> None:
    results = check_forecaster(expdecay_module.ExpDecayForecaster)
    assert len(results) == 2 * len(CHECKS) and set(results.values()) == {PASSED}


@pytest.mark.parametrize("amplitude, rate, level", [(0.8, 3.0, 0.1), (-0.4, 1.2, 0.9)])
def test_expdecay_recovers_an_exact_decay(
    expdecay_module: ModuleType, amplitude: float, rate: float, level: float
) -> None:
    grid = expdecay_module.RATE_GRID
    rate = float(grid[np.argmin(np.abs(grid - rate))])  # a rate on the grid is fitted exactly
    steps = np.arange(0, 200, 10)
    span = steps[-1] - steps[0]
    truth = lambda s: level + amplitude * np.exp(-rate * s / span)  # noqa: E731
    values = np.column_stack([truth(steps), np.full(steps.size, 0.3)])
    forecaster = expdecay_module.ExpDecayForecaster().fit(steps, values)
    for target in (250, 600, 10_000):
        np.testing.assert_allclose(
            forecaster.predict(target), [truth(target), 0.3], rtol=1e-6, atol=1e-9
        )


def test_expdecay_beats_naive_on_decaying_channels(expdecay_module: ModuleType) -> None:
    rng = np.random.default_rng(0)
    steps = np.arange(0, 1000, 10)
    levels = rng.uniform(0.0, 0.5, 50)
    curves = levels + rng.uniform(0.3, 1.0, 50) * np.exp(
        -np.outer(steps, rng.uniform(0.004, 0.01, 50))
    )
    history = slice(0, 30)  # 30% of the run
    final = curves[-1]
    expdecay = expdecay_module.ExpDecayForecaster().fit(steps[history], curves[history])
    naive = get_forecaster("naive").fit(steps[history], curves[history])
    error = lambda f: np.abs(f.predict(steps[-1]) - final).mean()  # noqa: E731
    assert error(expdecay) < 0.5 * error(naive)


@pytest.fixture
def discovered() -> None:
    """Run the global entry-point scan *before* a test puts fake distributions on sys.path,
    so they can only ever reach the isolated registry copy the test works in."""
    list_forecasters()


def _fake_distribution(root: Path, name: str, entry_points: str) -> None:
    info = root / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[forecastprune.forecasters]\n{entry_points}\n")


def _installed() -> bool:
    try:
        importlib.metadata.distribution("fp-expdecay")
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def test_expdecay_is_discovered_through_its_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, discovered: None
) -> None:
    """Installed (as in CI): the real distribution. Otherwise: a fake one with the same entry
    point on sys.path, so discovery is exercised either way."""
    if not _installed():
        monkeypatch.syspath_prepend(str(PACKAGE_DIR))
        _fake_distribution(tmp_path, "fp-expdecay", "expdecay = fp_expdecay:ExpDecayForecaster")
        monkeypatch.syspath_prepend(str(tmp_path))
        importlib.invalidate_caches()
    with isolated_registry(rediscover=True):
        (info,) = list_forecasters("expdecay")
        assert info.source == "entry point: fp-expdecay"
        assert info.params == {"window": None, "clip_at_zero": True, "time_axis": "step"}
        forecaster = get_forecaster("expdecay(window=6)")
        assert type(forecaster).__module__ == "fp_expdecay"
        assert len(check_forecaster(forecaster)) == len(CHECKS)


def test_broken_entry_points_are_reported_and_the_rest_still_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, discovered: None
) -> None:
    (tmp_path / "fake_good_plugin.py").write_text(
        "from forecastprune.forecasters.naive import NaiveForecaster\n"
        "class Good(NaiveForecaster):\n    description = 'fake good'\n"
    )
    _fake_distribution(
        tmp_path,
        "fake-plugins",
        "\n".join(
            [
                "missing = fake_no_such_module_xyz:Thing",
                "notaforecaster = json:dumps",
                "good = fake_good_plugin:Good",
                "sma = fake_good_plugin:Good",
            ]
        ),
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    with isolated_registry(rediscover=True):
        with pytest.warns(PluginWarning) as caught:
            names = {info.name for info in list_forecasters()}
        broken = broken_plugins()
        assert set(broken) >= {"missing", "notaforecaster", "sma"}
        assert "ModuleNotFoundError" in broken["missing"]
        assert "must name a Forecaster subclass" in broken["notaforecaster"]
        assert "already registered" in broken["sma"]
        assert len(caught) >= 3
        assert {"good", "naive", "linear"} <= names
        assert get_forecaster("good").fit([1, 2], [[3.0], [4.0]]).predict(9) == [4.0]
        assert get_forecaster("sma").window == 5  # the built-in survived the clash
        assert list_forecasters("good")[0].source == "entry point: fake-plugins"
    assert "good" not in {info.name for info in list_forecasters()}
    sys.modules.pop("fake_good_plugin", None)
