"""Public conformance suite for forecasters: :func:`check_forecaster`.

Plugin authors run it in their own tests::

    from forecastprune.testing import check_forecaster
    check_forecaster(MyForecaster)            # every get_test_params() set
    check_forecaster(MyForecaster(window=3))  # one configuration

Each failed check raises :class:`ConformanceError` (an ``AssertionError``, so pytest shows it
as a test failure) naming the forecaster, its parameters and the check.
"""

from __future__ import annotations

import contextlib
import copy
import pickle
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ForecastPruneError
from .forecasters import registry
from .forecasters.base import Clock, Forecaster

#: channels in the wide check for forecasters that are not vectorized (per-channel loops)
SMALL_WIDE = 64
_STEP = 10  # spacing of the synthetic snapshots


class ConformanceError(AssertionError):
    """A forecaster violates the forecaster contract."""


@dataclass(frozen=True)
class StepDecayClock:
    """Cumulative learning rate under a one-drop step schedule: a picklable test clock.

    Args:
        lr: initial learning rate.
        drop_at: step at which the rate is multiplied by ``factor``.
        factor: the decay factor.
    """

    lr: float = 0.1
    drop_at: float = 250.0
    factor: float = 0.1

    def __call__(self, steps: np.ndarray) -> np.ndarray:
        steps = np.asarray(steps, dtype=np.float64)
        before = np.minimum(steps, self.drop_at)
        after = np.maximum(steps - self.drop_at, 0.0)
        return self.lr * before + self.lr * self.factor * after


def check_forecaster(
    forecaster: type[Forecaster] | Forecaster,
    *,
    clock: Clock | None = None,
    n_large: int = 100_000,
) -> list[str]:
    """Run the conformance checks on a forecaster class (every test-parameter set) or instance.

    Args:
        forecaster: a :class:`Forecaster` subclass or an instance (used as a template; it is
            cloned with ``type(f)(**f.get_params())`` and never fitted itself).
        clock: the clock for ``time_axis="lr"`` configurations; defaults to
            :class:`StepDecayClock`.
        n_large: channels in the wide check for vectorized forecasters (non-vectorized ones
            use :data:`SMALL_WIDE`).

    Returns:
        The names of the checks that passed, per configuration (``"<repr>: <check>"``).

    Raises:
        ConformanceError: the first check that fails.
    """
    templates = _templates(forecaster)
    passed: list[str] = []
    for template in templates:
        checker = _Checker(template, clock or StepDecayClock(), n_large)
        passed += [f"{checker.label}: {name}" for name in checker.run()]
    return passed


@contextlib.contextmanager
def isolated_registry(rediscover: bool = False) -> Iterator[None]:
    """Registrations, plugin loads and entry-point discovery inside the block are undone after.

    Use it in tests that register forecasters, so they do not leak into other tests.

    Args:
        rediscover: scan the ``forecastprune.forecasters`` entry points again on the first
            lookup inside the block (after putting a distribution on ``sys.path``).
    """
    with registry.isolated_state(rediscover):
        yield


# -------------------------------------------------------------------- internals
def _templates(forecaster: type[Forecaster] | Forecaster) -> list[Forecaster]:
    if isinstance(forecaster, Forecaster):
        return [forecaster]
    if isinstance(forecaster, type) and issubclass(forecaster, Forecaster):
        return [forecaster(**params) for params in forecaster.get_test_params()]
    raise TypeError(f"check_forecaster takes a Forecaster class or instance; got {forecaster!r}")


def synthetic_history(n_steps: int, n_channels: int, seed: int = 0) -> tuple[np.ndarray,
                                                                             np.ndarray]:
    """A sparse-training-like |γ| history: noisy exponential decays towards per-channel levels.

    Returns:
        ``steps`` (T,) int64 spaced by 10 and ``values`` (T, C) float64, all ≥ 0.
    """
    rng = np.random.default_rng(seed)
    steps = np.arange(n_steps, dtype=np.int64) * _STEP
    start = rng.uniform(0.5, 1.5, n_channels)
    floor = rng.uniform(0.0, 0.6, n_channels) * start
    rate = rng.uniform(0.002, 0.02, n_channels)
    curve = floor + (start - floor) * np.exp(-np.outer(steps, rate))
    noise = rng.normal(0.0, 0.01, curve.shape)
    return steps, np.abs(curve + noise)


