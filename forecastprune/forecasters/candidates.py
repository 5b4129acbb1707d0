"""The candidate forecasts ``auto`` backtests, and the ranking score it backtests them with.

Each candidate is a closed-form function of the history, batched over channels, so ``auto``
can fit dozens of them at several backtest origins in a fraction of a second:

- ``naive``: the last value (the control, always the first candidate);
- ``ema(span)``: the exponentially weighted mean (noise removed, level assumed settled);
- ``trend(w, λ)``: a least-squares line over the last ``w`` snapshots, evaluated at the last
  snapshot (a de-noised level), plus ``λ`` times the slope over the horizon. ``λ`` shrinks the
  trend toward that level; ``λ = 0`` is a level-only smoother that keeps the drift's end point;
- ``ar1(w, axis)``: per channel, an AR(1) on the increments, ``Δ_{i+1} = φ·Δ_i``, fitted by
  least squares without intercept, φ clipped to [0, 0.98], and summed over the horizon:
  ``γ_T + Δ_T·φ(1 − φ^m)/(1 − φ)`` with ``m`` the horizon in snapshot spacings on ``axis``.
  Like ``arima(1,1,0)``, but φ is per channel and clipped, so a channel whose increments do
  not persist (noise: φ ≈ 0) stays at its last value while one that keeps moving continues —
  the per-channel shrinkage a single trend λ cannot give.

Candidates are module-level functions bound with :func:`functools.partial`, so a fitted
``auto`` pickles like every other forecaster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from .ema import ema_level

#: bottom-set fractions whose IoU ``rank_agreement`` averages (around the usual ratio 0.5)
RANK_RATIOS = (0.3, 0.4, 0.5, 0.6, 0.7)
#: windows of the trend and AR candidates, as fractions of the history they are given, so a
#: backtest on a shorter history fits the same share of it as the final forecast does
TRENDS = ((0.25, 0.0), (0.5, 0.25))  # (window, shrink λ)
AR_WINDOWS = (1.0,)
AR_SHRINKS = (1.0,)  # λ = 0.5 was tried: more backtest noise, no gain on the tuning runs
#: the AR coefficient's cap: below 1, so the summed increments stay finite at any horizon
AR_MAX_PHI = 0.98


@dataclass(frozen=True)
class Window:
    """A history handed to candidates: both time axes, the values and the target on each.

    Attributes:
        steps: (T,) steps as floats; ``t``: (T,) the clock's time (cumulative LR), or the steps
            when there is no clock.
        values: (T, C) |γ|.
        target_step, target_t: the target on each axis.
        layers: (C,) each channel's BN layer, numbered in network order, when the forecaster
            was given the run's layout (see :func:`forecastprune.predict.attach_layout`).
    """

    steps: np.ndarray
    t: np.ndarray
    values: np.ndarray
    target_step: float
    target_t: float
    layers: np.ndarray | None = None

    def head(self, end: int, target: int) -> Window:
        """The first ``end + 1`` snapshots, predicting the seen snapshot ``target``."""
        return Window(
            self.steps[: end + 1],
            self.t[: end + 1],
            self.values[: end + 1],
            float(self.steps[target]),
            float(self.t[target]),
            self.layers,
        )

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


def ema(w: Window, span: float) -> np.ndarray:
    """The exponentially weighted mean, ``α = 2 / (span + 1)``, started at the first value."""
    return ema_level(w.values, 2.0 / (span + 1.0))


def trend(w: Window, window: float, shrink: float) -> np.ndarray:
    """Line over the last ``window`` (a fraction) of the history: level at the last snapshot
    + ``shrink``·slope·h, clipped at 0; the last value where no line can be fitted."""
    n = _last(window, len(w.t), 3)
    x, y = w.t[-n:], w.values[-n:]
    dx = x - x.mean()
    sxx = float(dx @ dx)
    if n < 3 or sxx <= 0.0:
        return w.values[-1].copy()
    slope = (dx @ y) / sxx
    level = y.mean(axis=0) + slope * dx[-1]
    horizon = max(float(w.target_t - w.t[-1]), 0.0)
    return np.maximum(level + shrink * slope * horizon, 0.0)


def ar1_increments(w: Window, window: float, axis: str, shrink: float = 1.0) -> np.ndarray:
    """Per-channel AR(1) on the increments of the last ``window`` (a fraction) of the history,
    summed to the target (see the module docs) and scaled by ``shrink``; the last value with
    under 4 snapshots."""
    (t, target_t), values = w.axis(axis), w.values
    n = _last(window, len(t), 4)
    if n < 4:
        return values[-1].copy()
    d = np.diff(values[-n:], axis=0)
    lagged = np.einsum("tc,tc->c", d[:-1], d[:-1])
    phi = np.einsum("tc,tc->c", d[1:], d[:-1]) / np.maximum(lagged, np.finfo(float).tiny)
    phi = np.clip(phi, 0.0, AR_MAX_PHI)
    spacing = float(t[-1] - t[-n]) / (n - 1)
    m = max(float(target_t - t[-1]), 0.0) / spacing if spacing > 0 else 0.0
    moved = d[-1] * phi * (1.0 - phi**m) / (1.0 - phi)
    return np.maximum(values[-1] + shrink * moved, 0.0)


def _last(fraction: float, n: int, fewest: int) -> int:
    """How many of ``n`` snapshots a window of ``fraction`` of the history covers."""
    return min(n, max(fewest, int(round(fraction * n))))


def default_candidates() -> list[Candidate]:
    """``naive`` first, then a short list: few candidates keep the backtest's choice from
    fitting its own noise (measured on the suite's tuning runs: with 16 trend variants the
    backtest winners often lost on the real horizon)."""
    candidates = [Candidate("naive", naive), Candidate("ema(span=4)", partial(ema, span=4.0))]
    candidates += [
        Candidate(f"trend(w={w:g}, λ={s:g})", partial(trend, window=w, shrink=s)) for w, s in TRENDS
    ]
    candidates += [
        Candidate(
            f"ar1(w={w:g}, {axis}, λ={s:g})", partial(ar1_increments, window=w, axis=axis, shrink=s)
        )
        for w in AR_WINDOWS
        for axis in ("step", "lr")
        for s in AR_SHRINKS
    ]
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
