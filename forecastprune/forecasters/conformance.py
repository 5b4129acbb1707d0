"""The forecaster contract as named checks, run by :func:`forecastprune.testing.check_forecaster`.

Each check takes fresh clones of one configured forecaster and raises
:class:`ConformanceError` with what it found. :data:`CHECKS` lists them in the order they run:
cheap structural checks first, the 100,000-channel one last.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ForecasterError, ForecastPruneError
from .base import Forecaster, TimeMap
from .tags import tag_problems

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


def synthetic_history(
    n_steps: int, n_channels: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
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


class Checker:
    """The checks, each a ``check_<name>`` method, on fresh clones of one forecaster.

    Args:
        template: the configured forecaster (cloned, never fitted itself).
        clock: passed to every ``fit`` (used by forecasters whose ``needs_clock`` tag is true).
        n_large: channels in the wide check when the ``vectorized`` tag is true.
    """

    def __init__(self, template: Forecaster, clock: TimeMap, n_large: int) -> None:
        self.template = template
        self.label = label(template)
        self.clock = clock
        self.n_large = n_large
        self.n_steps = max(30, int(template.get_tag("min_history", 1)) + 10)
        self.steps, self.values = synthetic_history(self.n_steps, 7)
        self.target = int(self.steps[-1]) + _STEP * self.n_steps

    def run(self, name: str) -> None:
        """Run the check ``name``; raises :class:`ConformanceError` when it fails."""
        try:
            getattr(self, f"check_{name}")()
        except ConformanceError:
            raise
        except Exception as exc:  # noqa: BLE001 - any crash is a conformance failure
            raise ConformanceError(f"raised {type(exc).__name__}: {exc}") from exc

    # ------------------------------------------------------------ helpers
    def fresh(self) -> Forecaster:
        return type(self.template)(**copy.deepcopy(self.template.get_params()))

    def fit(
        self, steps: np.ndarray, values: np.ndarray, forecaster: Forecaster | None = None
    ) -> Forecaster:
        # Copies, so a forecaster that mutates its inputs cannot corrupt the shared fixtures;
        # check_inputs_not_mutated is the one check that hands over arrays it then inspects.
        return self.fit_in_place(steps.copy(), values.copy(), forecaster)

    def fit_in_place(
        self, steps: np.ndarray, values: np.ndarray, forecaster: Forecaster | None = None
    ) -> Forecaster:
        forecaster = forecaster or self.fresh()
        if forecaster.get_tag("uses_layout"):  # two BN layers, as a store's layout would say
            half = values.shape[1] // 2
            forecaster.set_layout([half, values.shape[1] - half] if half else [values.shape[1]])
        if forecaster.fit(steps, values, clock=self.clock) is not forecaster:
            raise ConformanceError("fit must return self")
        return forecaster

    def expect_error(self, action: Callable[[], Any], what: str) -> ForecastPruneError:
        try:
            action()
        except ForecastPruneError as exc:
            return exc
        raise ConformanceError(f"{what} must raise a ForecastPruneError; nothing was raised")

    def outputs(self, forecaster: Forecaster) -> list[np.ndarray]:
        """The point forecast, plus the 90 % interval when the forecaster gives one."""
        result = [forecaster.predict(self.target)]
        if forecaster.get_tag("supports_interval"):
            result += list(forecaster.predict_interval(self.target, coverage=0.9))
        return result

    # ------------------------------------------------------------ structure
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

    def check_tags(self) -> None:
        problems = tag_problems(type(self.template).get_class_tags())
        problems += tag_problems(self.template.get_tags())
        params = self.template.get_params()
        has_axis = "time_axis" in params
        tags = self.template.get_tags()
        if tags.get("time_axis_param") is not has_axis:
            problems.append(
                f"tag 'time_axis_param' is {tags.get('time_axis_param')!r} but the "
                f"forecaster {'has' if has_axis else 'has no'} time_axis parameter"
            )
        if has_axis and tags.get("needs_clock") is not (params["time_axis"] == "lr"):
            problems.append(
                f"tag 'needs_clock' is {tags.get('needs_clock')!r} with "
                f"time_axis={params['time_axis']!r}; it must be time_axis == 'lr'"
            )
        if problems:
            raise ConformanceError("; ".join(sorted(set(problems))))

    def check_predict_before_fit(self) -> None:
        error = self.expect_error(lambda: self.fresh().predict(self.target), "predict before fit")
        if not isinstance(error, ForecasterError) or "fit" not in str(error):
            raise ConformanceError(
                f"predict before fit must raise a ForecasterError telling to call fit; got "
                f"{type(error).__name__}: {error}"
            )

    # ------------------------------------------------------------ fit and predict
    def check_output(self) -> None:
        prediction = self.fit(self.steps, self.values).predict(self.target)
        check_vector(prediction, self.values.shape[1], "prediction")

    def check_intervals(self) -> None:
        fitted = self.fit(self.steps, self.values)
        if not fitted.get_tag("supports_interval"):
            self.expect_error(
                lambda: fitted.predict_interval(self.target),
                "predict_interval without the supports_interval tag",
            )
            return
        point = fitted.predict(self.target)
        narrow = fitted.predict_interval(self.target, coverage=0.5)
        wide = fitted.predict_interval(self.target, coverage=0.95)
        tol = 1e-9 * (1.0 + np.abs(point))
        for (lower, upper), level in ((narrow, "50%"), (wide, "95%")):
            check_vector(lower, point.shape[0], f"{level} lower bound")
            check_vector(upper, point.shape[0], f"{level} upper bound")
            if np.any(lower > point + tol) or np.any(upper < point - tol):
                raise ConformanceError(f"the {level} interval does not contain the forecast")
        if np.any(wide[0] > narrow[0] + tol) or np.any(wide[1] < narrow[1] - tol):
            raise ConformanceError("the 95% interval does not contain the 50% interval")

    def check_inputs_not_mutated(self) -> None:
        steps, values = self.steps.copy(), self.values.copy()
        self.fit_in_place(steps, values).predict(self.target)
        if not (np.array_equal(steps, self.steps) and np.array_equal(values, self.values)):
            raise ConformanceError("fit/predict modified the input arrays")

    def check_params_unchanged_by_fit(self) -> None:
        forecaster = self.fresh()
        before = copy.deepcopy(forecaster.get_params())
        self.outputs(self.fit(self.steps, self.values, forecaster))
        after = forecaster.get_params()
        changed = sorted(k for k in before if not _same(before[k], after.get(k)))
        if changed:
            raise ConformanceError(
                f"fit changed the hyper-parameter(s) {changed}; keep fitted values in "
                "attributes ending in '_'"
            )

    def check_deterministic(self) -> None:
        first = self.fit(self.steps, self.values).predict(self.target)
        second = self.fit(self.steps, self.values).predict(self.target)
        check_close(first, second, "two fits on the same data", rtol=1e-9, atol=1e-12)

    def check_refit_idempotent(self) -> None:
        forecaster = self.fit(self.steps, self.values)
        first = self.outputs(forecaster)
        second = self.outputs(self.fit(self.steps, self.values, forecaster))
        for a, b in zip(first, second):
            check_close(
                a,
                b,
                "outputs after refitting the same instance on the same data",
                rtol=1e-9,
                atol=1e-12,
            )

    def check_refit_replaces_state(self) -> None:
        other_steps, other_values = synthetic_history(self.n_steps + 5, 4, seed=2)
        refitted = self.fit(other_steps, 2.0 * other_values)
        self.fit(self.steps, self.values, refitted)
        fresh = self.fit(self.steps, self.values)
        for a, b in zip(self.outputs(refitted), self.outputs(fresh)):
            check_close(
                a, b, "outputs of a refitted instance and a fresh one", rtol=1e-9, atol=1e-12
            )
        stale = sorted(_fitted_names(refitted) - _fitted_names(fresh))
        if stale:
            raise ConformanceError(f"refitting left the earlier fit's attributes {stale}")

    def check_pickle(self) -> None:
        fitted = self.fit(self.steps, self.values)
        restored = pickle.loads(pickle.dumps(fitted))
        check_close(
            fitted.predict(self.target),
            restored.predict(self.target),
            "predictions after unpickling",
            rtol=1e-12,
            atol=0.0,
        )

    def check_constant_history(self) -> None:
        levels = np.linspace(0.05, 1.0, self.values.shape[1])
        values = np.tile(levels, (self.n_steps, 1))
        prediction = self.fit(self.steps, values).predict(self.target)
        check_close(prediction, levels, "forecast of a constant history", rtol=1e-4, atol=1e-6)

    # ------------------------------------------------------------ history length
    def check_min_history(self) -> None:
        minimum = int(self.template.get_tag("min_history"))
        n = minimum - 1
        error = self.expect_error(
            lambda: self.fit(self.steps[:n], self.values[:n]), f"a history of {n} < min_history"
        )
        if str(minimum) not in str(error):
            raise ConformanceError(
                f"the error for a too-short history must name the minimum {minimum}; got {error}"
            )
        prediction = self.fit(self.steps[:minimum], self.values[:minimum]).predict(self.target)
        check_vector(prediction, self.values.shape[1], f"prediction from {minimum} snapshots")

    def check_history_window(self) -> None:
        window = self.template.get_tag("history_window")
        if window is None:
            return
        full = self.outputs(self.fit(self.steps, self.values))
        last = self.outputs(self.fit(self.steps[-window:], self.values[-window:]))
        for a, b in zip(full, last):
            check_close(
                a,
                b,
                f"outputs from the last history_window={window} snapshots and "
                "from the whole history",
                rtol=1e-9,
                atol=1e-12,
            )

    def check_nan_input(self) -> None:
        values = self.values.copy()
        values[-1, 0] = np.nan
        self.expect_error(lambda: self.fit(self.steps, values), "a history with NaN")

    def check_single_channel(self) -> None:
        prediction = self.fit(self.steps, self.values[:, :1]).predict(self.target)
        check_vector(prediction, 1, "single-channel prediction")

    def check_many_channels(self) -> None:
        n_channels = self.n_large if self.template.get_tag("vectorized") else SMALL_WIDE
        steps, values = synthetic_history(self.n_steps, n_channels, seed=1)
        values = values.astype(np.float32)  # what the store hands out; halves the memory
        prediction = self.fit(steps, values).predict(self.target)
        check_vector(prediction, n_channels, f"{n_channels}-channel prediction")


#: every check, in the order it runs
CHECKS: tuple[str, ...] = tuple(
    name.removeprefix("check_") for name in vars(Checker) if name.startswith("check_")
)


def label(forecaster: Forecaster) -> str:
    """The forecaster's repr, or its class name when the repr itself is broken."""
    try:
        return repr(forecaster)
    except AttributeError:  # parameters not stored under their names: the params check says so
        return type(forecaster).__name__