class _Checker:
    """Runs every check on fresh clones of one configured forecaster."""

    def __init__(self, template: Forecaster, clock: Clock, n_large: int) -> None:
        self.template = template
        self.label = _label(template)
        self.clock = clock
        self.n_large = n_large
        self.n_steps = max(30, _min_history(template) + 10)
        self.steps, self.values = synthetic_history(self.n_steps, 7)
        self.target = int(self.steps[-1]) + _STEP * self.n_steps

    def run(self) -> list[str]:
        checks: list[tuple[str, Callable[[], None]]] = [
            ("params", self.check_params),
            ("predict before fit raises", self.check_unfitted),
            ("output shape, dtype, finite", self.check_output),
            ("inputs not mutated", self.check_no_mutation),
            ("deterministic", self.check_deterministic),
            ("pickle round trip", self.check_pickle),
            ("constant history", self.check_constant),
            ("short history raises", self.check_short_history),
            ("NaN input raises", self.check_nan),
            ("single channel", self.check_single_channel),
            ("intervals", self.check_intervals),
            ("many channels", self.check_many_channels),
        ]
        for name, check in checks:
            try:
                check()
            except ConformanceError as exc:
                raise ConformanceError(f"{self.label} failed '{name}': {exc}") from exc
            except Exception as exc:  # noqa: BLE001 - any crash is a conformance failure
                raise ConformanceError(
                    f"{self.label} failed '{name}': raised {type(exc).__name__}: {exc}"
                ) from exc
        return [name for name, _ in checks]

    # ------------------------------------------------------------ helpers
    def fresh(self) -> Forecaster:
        return type(self.template)(**copy.deepcopy(self.template.get_params()))

    def fit(self, steps: np.ndarray, values: np.ndarray) -> Forecaster:
        # Copies, so a forecaster that mutates its inputs cannot corrupt the shared fixtures;
        # check_no_mutation is the one check that hands over the arrays it then inspects.
        return self.fit_in_place(steps.copy(), values.copy())

    def fit_in_place(self, steps: np.ndarray, values: np.ndarray) -> Forecaster:
        forecaster = self.fresh()
        fitted = forecaster.fit(steps, values, clock=self.clock)
        if fitted is not forecaster:
            raise ConformanceError("fit must return self")
        return forecaster

    def expect_error(self, action: Callable[[], Any], what: str) -> ForecastPruneError:
        try:
            action()
        except ForecastPruneError as exc:
            return exc
        raise ConformanceError(f"{what} must raise a ForecastPruneError; nothing was raised")

    # ------------------------------------------------------------ checks
    def check_params(self) -> None:
        params = self.template.get_params()
        expected = set(type(self.template).param_defaults())
        if set(params) != expected:
            raise ConformanceError(
                f"get_params() keys {sorted(params)} differ from __init__ parameters "
                f"{sorted(expected)}; store every hyper-parameter under its own name"
            )
        if self.fresh().get_params() != params:
            raise ConformanceError("rebuilding from get_params() changed the parameters")
        if not type(self.template).description:
            raise ConformanceError("set the one-line class attribute `description`")

    def check_unfitted(self) -> None:
        self.expect_error(lambda: self.fresh().predict(self.target), "predict before fit")

    def check_output(self) -> None:
        prediction = self.fit(self.steps, self.values).predict(self.target)
        _check_vector(prediction, self.values.shape[1], "prediction")

    def check_no_mutation(self) -> None:
        steps, values = self.steps.copy(), self.values.copy()
        self.fit_in_place(steps, values).predict(self.target)
        if not (np.array_equal(steps, self.steps) and np.array_equal(values, self.values)):
            raise ConformanceError("fit/predict modified the input arrays")

    def check_deterministic(self) -> None:
        first = self.fit(self.steps, self.values).predict(self.target)
        second = self.fit(self.steps, self.values).predict(self.target)
        _check_close(first, second, "two fits on the same data", rtol=1e-9, atol=1e-12)

    def check_pickle(self) -> None:
        fitted = self.fit(self.steps, self.values)
        restored = pickle.loads(pickle.dumps(fitted))
        _check_close(fitted.predict(self.target), restored.predict(self.target),
                     "predictions after unpickling", rtol=1e-12, atol=0.0)

    def check_constant(self) -> None:
        levels = np.linspace(0.05, 1.0, self.values.shape[1])
        values = np.tile(levels, (self.n_steps, 1))
        prediction = self.fit(self.steps, values).predict(self.target)
        _check_close(prediction, levels, "forecast of a constant history", rtol=1e-4,
                     atol=1e-6)

    def check_short_history(self) -> None:
        minimum = _min_history(self.template)
        n = minimum - 1
        error = self.expect_error(
            lambda: self.fit(self.steps[:n], self.values[:n]), f"a history of {n} < min_history"
        )
        if str(minimum) not in str(error):
            raise ConformanceError(
                f"the error for a too-short history must name the minimum {minimum}; "
                f"got {error}"
            )

    def check_nan(self) -> None:
        values = self.values.copy()
        values[-1, 0] = np.nan
        self.expect_error(lambda: self.fit(self.steps, values), "a history with NaN")

    def check_single_channel(self) -> None:
        prediction = self.fit(self.steps, self.values[:, :1]).predict(self.target)
        _check_vector(prediction, 1, "single-channel prediction")

    def check_intervals(self) -> None:
        fitted = self.fit(self.steps, self.values)
        if not fitted.supports_interval():
            self.expect_error(lambda: fitted.predict_interval(self.target), "predict_interval "
                              "on a point forecaster")
            return
        point = fitted.predict(self.target)
        narrow = fitted.predict_interval(self.target, coverage=0.5)
        wide = fitted.predict_interval(self.target, coverage=0.95)
        tol = 1e-9 * (1.0 + np.abs(point))
        for (lower, upper), label in ((narrow, "50%"), (wide, "95%")):
            _check_vector(lower, point.shape[0], f"{label} lower bound")
            _check_vector(upper, point.shape[0], f"{label} upper bound")
            if np.any(lower > point + tol) or np.any(upper < point - tol):
                raise ConformanceError(f"the {label} interval does not contain the forecast")
        if np.any(wide[0] > narrow[0] + tol) or np.any(wide[1] < narrow[1] - tol):
            raise ConformanceError("the 95% interval does not contain the 50% interval")

    def check_many_channels(self) -> None:
        n_channels = self.n_large if self.template.vectorized else SMALL_WIDE
        steps, values = synthetic_history(self.n_steps, n_channels, seed=1)
        values = values.astype(np.float32)  # what the store hands out; halves the memory
        prediction = self.fit(steps, values).predict(self.target)
        _check_vector(prediction, n_channels, f"{n_channels}-channel prediction")


