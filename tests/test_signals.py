"""SIGTERM/SIGINT stop a recording run with every snapshot on disk and the store closed.

One test runs ``forecastprune record`` in a real subprocess and sends it SIGTERM mid-run, from
outside, once its progress bar shows enough steps; the store is flushed only every 1,000
snapshots, so without the handling every snapshot would be lost. The others raise real signals
in this process (``signal.raise_signal``): in what ``forecastprune train`` runs, in an
``EarlyPruner`` block and in bare :func:`flush_on_signals` blocks (a second subprocess for
``train`` cost another ~30 s of interpreter start-up on the loaded test machine).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import forecastprune
from forecastprune.errors import ConfigError
from forecastprune.pipeline import EarlyPruner
from forecastprune.pipeline.methods import run_method
from forecastprune.pipeline.train_config import TrainConfig
from forecastprune.pipeline.trainer import Callback, Trainer
from forecastprune.record.signals import Preempted, flush_on_signals
from forecastprune.store import GammaTrajectoryStore
from forecastprune.zoo import build_model, load_digits_split, make_loaders

#: where the imported package lives (a checkout, or site-packages when installed)
ROOT = Path(forecastprune.__file__).resolve().parent.parent
#: the checkout the tests belong to: its configs/ are not part of the installed package
REPO = Path(__file__).resolve().parents[1]
CLI = "import sys; from forecastprune.cli import main; sys.argv[0] = 'forecastprune'; main()"


class _Run:
    """A CLI run in a subprocess, SIGTERMed once its progress bar shows ``min_steps``."""

    def __init__(self, args: list[str], min_steps: int) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CLI, *args],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            env=env,
            cwd=REPO,
        )
        self.min_steps, self.seen, self.text = min_steps, 0, []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:  # tqdm redraws with "\r", so read raw chunks rather than lines
        assert self.proc.stderr is not None
        while chunk := os.read(self.proc.stderr.fileno(), 4096):
            text = chunk.decode(errors="replace")
            self.text.append(text)
            counts = re.findall(r"(\d+)/\d+ \[", text)
            if counts:
                self.seen = max(self.seen, int(counts[-1]))

    def stop(self, timeout: float = 240.0) -> tuple[int, int]:
        """Wait for ``min_steps``, send SIGTERM; (exit status, steps shown before the signal)."""
        deadline = time.monotonic() + timeout
        while (
            self.seen < self.min_steps and self.proc.poll() is None and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        at_signal = self.seen
        self.proc.send_signal(signal.SIGTERM)
        status = self.proc.wait(timeout=120)
        self.reader.join(timeout=10)
        assert at_signal >= self.min_steps, "".join(self.text)[-2000:]
        return status, at_signal


@pytest.fixture(scope="module")
def stopped(tmp_path_factory) -> tuple[Path, int, int]:
    """A ``record`` run stopped by SIGTERM: (run directory, exit status, steps shown)."""
    out = tmp_path_factory.mktemp("signals") / "record"
    args = [
        "record",
        "--out",
        str(out),
        "--model",
        "vgg",
        "--width",
        "0.5",
        "--epochs",
        "40",
        "--every",
        "1",
        "--flush-every",
        "1000",
        "--threads",
        "1",
    ]
    return (out, *_Run(args, min_steps=15).stop())


def _check_store(path: Path, first: int, at_least: int) -> np.ndarray:
    """The store opens for appending (lock released), steps are contiguous from ``first``."""
    with GammaTrajectoryStore.open(path, mode="a") as store:
        steps, values = store.history()
    assert np.isfinite(values).all()
    np.testing.assert_array_equal(steps, np.arange(first, first + len(steps)))
    assert steps[-1] >= at_least  # every update counted before the signal was recorded
    return steps


@pytest.mark.slow
def test_sigterm_during_record_keeps_every_snapshot(stopped) -> None:
    out, status, steps = stopped
    assert status == 128 + signal.SIGTERM
    _check_store(out / "gammas.fpstore", first=0, at_least=steps)
    assert not (out / "model.pt").exists()  # the run did not finish: no final weights


class SignalAt(Callback):
    """Sends this process a real SIGTERM at the end of one iteration."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer: Trainer, step: int) -> None:
        if trainer.step == self.step:
            signal.raise_signal(signal.SIGTERM)


