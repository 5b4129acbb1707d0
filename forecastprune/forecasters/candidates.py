"""The candidate forecasts ``auto`` backtests, and the ranking score it backtests them with.

Each candidate is a closed-form function of the history, batched over channels, so ``auto``
can fit dozens of them at several backtest origins in a fraction of a second:

- ``naive``: the last value (the control, always the first candidate);
- ``sma(w)``: the mean of the last ``w`` snapshots (noise removed, level assumed settled);
- ``ema(span)``: the exponentially weighted mean;
- ``trend(w, λ)``: a least-squares line over the last ``w`` snapshots, evaluated at the last
  snapshot (a de-noised level), plus ``λ`` times the slope over the horizon. ``λ`` shrinks the
  trend toward that level; ``λ = 0`` is a level-only smoother that keeps the drift's end point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

#: bottom-set fractions whose IoU ``rank_agreement`` averages (around the usual ratio 0.5)
RANK_RATIOS = (0.3, 0.4, 0.5, 0.6, 0.7)
#: windows of the trend and AR candidates, as fractions of the history they are given, so a
#: backtest on a shorter history fits the same share of it as the final forecast does
TRENDS = ((0.25, 0.0), (0.5, 0.25))  # (window, shrink λ)
AR_WINDOWS = (1.0,)



@dataclass(frozen=True)
class Window:
    """A history handed to candidates: both time axes, the values and the target on each.

    Attributes:
        steps: (T,) steps as floats; ``t``: (T,) the clock's time (cumulative LR), or the steps
            when there is no clock.
        values: (T, C) |γ|.
        target_step, target_t: the target on each axis.
    """

    steps: np.ndarray
    t: np.ndarray
    values: np.ndarray
    target_step: float
    target_t: float

    def head(self, end: int, target: int) -> Window:
        """The first ``end + 1`` snapshots, predicting the seen snapshot ``target``."""
        return Window(self.steps[: end + 1], self.t[: end + 1], self.values[: end + 1],
                      float(self.steps[target]), float(self.t[target]))

    def axis(self, name: str) -> tuple[np.ndarray, float]:
        """(times, target time) on ``"step"`` or ``"lr"`` (the clock's axis)."""
        return (self.steps, self.target_step) if name == "step" else (self.t, self.target_t)


#: a history -> (C,) forecast
ForecastFn = Callable[[Window], np.ndarray]


@dataclass(frozen=True)
class Candidate:
    """A named closed-form forecast."""

    name: str
    forecast: ForecastFn


def naive(w: Window) -> np.ndarray:
    """The last value."""
    return w.values[-1].copy()


def sma(window: int) -> ForecastFn:
    """The mean of the last ``window`` snapshots."""
    def forecast(w: Window) -> np.ndarray:
        return w.values[-window:].mean(axis=0)
    return forecast


def ema(span: float) -> ForecastFn:
    """The exponentially weighted mean, ``α = 2 / (span + 1)``, started at the first value."""
    alpha = 2.0 / (span + 1.0)

    def forecast(w: Window) -> np.ndarray:
        values = w.values
        age = np.arange(values.shape[0] - 1, -1, -1, dtype=np.float64)
        weights = alpha * (1.0 - alpha) ** age
        weights[0] = (1.0 - alpha) ** age[0]
        return weights @ values
    return forecast


def _last(fraction: float, n: int, fewest: int) -> int:
    """How many of ``n`` snapshots a window of ``fraction`` of the history covers."""
    return min(n, max(fewest, int(round(fraction * n))))


def trend(window: float, shrink: float) -> ForecastFn:
    """Line over the last ``window`` (a fraction) of the history: level at the last snapshot
    + ``shrink``·slope·h.

    With fewer than three snapshots (or no time spread) the line is undefined and the forecast
    is the last value. Forecasts are clipped at 0, as |γ| is.
    """
    def forecast(w: Window) -> np.ndarray:
        t, values = w.t, w.values
        n = _last(window, len(t), 3)
        x, y = t[-n:], values[-n:]
        dx = x - x.mean()
        sxx = float(dx @ dx)
        if len(x) < 3 or sxx <= 0.0:
            return values[-1].copy()
        slope = (dx @ y) / sxx
        level = y.mean(axis=0) + slope * dx[-1]
        horizon = max(float(w.target_t - t[-1]), 0.0)
        return np.maximum(level + shrink * slope * horizon, 0.0)
    return forecast


def default_candidates() -> list[Candidate]:
    """``naive`` first, then a short list: few candidates keep the backtest's choice from
    fitting its own noise (measured on the suite: more trend variants won backtests they then
    lost on the real horizon)."""
    candidates = [Candidate("naive", naive), Candidate("ema(span=4)", ema(4.0))]
    candidates += [Candidate(f"trend(w={w:g}, λ={s:g})", trend(w, s))
                   for w, s in TRENDS]
    candidates += [Candidate(f"ar1(w={w:g}, {axis})", ar1_increments(w, axis))
                   for w in AR_WINDOWS for axis in ("step", "lr")]
    return candidates


def ranks(values: np.ndarray) -> np.ndarray:
    """0-based rank of each entry (ties broken by position, as a stable sort does)."""
    order = np.argsort(values, kind="stable")
    out = np.empty(len(values), dtype=np.int64)
    out[order] = np.arange(len(values))
    return out


def rank_agreement(
    predicted: np.ndarray, actual: np.ndarray, ratios: tuple[float, ...] = RANK_RATIOS
) -> float:
    """Mean IoU of the bottom-``q`` sets of two rankings over ``q`` in ``ratios``.

    The bottom-``q`` set is what a pruning ratio ``q`` removes, so this is the metric
    ``compare`` scores forecasts by, averaged over ratios to be less noisy than any one of them.
    """
    n = len(actual)
    rp, ra = ranks(predicted), ranks(actual)
    scores = []
    for q in ratios:
        k = max(1, int(round(q * n)))
        inter = np.count_nonzero((rp < k) & (ra < k))
        scores.append(inter / (2 * k - inter))
    return float(np.mean(scores))


def ar1_increments(window: float, axis: str) -> ForecastFn:
    """Per-channel AR(1) on increments over the last ``window`` (a fraction) of the history,
    the horizon counted in snapshot spacings on ``axis``."""
    def forecast(w: Window) -> np.ndarray:
        (t, target_t), values = w.axis(axis), w.values
        n = _last(window, len(t), 4)
        x, y = t[-n:], values[-n:]
        if len(x) < 4:
            return values[-1].copy()
        d = np.diff(y, axis=0)
        phi = np.einsum("tc,tc->c", d[1:], d[:-1]) / np.maximum(np.einsum("tc,tc->c", d[:-1], d[:-1]), 1e-300)
        phi = np.clip(phi, 0.0, 0.98)
        spacing = float(x[-1] - x[0]) / (len(x) - 1)
        m = max(float(target_t - t[-1]), 0.0) / spacing if spacing > 0 else 0.0
        return np.maximum(values[-1] + d[-1] * phi * (1 - phi**m) / (1 - phi), 0.0)
    return forecast