def _label(forecaster: Forecaster) -> str:
    try:
        return repr(forecaster)
    except AttributeError:  # parameters not stored under their names: the params check says so
        return type(forecaster).__name__


def _min_history(forecaster: Forecaster) -> int:
    return int(forecaster.min_history)


def _check_vector(array: Any, n_channels: int, what: str) -> None:
    if not isinstance(array, np.ndarray):
        raise ConformanceError(f"{what} must be a numpy array; got {type(array).__name__}")
    if array.shape != (n_channels,):
        raise ConformanceError(f"{what} has shape {array.shape}; expected ({n_channels},)")
    if not np.issubdtype(array.dtype, np.floating):
        raise ConformanceError(f"{what} has dtype {array.dtype}; expected a float dtype")
    if not np.all(np.isfinite(array)):
        raise ConformanceError(f"{what} has {np.count_nonzero(~np.isfinite(array))} non-finite "
                               "entries")


def _check_close(actual: np.ndarray, expected: np.ndarray, what: str, *, rtol: float,
                 atol: float) -> None:
    if not np.allclose(actual, expected, rtol=rtol, atol=atol):
        worst = float(np.max(np.abs(np.asarray(actual) - np.asarray(expected))))
        raise ConformanceError(f"{what} differ: max |difference| = {worst:.3g}")
