"""A base for forecasters whose learned forecast passes a run-level gate and has intervals.

``auto``, ``learned`` and ``learned_gbr`` share it: the subclass supplies the model's forecast
as a function of a history window, and :meth:`GatedForecaster._gated` reads the forecaster's
gate (:mod:`.gate`): naive when the gate stays closed, the forecast shrunk toward naive's
order when it opens. Intervals are the gate's calibrated ``forecast ± k · volatility``.
"""

from __future__ import annotations

import math

import numpy as np

from .candidates import Window
from .gate import (
    MODEL_SIGNALS,
    ORIGINS,
    ForecastFn,
    Gate,
    gate_for,
    interval,
    shrink_toward_naive,
    signal,
)
from .windowed import WindowForecaster


class GatedForecaster(WindowForecaster):
    """Subclasses name their gate (:attr:`gate_name`) and call :meth:`_gated` in
    ``_forecast``; ``gated`` and ``gates`` are ``__init__`` parameters of every subclass."""

    _tags = {"supports_interval": True}
    #: the forecaster's entry in the gates file
    gate_name = ""
    gated: bool = True
    gates: str | None = None

    def gate(self) -> Gate:
        """This forecaster's gate, from ``gates`` (None: the bundled file)."""
        return gate_for(self.gate_name, self.gates)

    def predict_interval(
        self, target_step: int | float, coverage: float = 0.9
    ) -> tuple[np.ndarray, np.ndarray]:
        self.target_step_ = float(target_step)  # as predict does: the window needs the step
        return super().predict_interval(target_step, coverage)

    def _predict(self, target_t: float) -> np.ndarray:
        forecast = self._forecast(self._window(target_t))
        self.forecast_cache_ = (target_t, forecast)
        return forecast

    def _predict_interval(self, target_t: float, coverage: float) -> tuple[np.ndarray, np.ndarray]:
        cached = getattr(self, "forecast_cache_", None)
        fresh = cached is not None and cached[0] == target_t
        forecast = cached[1] if fresh else self._predict(target_t)
        return interval(self._window(target_t), forecast, self.gate(), coverage)

    def _window(self, target_t: float) -> Window:
        layers = self.layer_of_channel(self.values_.shape[1])
        return Window(self.steps_, self.t_, self.values_, self.target_step_, target_t, layers)

    def _gated(self, window: Window, model: ForecastFn, origins: int = ORIGINS) -> np.ndarray:
        """The model's forecast through the gate; what the gate saw is kept in ``signal_`` and
        ``gate_open_`` (None when ungated)."""
        if not self._read_gate(window, model, origins):
            return window.values[-1].copy()
        if self.gate_open_ is None:
            return model(window)
        return shrink_toward_naive(window, model(window), self.gate().shrink)

    def _shut_without_model(self, window: Window) -> bool:
        """Whether the gate keeps naive whatever the model says, decided without running it:
        the gate is closed on every run, or its signal reads the history alone and keeps it
        shut. A forecaster asks first and skips computing the model's inputs (for
        ``learned_gbr`` at 13,376 channels, most of its time)."""
        if not self.gated:
            return False
        gate = self.gate()
        if gate.signal in MODEL_SIGNALS and not gate.closed:
            return False
        return not self._read_gate(window, _model_not_needed)

    def _read_gate(self, window: Window, model: ForecastFn, origins: int = ORIGINS) -> bool:
        """Whether the model's forecast may be used (always, when ungated), keeping what the
        gate saw in ``signal_`` and ``gate_open_``."""
        self.signal_, self.gate_open_ = math.nan, None
        if not self.gated:
            return True
        gate = self.gate()
        if gate.signal is not None and not gate.closed:
            self.signal_ = signal(gate.signal, window, model, origins)
        self.gate_open_ = gate.opens(self.signal_)
        return self.gate_open_

    def gate_note(self) -> str:
        """What the gate saw and decided, e.g. ``gate closed (backtest_gain -0.004 ≤ +0.002):
        naive``; "" when ungated or not yet predicted."""
        if getattr(self, "gate_open_", None) is None:
            return ""
        gate = self.gate()
        if gate.closed:
            return "gate closed on every run (fitted family-out, no opening kept its floor): naive"
        side = ">" if gate.above else "<"
        value, threshold = _shown(gate, self.signal_), _shown(gate, gate.threshold)
        seen = f"{gate.signal} {value}, opens {side} {threshold}"
        if self.gate_open_:
            return f"gate open ({seen}), shrink {gate.shrink:g}"
        return f"gate closed ({seen}): naive"


def _shown(gate: Gate, value: float) -> str:
    """A signal value as the note prints it: a channel count whole, the rest to 4 places."""
    return f"{value:,.0f}" if gate.signal == "channels" else f"{value:+.4f}"


def _model_not_needed(window: Window) -> np.ndarray:
    raise AssertionError("a gate on a history-only signal ran the model")