def test_sigterm_during_a_train_method_keeps_every_snapshot(tmp_path) -> None:
    # what `forecastprune train` runs, minus the interpreter start-up (see the record test)
    config = TrainConfig.load(REPO / "configs" / "forecast-sma.yaml").replace(prune_at=0.9)
    split = load_digits_split(seed=0)
    train_loader, test_loader = make_loaders(split, 64)
    torch.manual_seed(0)
    model = build_model("darknet", width=0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    kwargs = {
        "train_loader": train_loader,
        "test_loader": test_loader,
        "epochs": 3,
        "callbacks": [SignalAt(7)],
        "progress": False,
    }
    with pytest.raises(Preempted) as caught:
        run_method(
            config.method_spec(tmp_path / "g.fpstore"),
            model,
            optimizer,
            kwargs,
            example_inputs=split.x_train[:2],
            samples_per_step=64,
        )
    assert caught.value.code == 128 + signal.SIGTERM
    _check_store(tmp_path / "g.fpstore", first=1, at_least=7)  # the pruner buffers 50


class Closed:
    """Remembers the order ``close`` was called in."""

    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def close(self) -> None:
        self.log.append(self.name)


def test_signal_unwinds_the_block_closes_in_order_and_restores_handlers() -> None:
    before = signal.getsignal(signal.SIGTERM)
    log: list[str] = []
    with pytest.raises(Preempted) as caught:
        with flush_on_signals(Closed("recorder", log), Closed("store", log)):
            assert signal.getsignal(signal.SIGTERM) is not before
            signal.raise_signal(signal.SIGTERM)
            log.append("not reached")
    assert caught.value.code == 128 + signal.SIGTERM and isinstance(caught.value, SystemExit)
    assert log == ["recorder", "store"]
    assert signal.getsignal(signal.SIGTERM) is before


def test_previous_handlers_are_chained_and_ignored_signals_stay_ignored() -> None:
    calls: list[int] = []
    old = signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
    try:
        log: list[str] = []
        with flush_on_signals(Closed("x", log)):
            signal.raise_signal(signal.SIGTERM)  # the previous handler decides: it returns
            log.append("continued")
        assert calls == [signal.SIGTERM] and log == ["continued", "x"]
        with pytest.raises(KeyboardInterrupt):  # Python's SIGINT handler raises, as always
            with flush_on_signals(Closed("y", log)):
                signal.raise_signal(signal.SIGINT)
        assert log[-1] == "y"
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with flush_on_signals():
            assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGTERM, old)


def test_outside_the_main_thread_nothing_is_installed_but_closing_still_happens() -> None:
    before = signal.getsignal(signal.SIGTERM)
    log: list[str] = []
    seen = []

    def work() -> None:
        with flush_on_signals(Closed("x", log)):
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [before] and log == ["x"]
    with pytest.raises(ConfigError, match="close\\(\\) method.*got int"):
        with flush_on_signals(3):  # type: ignore[arg-type]
            pass


def test_sigterm_inside_an_early_pruner_block_flushes_its_store(tmp_path) -> None:
    split = load_digits_split(seed=0)
    x, y = split.x_train[:32], split.y_train[:32]
    torch.manual_seed(0)
    model = build_model("darknet", width=0.5)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    with pytest.raises(Preempted):
        # the recorder buffers 50 snapshots; the signal comes after 7
        with EarlyPruner(
            model,
            optimizer,
            forecaster="sma",
            prune_at=0.9,
            total_steps=100,
            example_inputs=x[:2],
            store_path=tmp_path / "g.fpstore",
        ) as pruner:
            for step in range(1, 101):
                loss = torch.nn.functional.cross_entropy(model(x), y)
                optimizer.zero_grad()
                loss.backward()
                pruner.regularize(step - 1)
                optimizer.step()
                model, optimizer = pruner.step(step)
                if step == 7:
                    signal.raise_signal(signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    _check_store(tmp_path / "g.fpstore", first=1, at_least=7)
    assert pruner.state_dict()["recorder"]["last_step"] == 7  # still resumable after closing


def test_a_second_signal_during_the_unwinding_is_ignored() -> None:
    log: list[str] = []

    class SlowClose(Closed):
        def close(self) -> None:
            signal.raise_signal(signal.SIGTERM)  # arrives while flushing: must not cut it
            super().close()

    with pytest.raises(Preempted):
        with flush_on_signals(SlowClose("recorder", log), Closed("store", log)):
            try:
                signal.raise_signal(signal.SIGTERM)
            finally:
                signal.raise_signal(signal.SIGTERM)  # e.g. in a finally block on the way out
                log.append("finally ran")
    assert log == ["finally ran", "recorder", "store"]