def check_vector(array: Any, n_channels: int, what: str) -> None:
    """Raise unless ``array`` is a finite float vector of ``n_channels`` entries."""
    if not isinstance(array, np.ndarray):
        raise ConformanceError(f"{what} must be a numpy array; got {type(array).__name__}")
    if array.shape != (n_channels,):
        raise ConformanceError(f"{what} has shape {array.shape}; expected ({n_channels},)")
    if not np.issubdtype(array.dtype, np.floating):
        raise ConformanceError(f"{what} has dtype {array.dtype}; expected a float dtype")
    if not np.all(np.isfinite(array)):
        raise ConformanceError(
            f"{what} has {np.count_nonzero(~np.isfinite(array))} non-finite entries"
        )


def check_close(
    actual: np.ndarray, expected: np.ndarray, what: str, *, rtol: float, atol: float
) -> None:
    """Raise unless the two arrays agree within the tolerances (names the worst gap)."""
    if np.shape(actual) != np.shape(expected):
        raise ConformanceError(
            f"{what} differ in shape: {np.shape(actual)} vs {np.shape(expected)}"
        )
    if not np.allclose(actual, expected, rtol=rtol, atol=atol):
        worst = float(np.max(np.abs(np.asarray(actual) - np.asarray(expected))))
        raise ConformanceError(f"{what} differ: max |difference| = {worst:.3g}")


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # arrays compare elementwise: fall back to their text
        return repr(a) == repr(b)


def _fitted_names(forecaster: Forecaster) -> set[str]:
    return {name for name in vars(forecaster) if name.endswith("_") and not name.endswith("__")}
