"""The one prediction path: a recorded γ history → every channel's predicted final |γ|.

``compare`` (per cutoff, in its worker), ``forecast``, ``prune``, :class:`EarlyPruner` and
``train`` all predict through :func:`predict_history`; the commands that start from a store
go through :func:`predict_store`, which adds the cutoff and the clock. So a forecaster scored
by ``compare`` at a cutoff ranks channels exactly as ``prune`` at that cutoff will cut them.

What happens, in order:

1. **History.** Only the snapshots at or before the cutoff; of those, only the last
   ``history_window`` rows when the forecaster declares that it reads no more (``naive``
   reads one row), or at most ``history_grid`` rows spread evenly over the history (in the
   forecaster's time coordinate, the last snapshot always included) when it declares that a
   resampled history will do. ``gammas`` may be a store's lazy
   :class:`~forecastprune.store.rows.HistoryView`: only those rows are read, so a run of 10⁵
   snapshots is never loaded whole.
2. **|γ|.** Slimming ranks channels by |γ|; the store keeps signed γ, forecasters see |γ|
   as float64.
3. **Clock.** Forecasters on the cumulative-LR time axis get the store's clock
   (:func:`forecastprune.core.lr_clock.clock_for_store`).
4. **Fit, predict** at the target step, on a fresh copy of the forecaster.
5. **Clip** at 0: |γ| cannot be negative, and a trend that crosses 0 must not reorder the
   channels it drove below 0 (the engine ranks by score).
6. **Intervals**, when asked for and the forecaster gives them (clipped the same way).

Cutoffs — one definition. A cutoff is a fraction in (0, 1] of the run's length, or an
explicit step written ``step:N``. The run's length is the store's planned ``total_steps``
(metadata) when it has one, else its last recorded step. Fractions are of that length and
rounded to the nearest step; the history is every snapshot at or before that step.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ConfigError, ForecasterError, ForecastPruneError, StoreError
from .forecasters import Forecaster, get_forecaster
from .runpoint import RunPoint
from .store.timeline import run_length
from .store.verify import check_finite


@dataclass(frozen=True)
class Prediction:
    """Every channel's predicted final |γ| and how it was obtained.

    Attributes:
        scores: (C,) predicted |γ| at ``target_step``, clipped at 0.
        lower: (C,) lower interval bounds (clipped at 0), or None.
        upper: (C,) upper interval bounds, or None.
        cutoff_step: the last snapshot step the forecaster saw.
        target_step: the step predicted.
        n_history: snapshots the forecaster was fitted on.
        forecaster: the fitted forecaster's ``repr`` (its spec with every parameter).
        clock_assumption: how the cumulative-LR clock was built ("" without a clock).
        seconds: wall time of fit + predict.
        note: what a self-selecting forecaster chose (its ``describe_choice()``), else "".
    """

    scores: np.ndarray
    lower: np.ndarray | None
    upper: np.ndarray | None
    cutoff_step: int
    target_step: int
    n_history: int
    forecaster: str
    clock_assumption: str = ""
    seconds: float = 0.0
    note: str = ""


def build_forecaster(spec: str | Forecaster, time_axis: str | None = None) -> Forecaster:
    """A forecaster from a spec (or a copy of an instance), optionally on another time axis.

    Raises:
        UnknownForecasterError, ForecasterError: on a bad spec, or a ``time_axis`` for a
            forecaster that has no time axis.
    """
    forecaster = get_forecaster(spec) if isinstance(spec, str) else copy.deepcopy(spec)
    if time_axis is None:
        return forecaster
    if not forecaster.get_tag("time_axis_param"):
        raise ForecasterError(
            f"a time axis applies to forecasters that extrapolate over time (linear, arima, "
            f"...); {forecaster!r} has none. Drop the time axis option"
        )
    if isinstance(spec, str):  # the registry refuses a time_axis given twice
        return get_forecaster(spec, time_axis=time_axis)
    return type(forecaster)(**{**forecaster.get_params(), "time_axis": time_axis})


def predict_history(
    forecaster: str | Forecaster,
    steps: np.ndarray,
    gammas: np.ndarray,
    target_step: int,
    *,
    clock: Any = None,
    coverage: float | None = None,
) -> Prediction:
    """Fit a forecaster on a γ history and predict every channel's |γ| at ``target_step``.

    Args:
        forecaster: a registry spec or an instance (copied: never fitted in place).
        steps: (T,) recorded steps, the history the forecaster may see (nothing after the
            cutoff).
        gammas: (T, C) recorded **signed** γ, any float dtype (a memory map is fine: only the
            rows the forecaster reads are copied).
        target_step: the step to predict (the planned end of training).
        clock: maps steps to cumulative LR; needed by forecasters on ``time_axis="lr"``.
        coverage: central coverage of the prediction intervals to add (None: no intervals);
            ignored for forecasters without intervals.

    Returns:
        The :class:`Prediction`.

    Raises:
        ForecasterError: on a bad spec, too short a history, a missing clock, or a forecaster
            that fails or returns non-finite values.
    """
    start = time.perf_counter()
    model = build_forecaster(forecaster)
    steps = np.asarray(steps)
    if model.get_tag("needs_clock") and clock is None:
        raise ForecasterError(
            f"{model!r} forecasts over cumulative learning rate and needs the run's clock; "
            "record the LR (or set metadata 'lr'/'lr_schedule'), or use time_axis='step'"
        )
    rows = rows_to_read(model, steps, clock)
    history = np.abs(np.asarray(gammas[rows], dtype=np.float64))
    with _reported_as_forecaster_error(model):
        model.fit(steps[rows], history, clock=clock)
        scores = _finite(model.predict(target_step), model, "prediction")
        lower = upper = None
        if coverage is not None and model.get_tag("supports_interval"):
            lower, upper = (
                _finite(b, model, "interval") for b in model.predict_interval(target_step, coverage)
            )
            lower = np.clip(lower, 0.0, None)
    return Prediction(
        scores=np.clip(scores, 0.0, None),
        lower=lower,
        upper=upper,
        cutoff_step=int(steps[-1]),
        target_step=int(target_step),
        n_history=int(len(rows)),
        forecaster=repr(model),
        clock_assumption=str(getattr(clock, "assumption", "")) if clock is not None else "",
        seconds=time.perf_counter() - start,
        note=_choice(model),
    )


@contextmanager
def _reported_as_forecaster_error(model: Forecaster) -> Iterator[None]:
    """A forecaster (often a plugin) failing in any way is a :class:`ForecasterError` naming it,
    so every command reports it in one line; ``sys.exit`` inside it is a failure too, never a
    silent success. The original exception stays chained for library users."""
    try:
        yield
    except ForecastPruneError:
        raise
    except Exception as exc:
        raise ForecasterError(f"{model!r} failed: {type(exc).__name__}: {exc}") from exc
    except SystemExit as exc:
        if type(exc) is not SystemExit:  # e.g. Preempted: a stop signal, not the forecaster
            raise
        raise ForecasterError(
            f"{model!r} called sys.exit({exc.code!r}) instead of returning a forecast"
        ) from exc


def predict_store(
    store: Any,
    forecaster: str | Forecaster,
    cutoff: float | str,
    *,
    target_step: int | None = None,
    coverage: float | None = None,
) -> Prediction:
    """:func:`predict_history` on an open store's history up to a cutoff.

    Args:
        store: an open :class:`~forecastprune.store.GammaTrajectoryStore`.
        forecaster: a registry spec or an instance.
        cutoff: a fraction in (0, 1] of the run or ``"step:N"`` (see the module docs).
        target_step: the step to predict (default: the run's length).
        coverage: interval coverage (None: no intervals).

    Raises:
        StoreError: on an empty store, NaN/Inf in the history (naming step, layer and
            channel), or no LR information for a cumulative-LR forecaster.
        ConfigError: on a malformed cutoff, or a cutoff before the first snapshot.
        ForecasterError: as :func:`predict_history`.
    """
    if len(store) == 0:
        raise StoreError(f"store {store.path} has no snapshots; record some first")
    length = run_length(store)
    end = cutoff_step(cutoff, length)
    target = length if target_step is None else int(target_step)
    if target < end:
        raise ConfigError(
            f"the target step {target} lies before the cutoff step {end}; forecast a later step"
        )
    gammas = store.view(until_step=end)  # lazy: only the rows the forecaster needs are read
    steps = store.steps[: len(gammas)]
    if len(steps) == 0:
        raise ConfigError(
            f"cutoff {cutoff!r} (step {end}) lies before the store's first snapshot at step "
            f"{int(store.steps[0])}; use a later cutoff"
        )
    model = attach_layout(build_forecaster(forecaster), store.layout)
    clock = forecaster_clock(store, model)
    check_finite(store.path, steps, gammas, store.layout, rows_to_read(model, steps, clock))
    return predict_history(model, steps, gammas, target, clock=clock, coverage=coverage)


def attach_layout(model: Forecaster, layout: Any) -> Forecaster:
    """Hand the run's BN layout to a forecaster that reads it (tag ``uses_layout``); others
    are returned untouched. ``layout`` is a :class:`~forecastprune.core.layout.ChannelLayout`,
    a channel plan (its ``layout``), or None (nothing known: the forecaster will say so)."""
    layout = getattr(layout, "layout", layout)
    if layout is not None and model.get_tag("uses_layout"):
        model.set_layout(layout.sizes)
    return model


def forecaster_clock(store: Any, model: Forecaster) -> Any:
    """The clock a forecaster gets from a store: always for ``needs_clock`` (raising without LR
    information), when the store has one for ``uses_clock``, else None."""
    if model.get_tag("needs_clock"):
        return store_clock(store)
    if not model.get_tag("uses_clock"):
        return None
    try:
        return store_clock(store)
    except StoreError:
        return None


def store_clock(store: Any) -> Any:
    """The store's cumulative-LR clock (imported here: only that time axis needs it)."""
    from .core.lr_clock import clock_for_store

    return clock_for_store(store)


def cutoff_step(cutoff: Any, length: int) -> int:
    """The last step a forecaster may see (a :class:`~forecastprune.runpoint.RunPoint`).

    Args:
        cutoff: a fraction of the run in (0, 1] (1.0: all of it), or ``"step:N"``.
        length: the run's length (:func:`run_length`).

    Raises:
        ConfigError: on anything else, saying what is accepted.
    """
    return RunPoint.parse(cutoff, rules=False, what="cutoff").resolve(length, "cutoff")


def _choice(model: Forecaster) -> str:
    """``describe_choice()`` of forecasters that choose among models (``auto``), else ""."""
    describe = getattr(model, "describe_choice", None)
    return str(describe()) if callable(describe) else ""


def rows_to_read(model: Forecaster, steps: np.ndarray, clock: Any = None) -> np.ndarray:
    """The history rows a forecaster reads: its window, its grid, or every row.

    Args:
        model: the forecaster (its ``history_window`` and ``history_grid`` tags decide).
        steps: (T,) the steps of the history up to the cutoff.
        clock: the clock when the forecaster works in cumulative-LR time (the grid is even
            in the forecaster's own time coordinate).

    Returns:
        Sorted row indices into ``steps``.
    """
    n = len(steps)
    window, grid = model.get_tag("history_window"), model.get_tag("history_grid")
    if window is not None:
        return np.arange(max(0, n - int(window)), n)
    if grid is None or n <= grid:
        return np.arange(n)
    on_clock = clock is not None and model.get_tag("needs_clock")
    time_of = np.asarray(clock(steps) if on_clock else steps, np.float64)
    targets = np.linspace(time_of[0], time_of[-1], int(grid))
    nearest = np.clip(np.searchsorted(time_of, targets), 0, n - 1)
    return np.unique(np.concatenate([nearest, [n - 1]]))


def _finite(values: np.ndarray, model: Forecaster, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    bad = int(np.count_nonzero(~np.isfinite(array)))
    if bad:
        raise ForecasterError(f"{model!r} returned {bad} NaN/Inf values in its {what}")
    return array
