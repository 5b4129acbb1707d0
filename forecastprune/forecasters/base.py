"""The :class:`Forecaster` base class.

A forecaster turns a γ history — ``steps`` (T,) and ``values`` (T, C), one column per channel —
into each channel's predicted value at a target step. The split follows sktime: the public
``fit``/``predict`` validate and then call the private ``_fit``/``_predict`` that subclasses
implement; hyper-parameters are only stored in ``__init__``; fitted attributes end in ``_``;
capabilities are *tags* (:mod:`.tags`).

Subclasses never see raw steps. They see a float time coordinate ``t``: the step itself
(``time_axis="step"``) or the cumulative learning rate at that step (``time_axis="lr"``), mapped
through the ``clock`` (a :data:`TimeMap`) passed to :meth:`Forecaster.fit`. Under step-decay
schedules most of γ's movement happens before the LR drops, so extrapolating over cumulative LR
is far closer to reality than extrapolating over steps.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from ..errors import ForecasterError
from .tags import TAGS, check_tag_names

#: Any callable mapping an array of steps to an array of time coordinates (e.g. cumulative
#: learning rate); :class:`forecastprune.core.lr_clock.Clock` is one.
TimeMap = Callable[[np.ndarray], np.ndarray]

_RAISE = object()  # get_tag's "no default given"


class Forecaster:
    """Base class of every forecaster.

    Subclasses set :attr:`description` (one line for ``forecastprune list``), declare their
    capabilities in ``_tags`` (see :mod:`.tags`; ``self.set_tags(...)`` in ``__init__`` for tags
    that depend on hyper-parameters) and implement ``_fit(t, values)`` and
    ``_predict(target_t) -> (C,)``. Forecasters with ``supports_interval`` implement
    ``_predict_interval(target_t, coverage) -> (lower, upper)``.
    """

    description: ClassVar[str] = ""
    _tags: ClassVar[dict[str, Any]] = {
        "needs_clock": False,
        "uses_clock": False,
        "time_axis_param": False,
        "vectorized": True,
        "supports_interval": False,
        "min_history": 1,
        "history_window": None,
        "history_grid": None,
        "uses_layout": False,
    }

    # ---------------------------------------------------------------- tags
    @classmethod
    def get_class_tags(cls) -> dict[str, Any]:
        """The class's tags: every ``_tags`` along the MRO merged, the subclass winning."""
        tags: dict[str, Any] = {}
        for klass in reversed(cls.__mro__):
            tags.update(klass.__dict__.get("_tags", {}))
        return tags

    @classmethod
    def get_class_tag(cls, name: str, default: Any = _RAISE) -> Any:
        """One class tag; see :meth:`get_tag`."""
        return _lookup(cls.get_class_tags(), name, default, cls.__name__)

    def get_tags(self) -> dict[str, Any]:
        """The class tags overridden by the ones this instance set in ``__init__``."""
        return {**self.get_class_tags(), **self.__dict__.get("_tags_dynamic", {})}

    def get_tag(self, name: str, default: Any = _RAISE) -> Any:
        """One tag of this instance.

        Args:
            name: a tag name (see :mod:`.tags`).
            default: returned for a name this forecaster does not have; without it, such a
                name raises.

        Raises:
            ForecasterError: an unknown tag name and no default (lists the valid tags).
        """
        return _lookup(self.get_tags(), name, default, type(self).__name__)

    def set_tags(self, **tags: Any) -> Forecaster:
        """Override class tags on this instance (call in ``__init__``); returns self.

        Raises:
            ForecasterError: an unknown tag name (lists the valid tags).
        """
        check_tag_names(tags, type(self).__name__)
        self.__dict__.setdefault("_tags_dynamic", {}).update(tags)
        return self

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

    # ---------------------------------------------------------------- public API
    def set_layout(self, layer_sizes: Sequence[int]) -> Forecaster:
        """Tell a ``uses_layout`` forecaster how many channels each BN layer has, in network
        order (the columns of the history are the layers' channels, one layer after another).
        Kept across ``fit`` calls: the layout is the run's, not something fitted.

        Raises:
            ForecasterError: on an empty layout or a layer with no channels.
        """
        sizes = tuple(int(n) for n in layer_sizes)
        if not sizes or min(sizes) < 1:
            raise ForecasterError(
                f"{type(self).__name__}.set_layout needs one positive channel count per BN "
                f"layer; got {list(layer_sizes)}"
            )
        self._layer_sizes = sizes
        return self

    def layer_of_channel(self, n_channels: int) -> np.ndarray | None:
        """(C,) each channel's layer number from :meth:`set_layout`; None without a layout.

        Raises:
            ForecasterError: when the layout's channels do not add up to ``n_channels``.
        """
        sizes = self.__dict__.get("_layer_sizes")
        if sizes is None:
            return None
        if sum(sizes) != n_channels:
            raise ForecasterError(
                f"{type(self).__name__}: the layout has {sum(sizes)} channels in {len(sizes)} "
                f"layers but the history has {n_channels}; pass the layout of the recorded run"
            )
        return np.repeat(np.arange(len(sizes)), sizes)

    def fit(
        self, steps: np.ndarray, values: np.ndarray, clock: TimeMap | None = None
    ) -> Forecaster:
        """Fit on a history, replacing whatever an earlier ``fit`` learned.

        Args:
            steps: (T,) strictly increasing integer steps.
            values: (T, C) finite values, one column per channel (|γ| in practice).
            clock: maps steps to the time coordinate; required when the ``needs_clock`` tag is
                true, ignored otherwise.

        Returns:
            self.

        Raises:
            ForecasterError: on bad shapes, non-finite values, non-increasing steps, a history
                shorter than the ``min_history`` tag, or a missing clock.
        """
        self._reset_fitted_state()
        steps, values = self._validate_history(steps, values)
        self.clock_ = self._resolve_clock(clock)
        self.n_channels_ = values.shape[1]
        self.last_step_ = int(steps[-1])
        self._fit(self._to_time(steps), values)
        self.is_fitted_ = True  # last: a fit that raised leaves the forecaster unfitted
        return self

    def predict(self, target_step: int | float) -> np.ndarray:
        """Predicted value of every channel at ``target_step``, shape (C,), float64."""
        target_t = self._target_time(target_step)
        prediction = np.asarray(self._predict(target_t), dtype=np.float64)
        return self._check_output(prediction, "prediction")

    def predict_interval(
        self, target_step: int | float, coverage: float = 0.9
    ) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bounds, each (C,), of a central ``coverage`` prediction interval.

        Raises:
            ForecasterError: the ``supports_interval`` tag is false, ``coverage`` is outside
                (0, 1), or the forecaster is not fitted.
        """
        if not 0.0 < coverage < 1.0:
            raise ForecasterError(f"coverage must lie strictly between 0 and 1; got {coverage}")
        if not self.get_tag("supports_interval"):
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

    # ---------------------------------------------------------------- to implement
    def _fit(self, t: np.ndarray, values: np.ndarray) -> None:
        raise NotImplementedError

    def _predict(self, target_t: float) -> np.ndarray:
        raise NotImplementedError

    def _predict_interval(self, target_t: float, coverage: float) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError(
            f"{type(self).__name__} has the supports_interval tag but no _predict_interval"
        )

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
        minimum = self.get_tag("min_history")
        if steps.shape[0] < minimum:
            raise ForecasterError(
                f"{name} needs at least min_history={minimum} snapshots; got "
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

    def _reset_fitted_state(self) -> None:
        """Forget an earlier fit: every attribute ending in ``_`` (dunders excepted)."""
        params = self.param_defaults()
        for name in [
            n for n in vars(self) if n.endswith("_") and not n.endswith("__") and n not in params
        ]:
            delattr(self, name)

    def _resolve_clock(self, clock: TimeMap | None) -> TimeMap | None:
        if not self.get_tag("needs_clock"):
            return None
        if clock is None:
            raise ForecasterError(
                f"{self!r} needs a clock mapping steps to cumulative learning rate; pass "
                "clock=... (see forecastprune.core.lr_clock)"
            )
        return clock

    def _to_time(self, steps: np.ndarray) -> np.ndarray:
        if self.clock_ is None:
            return np.asarray(steps, dtype=np.float64)
        return np.asarray(self.clock_(np.asarray(steps)), dtype=np.float64)

    def _target_time(self, target_step: int | float) -> float:
        if not getattr(self, "is_fitted_", False):
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


def _lookup(tags: dict[str, Any], name: str, default: Any, owner: str) -> Any:
    if name in tags:
        return tags[name]
    if default is not _RAISE:
        return default
    raise ForecasterError(f"{owner} has no tag {name!r}; valid tags: {sorted(TAGS)}")
