"""Plugins and forecasters that hang, spawn processes, exit or fail: every command stays bounded,
leaves no process behind and says what happened in one line.

Deadlines are short (1–2 s) and every wait below is bounded; nothing relies on a race.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from forecastprune.cli import cli
from forecastprune.errors import ForecasterError
from forecastprune.forecasters import get_forecaster, load_plugins
from forecastprune.forecasters.registry import broken_plugins
from forecastprune.testing import isolated_registry

PLUGIN = """
import os, subprocess, sys, time
import numpy as np
from forecastprune.forecasters import Forecaster, register_forecaster

@register_forecaster("{name}")
class Misbehaving(Forecaster):
    description = "misbehaves in _predict"

    def _fit(self, t, values):
        self.level_ = values[-1].copy()

    def _predict(self, target_t):
        {body}
        return self.level_.copy()
"""


def _plugin(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(PLUGIN.format(name=name, body=body))
    return path


@pytest.fixture(autouse=True)
def _own_registry():
    with isolated_registry():
        yield


def _one_error_line(result, fragment):
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert fragment in lines[0], lines[0]


def _gone(pid: int, within: float = 10.0) -> bool:
    """Whether ``pid`` exits (or is a zombie nobody has reaped yet) within ``within`` s."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in "ZX":
            return True
        time.sleep(0.05)
    return False


def _wait_for(path: Path, within: float = 60.0) -> str:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.05)
    raise AssertionError(f"{path} was not written within {within} s")


@pytest.mark.slow
def test_compare_bounds_a_plugin_that_hangs_at_import(tmp_path):
    hang = tmp_path / "hang.py"
    hang.write_text("import time\ntime.sleep(3600)\n")
    started = time.monotonic()
    result = CliRunner().invoke(
        cli,
        [
            "compare",
            "--timeout",
            "1",
            "--plugins",
            str(hang),
            "--forecasters",
            "sma",
            "--cutoffs",
            "0.5",
        ],
    )
    _one_error_line(result, "(importing it) did not finish within 1 s")
    assert time.monotonic() - started < 30


@pytest.mark.slow
@pytest.mark.parametrize("command", ["forecast", "prune"])
def test_forecast_and_prune_stop_a_hanging_forecaster_and_what_it_spawned(tmp_path, command):
    pid_file = tmp_path / "spawned.pid"
    body = (
        f"p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3600)']); "
        f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(3600)"
    )
    plugin = _plugin(tmp_path, "hangs", body)
    out = tmp_path / "out.bin"
    extra = ["--random-init"] if command == "prune" else []
    started = time.monotonic()
    result = CliRunner().invoke(
        cli,
        [
            command,
            "--plugins",
            str(plugin),
            "--forecaster",
            "hangs",
            "--timeout",
            "2",
            "--out",
            str(out),
            *extra,
        ],
    )
    _one_error_line(result, "did not finish within 2 s and was stopped")
    assert time.monotonic() - started < 60
    assert _gone(int(pid_file.read_text()))  # the plugin's own child was killed with it
    assert not out.exists()


@pytest.mark.slow
def test_sys_exit_and_exceptions_in_predict_are_errors_not_successes(tmp_path):
    exits = _plugin(tmp_path, "exits", "sys.exit(0)")
    raises = _plugin(tmp_path, "raises", "raise RuntimeError('boom in predict')")
    for name, plugin, fragment in (
        ("exits", exits, "called sys.exit(0)"),
        ("raises", raises, "failed: RuntimeError: boom in predict"),
    ):
        for command in ("forecast", "prune"):
            out = tmp_path / f"{name}-{command}.bin"
            extra = ["--random-init"] if command == "prune" else []
            result = CliRunner().invoke(
                cli,
                [
                    command,
                    "--plugins",
                    str(plugin),
                    "--forecaster",
                    name,
                    "--out",
                    str(out),
                    *extra,
                ],
            )
            _one_error_line(result, fragment)
            assert not out.exists()


COMPARE = """
import sys
from forecastprune.cli import main
sys.argv = ["forecastprune", "compare", "--plugins", sys.argv[1], "--forecasters", "waits",
            "--cutoffs", "0.5", "--timeout", "3600"]
main()
"""


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_stopping_compare_stops_its_worker(tmp_path, signum):
    pid_file = tmp_path / "worker.pid"
    body = f"open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(3600)"
    plugin = _plugin(tmp_path, "waits", body)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        [sys.executable, "-c", COMPARE, str(plugin)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        worker = int(_wait_for(pid_file))
        proc.send_signal(signum)
        assert proc.wait(timeout=30) == -signum
        assert _gone(worker), "the worker outlived compare"
    finally:
        proc.kill()
        proc.wait()


def test_a_plugin_failing_midway_registers_nothing(tmp_path):
    half = tmp_path / "half.py"
    half.write_text(
        textwrap.dedent("""
        from forecastprune.forecasters import Forecaster, register_forecaster

        @register_forecaster("first_of_two")
        class First(Forecaster):
            def _fit(self, t, values): pass
            def _predict(self, target_t): return 0

        @register_forecaster("first_of_two")  # a second class under the same name
        class Second(First):
            pass
    """)
    )
    with pytest.warns(UserWarning, match="already registered"):
        assert load_plugins(half) == []
    assert any(name.endswith("half.py") for name in broken_plugins())
    with pytest.raises(ForecasterError, match="first_of_two"):
        get_forecaster("first_of_two")


def test_a_name_specs_cannot_spell_is_refused_at_registration():
    from forecastprune.forecasters import Forecaster, register_forecaster

    with pytest.raises(ForecasterError, match="ASCII identifiers"):
        register_forecaster("smα")(type("Sm", (Forecaster,), {}))
