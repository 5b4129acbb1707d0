"""Run one forecaster over several cutoffs in isolation, with a deadline.

``compare`` must survive any forecaster — a plugin that raises, hangs, or crashes the
interpreter — and still report the others. Each forecaster therefore runs in a forked worker
process that inherits the history (no copy, no pickling of the inputs or of plugin classes) and
sends back one small :class:`CellOutcome` per cutoff through a pipe. The parent waits with a
deadline and kills the worker's process group when it passes, so a timeout really stops the
work, including processes the forecaster spawned; the worker also dies with the parent
(:func:`forecastprune.isolation.start_child`).

Where ``fork`` is unavailable (Windows, or when asked with ``isolation="thread"``) the worker is
a daemon thread instead: exceptions are still contained and the deadline still holds for the
report, but a timed-out thread cannot be killed and finishes in the background.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from ..forecasters import Forecaster
from ..isolation import start_child
from ..predict import predict_history
from .settings import ISOLATIONS


@dataclass(frozen=True)
class CellOutcome:
    """One forecaster's result at one cutoff.

    Attributes:
        prediction: (C,) predicted |γ| at the target step, or None when the cell failed.
        seconds: fit + predict wall time.
        error: why the cell failed (None on success).
        note: what the forecaster chose, for forecasters that choose (``auto``).
    """

    prediction: np.ndarray | None
    seconds: float
    error: str | None = None
    note: str | None = None


def default_isolation() -> str:
    """``"process"`` where ``fork`` exists, else ``"thread"``."""
    return "process" if "fork" in mp.get_all_start_methods() else "thread"


def run_forecaster(
    forecaster: Forecaster,
    steps: np.ndarray,
    gammas: np.ndarray,
    cutoffs: Sequence[int],
    target_step: int,
    *,
    clock: Any = None,
    timeout: float | None = None,
    isolation: str | None = None,
    on_cell: Callable[[CellOutcome], None] | None = None,
) -> list[CellOutcome]:
    """Fit a fresh copy of ``forecaster`` on the history up to each cutoff and predict.

    Args:
        forecaster: an unfitted forecaster (copied per cutoff, never fitted in place).
        steps: (T,) record steps.
        gammas: (T, C) signed γ history (read, never copied whole: see ``predict``).
        cutoffs: steps; the fit at cutoff ``c`` sees the rows with ``steps <= c``.
        target_step: the step every fit predicts.
        clock: the store's clock for ``time_axis="lr"`` forecasters.
        timeout: seconds for all cutoffs together (None: no limit).
        isolation: ``"process"`` or ``"thread"`` (default: :func:`default_isolation`).
        on_cell: called with each outcome as it arrives (progress bars).

    Returns:
        One :class:`CellOutcome` per cutoff, in order; cells the deadline cut off carry the
        timeout as their error. Predictions are checked for shape and finiteness here, in the
        parent, so a bad worker cannot smuggle in garbage.
    """
    isolation = isolation or default_isolation()
    if isolation not in ISOLATIONS:
        raise ValueError(f"isolation must be one of {ISOLATIONS}; got {isolation!r}")
    receiver, sender = mp.Pipe(duplex=False)
    args = (sender, forecaster, steps, gammas, list(cutoffs), target_step, clock)
    stop = _start(isolation, args)
    if isolation == "process":
        sender.close()  # only the child holds the write end now, so its death reads as EOF
    outcomes: list[CellOutcome] = []
    deadline = math.inf if timeout is None else time.monotonic() + timeout
    try:
        while len(outcomes) < len(cutoffs):
            outcome, fatal = _next(receiver, deadline, timeout, len(outcomes), len(cutoffs))
            outcome = _checked(outcome, gammas.shape[1])
            outcomes.append(outcome)
            if on_cell is not None:
                on_cell(outcome)
            if fatal:
                outcomes += [outcome] * (len(cutoffs) - len(outcomes))
    finally:
        receiver.close()
        stop()
    return outcomes


def _start(isolation: str, args: tuple) -> Callable[[], None]:
    """Launch the worker; return a function that stops and reaps it."""
    if isolation == "thread":
        threading.Thread(target=_work, args=args, daemon=True).start()
        return lambda: None
    return start_child(_work, args)


def _next(
    receiver: Connection, deadline: float, timeout: float | None, done: int, total: int
) -> tuple[CellOutcome, bool]:
    """The next outcome, and whether it ends the run (timeout or a dead worker)."""
    remaining = deadline - time.monotonic()
    if not receiver.poll(None if math.isinf(remaining) else max(0.0, remaining)):
        message = f"timed out after {timeout:g} s ({done} of {total} cutoffs done)"
        return CellOutcome(None, float(timeout or 0.0), message), True
    try:
        return receiver.recv(), False
    except (EOFError, OSError):
        message = "the worker exited without an answer (a crash, or the forecaster exited)"
        return CellOutcome(None, 0.0, message), True


def _checked(outcome: CellOutcome, width: int) -> CellOutcome:
    if outcome.error is not None:
        return outcome
    prediction = np.asarray(outcome.prediction)
    if prediction.shape != (width,):
        return CellOutcome(
            None,
            outcome.seconds,
            f"returned an array of shape {prediction.shape}; expected ({width},)",
        )
    bad = int(np.count_nonzero(~np.isfinite(prediction)))
    if bad:
        return CellOutcome(None, outcome.seconds, f"returned {bad} NaN/Inf predictions")
    return CellOutcome(
        prediction.astype(np.float64, copy=False), outcome.seconds, note=outcome.note
    )


def _work(
    sender: Connection,
    forecaster: Forecaster,
    steps: np.ndarray,
    gammas: np.ndarray,
    cutoffs: list[int],
    target_step: int,
    clock: Any,
) -> None:
    """Worker body: one message per cutoff, whatever happens inside the forecaster."""
    try:
        for cutoff in cutoffs:
            sender.send(_fit_predict(forecaster, steps, gammas, cutoff, target_step, clock))
    except OSError:  # the parent stopped listening (deadline passed): nothing left to do
        pass
    finally:
        sender.close()


def _fit_predict(
    forecaster: Forecaster,
    steps: np.ndarray,
    gammas: np.ndarray,
    cutoff: int,
    target_step: int,
    clock: Any,
) -> CellOutcome:
    end = int(np.searchsorted(steps, cutoff, side="right"))
    start = time.perf_counter()
    try:
        prediction = predict_history(
            forecaster, steps[:end], gammas[:end], target_step, clock=clock
        )
    except Exception as exc:  # any forecaster failure is a reported cell, by design
        return CellOutcome(None, time.perf_counter() - start, f"{type(exc).__name__}: {exc}")
    return CellOutcome(prediction.scores, prediction.seconds, note=prediction.note or None)
