"""The :class:`Forecaster` base class.

A forecaster turns a γ history — ``steps`` (T,) and ``values`` (T, C), one column per channel —
into each channel's predicted value at a target step. The split follows sktime: the public
``fit``/``predict`` validate and then call the private ``_fit``/``_predict`` that subclasses
implement; hyper-parameters are only stored in ``__init__``; fitted attributes end in ``_``.

Subclasses never see raw steps. They see a float time coordinate ``t``: the step itself
(``time_axis="step"``) or the cumulative learning rate at that step (``time_axis="lr"``), mapped
through a *clock* passed to :meth:`Forecaster.fit`. Under step-decay schedules most of γ's
movement happens before the LR drops, so extrapolating over cumulative LR is far closer to
reality than extrapolating over steps.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from ..errors import ForecasterError

#: Maps an array of steps to an array of time coordinates (e.g. cumulative learning rate).
Clock = Callable[[np.ndarray], np.ndarray]

TIME_AXES = ("step", "lr")


class Forecaster:
    """Base class of every forecaster.

    Subclasses set :attr:`min_history` (the fewest snapshots they can fit; may be a property
    that depends on the hyper-parameters), :attr:`description`
    (one line for ``forecastprune list``) and implement ``_fit(t, values)`` and
    ``_predict(target_t) -> (C,)``. Forecasters that can give prediction intervals implement
    ``_predict_interval(target_t, coverage) -> (lower, upper)``. Extrapolating forecasters take a
    ``time_axis`` hyper-parameter and set :attr:`uses_time_axis`.
    """

    min_history: ClassVar[int] = 1
    description: ClassVar[str] = ""
    uses_time_axis: ClassVar[bool] = False
    #: True when fit/predict are batched over channels (no per-channel Python loop); the
    #: conformance suite only runs its 100,000-channel check on vectorized forecasters.
    vectorized: ClassVar[bool] = True

    # ---------------------------------------------------------------- parameters
    @classmethod
    def param_defaults(cls) -> dict[str, Any]:
        """The ``__init__`` parameters and their defaults (``inspect.Parameter.empty`` if none)."""
        signature = inspect.signature(cls.__init__)
        return {
            name: p.default
            for name, p in signature.parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }

    def get_params(self) -> dict[str, Any]:
        """Hyper-parameters as passed to ``__init__`` (stored under the same attribute names)."""
        return {name: getattr(self, name) for name in self.param_defaults()}

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        """Parameter sets the conformance suite instantiates; override to add more."""
        return [{}]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    #: capability tags declared by the class, merged along the MRO by :meth:`get_tag`;
    #: ``uses_clock``: the forecaster uses the run's clock when one exists and works without
    _tags: ClassVar[dict[str, Any]] = {"uses_clock": False}

    def set_tags(self, **tags: Any) -> Forecaster:
        """Override class tags on this instance (tags that depend on hyper-parameters)."""
        self._instance_tags = {**getattr(self, "_instance_tags", {}), **tags}
        return self

    def get_tag(self, name: str) -> Any:
        """A capability of this forecaster: instance tags, then class ``_tags`` (MRO), then the
        bridge for forecasters that do not declare tags yet."""
        if name in getattr(self, "_instance_tags", {}):
            return self._instance_tags[name]
        for klass in type(self).__mro__:
            declared = vars(klass).get("_tags", {})
            if name in declared:
                return declared[name]
        tags = {
            "needs_clock": getattr(self, "time_axis", "step") == "lr",
            "time_axis_param": type(self).uses_time_axis,
            "supports_interval": self.supports_interval(),
            "min_history": int(self.min_history),
            "history_window": None,
            "vectorized": type(self).vectorized,
        }
        return tags[name]

    # ---------------------------------------------------------------- public API
    def fit(self, steps: np.ndarray, values: np.ndarray, clock: Clock | None = None) -> Forecaster:
        """Fit on a history.

        Args:
            steps: (T,) strictly increasing integer steps.
            values: (T, C) finite values, one column per channel (|γ| in practice).
            clock: maps steps to the time coordinate when ``time_axis="lr"``; ignored otherwise.

        Returns:
            self.

        Raises:
            ForecasterError: on bad shapes, non-finite values, non-increasing steps, a history
                shorter than :attr:`min_history`, or ``time_axis="lr"`` without a clock.
        """
        steps, values = self._validate_history(steps, values)
        self.clock_ = self._resolve_clock(clock)
        self.n_channels_ = values.shape[1]
        self.last_step_ = int(steps[-1])
        self._fit(self._to_time(steps), values)
        return self

    def predict(self, target_step: int | float) -> np.ndarray:
        """Predicted value of every channel at ``target_step``, shape (C,), float64."""
        target_t = self._target_time(target_step)
        prediction = np.asarray(self._predict(target_t), dtype=np.float64)
        return self._check_output(prediction, "prediction")

    def predict_interval(
        self, target_step: int | float, coverage: float = 0.9
    ) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds, each (C,), of a central ``coverage`` prediction interval."""
        if not 0.0 < coverage < 1.0:
            raise ForecasterError(f"coverage must lie strictly between 0 and 1; got {coverage}")
        if not self.supports_interval():
            raise ForecasterError(
                f"{type(self).__name__} gives point forecasts only; use a forecaster with "
                "intervals (linear, arima) for uncertainty-aware pruning"
            )
        target_t = self._target_time(target_step)
        lower, upper = self._predict_interval(target_t, coverage)
        return (
            self._check_output(np.asarray(lower, dtype=np.float64), "interval lower bound"),
            self._check_output(np.asarray(upper, dtype=np.float64), "interval upper bound"),
        )

    @classmethod
    def supports_interval(cls) -> bool:
        return cls._predict_interval is not Forecaster._predict_interval

    # ---------------------------------------------------------------- to implement
    def _fit(self, t: np.ndarray, values: np.ndarray) -> None:
        raise NotImplementedError

    def _predict(self, target_t: float) -> np.ndarray:
        raise NotImplementedError

    def _predict_interval(self, target_t: float, coverage: float) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    # ---------------------------------------------------------------- helpers
    def _validate_history(self, steps: Any, values: Any) -> tuple[np.ndarray, np.ndarray]:
        steps = np.asarray(steps)
        values = np.asarray(values, dtype=np.float64)
        name = type(self).__name__
        if steps.ndim != 1 or values.ndim != 2 or values.shape[0] != steps.shape[0]:
            raise ForecasterError(
                f"{name}.fit expects steps (T,) and values (T, C); got steps {steps.shape} "
                f"and values {values.shape}"
            )
        if values.shape[1] == 0:
            raise ForecasterError(f"{name}.fit got values with zero channels")
        if steps.shape[0] < self.min_history:
            raise ForecasterError(
                f"{name} needs at least min_history={self.min_history} snapshots; got "
                f"{steps.shape[0]}. Use a later cutoff or a forecaster with a shorter window"
            )
        if not np.all(np.isfinite(steps)) or np.any(np.diff(steps) <= 0):
            raise ForecasterError(f"{name}.fit needs strictly increasing finite steps")
        if not np.all(np.isfinite(values)):
            bad = int(np.count_nonzero(~np.isfinite(values)))
            raise ForecasterError(
                f"{name}.fit got {bad} NaN/Inf values; forecasters need finite histories"
            )
        return steps.astype(np.float64), values

    def _resolve_clock(self, clock: Clock | None) -> Clock | None:
        axis = getattr(self, "time_axis", "step")
        if axis not in TIME_AXES:
            raise ForecasterError(f"time_axis must be one of {TIME_AXES}; got {axis!r}")
        if axis == "lr" and clock is None:
            raise ForecasterError(
                f"{type(self).__name__}(time_axis='lr') needs a clock mapping steps to "
                "cumulative learning rate; pass clock=... (see forecastprune.record.lr_clock)"
            )
        return clock if axis == "lr" else None

    def _to_time(self, steps: np.ndarray) -> np.ndarray:
        if self.clock_ is None:
            return np.asarray(steps, dtype=np.float64)
        return np.asarray(self.clock_(np.asarray(steps)), dtype=np.float64)

    def _target_time(self, target_step: int | float) -> float:
        if not hasattr(self, "n_channels_"):
            raise ForecasterError(
                f"{type(self).__name__} is not fitted yet; call fit(steps, values) first"
            )
        if not np.isfinite(target_step):
            raise ForecasterError(f"target_step must be finite; got {target_step}")
        return float(self._to_time(np.array([target_step]))[0])

    def _check_output(self, output: np.ndarray, what: str) -> np.ndarray:
        if output.shape != (self.n_channels_,):
            raise ForecasterError(
                f"{type(self).__name__} returned a {what} of shape {output.shape}; "
                f"expected ({self.n_channels_},)"
            )
        return output
