"""Run-level gates: whether a learned forecast may reorder a run's channels, and by how much.

A model fitted on other runs is right on some recipes and wrong on others, and the ranking
metric punishes a wrong swap near the cut as hard as it rewards a right one. A **gate** reads
one run-level signal of the history and opens only on runs like those where, on the corpus's
other families, the forecast gained over ``naive``; a closed gate forecasts ``naive``. An open
gate still **shrinks** the forecast toward naive's order: each channel's predicted percentile
moves toward the current one by ``shrink`` (a soft threshold), so small disagreements — the
noise that flips channels near the cut — leave naive's order alone and only confident moves
remain.

Signals (each from the history alone, so they work on any run):

- ``backtest_gain``: the forecast's mean rank agreement minus naive's at the ratio-matched
  in-history backtests :mod:`.backtest` defines (``auto`` asks the model itself);
- ``stability``: Spearman's ρ of the last |γ| with the |γ| at half of the history — how far
  the ranking has settled; ``stability_recent``: the same with the |γ| at three quarters;
- ``horizon``: how many times the history's span (cumulative LR with a clock) lies ahead;
- ``channels``: how many channels the run records. The ranking metric's resolution: on a
  272-channel run one wrongly swapped pair costs 0.015 IoU, on a 13,376-channel run 0.0003.

The same file carries each forecaster's **interval widths**. The learned forecasts are
orderings of the current |γ| values (:func:`.features.from_ranks`), and the engine compares them
with a cut on that scale, so the error that matters is where the channel will stand among the
others: the final |γ| mapped by rank onto the forecast's values, minus the forecast. Divided by
the channel's volatility (:func:`volatility`) it has, on the other families' runs, the
quantiles ``k(coverage)``; an interval is ``forecast ± k · volatility``.

Gates are JSON (``forecastprune/data/gates.json``), fitted and judged family-out by
``benchmarks/auto_gate.py``; no pickle is involved.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .._util import atomic_write_bytes
from ..errors import ForecasterError
from .backtest import backtest_pairs, horizon_ratio
from .candidates import Window, rank_agreement, ranks
from .features import from_ranks, run_scale, stability

FORMAT = "forecastprune-gates"
VERSION = 1
#: the gates the built-in forecasters read when none is named
BUNDLED_GATES = "gates.json"
SIGNALS = ("backtest_gain", "stability", "stability_recent", "horizon", "channels")
#: the signals that run the model; the others read the history alone
MODEL_SIGNALS = ("backtest_gain",)
#: backtest origins ``backtest_gain`` averages over (as ``auto``'s default)
ORIGINS = 3
#: every channel's volatility is at least this share of the run's spread of |γ|: a channel
#: that has not moved yet can still be passed by others. Of 0.01, 0.1 and 0.3 of the spread,
#: 0.3 gave the most even coverage across the corpus's tuning families (0.77–0.96 at 0.9)
INTERVAL_FLOOR = 0.3

#: a history -> (C,) forecast
ForecastFn = Callable[[Window], np.ndarray]


@dataclass(frozen=True)
class Gate:
    """When one forecaster's learned forecast is used, how far it moves, how wide its intervals.

    Attributes:
        signal: the run-level signal read (one of :data:`SIGNALS`), or None: always open.
        threshold: the gate opens when the signal is above it (``above``) or below it.
        above: which side opens the gate.
        shrink: the soft threshold on each channel's percentile move (0: the forecast as is).
        closed: the gate never opens (its fit found no threshold whose cells kept the
            constraint); the signal is then not computed at all.
        coverage: the coverages the widths were calibrated at (increasing, in (0, 1)).
        widths: the interval half-widths in volatilities at those coverages.
        info: provenance and family-out figures.
    """

    signal: str | None
    threshold: float = 0.0
    above: bool = True
    shrink: float = 0.0
    coverage: tuple[float, ...] = ()
    widths: tuple[float, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)
    closed: bool = False

    def __post_init__(self) -> None:
        if self.signal is not None and self.signal not in SIGNALS:
            raise ForecasterError(
                f"gate signal must be one of {list(SIGNALS)}; got {self.signal!r}"
            )
        if not 0.0 <= self.shrink <= 1.0 or not math.isfinite(self.threshold):
            raise ForecasterError(
                f"gate shrink must lie in [0, 1] and its threshold be finite; got shrink "
                f"{self.shrink!r}, threshold {self.threshold!r}"
            )
        cov, wid = np.asarray(self.coverage, float), np.asarray(self.widths, float)
        if cov.shape != wid.shape or np.any(np.diff(cov) <= 0) or np.any(np.diff(wid) < 0):
            raise ForecasterError(
                "gate interval widths need increasing coverages and non-decreasing widths of "
                f"the same length; got {list(self.coverage)} and {list(self.widths)}"
            )
        if cov.size and (cov[0] <= 0.0 or cov[-1] >= 1.0 or wid[0] < 0.0):
            raise ForecasterError(f"gate coverages must lie in (0, 1); got {list(self.coverage)}")

    def opens(self, value: float) -> bool:
        """Whether a run with this signal value may use the learned forecast."""
        if self.closed:
            return False
        if self.signal is None:
            return True
        if not math.isfinite(value):
            return False
        return value > self.threshold if self.above else value < self.threshold

    def width(self, coverage: float) -> float:
        """Half-width in volatilities at ``coverage`` (linear between the calibrated points,
        from 0 at coverage 0).

        Raises:
            ForecasterError: without calibrated widths, or above the highest coverage.
        """
        if not self.widths:
            raise ForecasterError("this gate carries no interval widths; refit the gates")
        if coverage > self.coverage[-1] + 1e-12:
            raise ForecasterError(
                f"interval widths are calibrated up to coverage {self.coverage[-1]:g}; got "
                f"{coverage:g}. Ask for a lower coverage"
            )
        return float(np.interp(coverage, (0.0, *self.coverage), (0.0, *self.widths)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "signal": self.signal,
            "threshold": self.threshold,
            "above": self.above,
            "shrink": self.shrink,
            "coverage": list(self.coverage),
            "widths": list(self.widths),
            "closed": self.closed,
            "info": self.info,
        }

    @classmethod
    def from_dict(cls, data: Any, source: str) -> Gate:
        if not isinstance(data, dict):
            raise ForecasterError(f"{source}: a gate must be a JSON object; got {data!r}")
        try:
            return cls(
                signal=data["signal"],
                threshold=float(data["threshold"]),
                above=bool(data["above"]),
                shrink=float(data["shrink"]),
                coverage=tuple(float(c) for c in data.get("coverage", ())),
                widths=tuple(float(w) for w in data.get("widths", ())),
                info=dict(data.get("info") or {}),
                closed=_flag(data.get("closed", False), source),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ForecasterError(
                f"{source}: malformed gate ({type(exc).__name__}: {exc})"
            ) from exc


def _flag(value: Any, source: str) -> bool:
    if not isinstance(value, bool):
        raise ForecasterError(f"{source}: a gate's 'closed' must be true or false; got {value!r}")
    return value


def bundled_gates_path() -> Path:
    return Path(str(resources.files("forecastprune") / "data" / BUNDLED_GATES))


def save_gates(path: str | Path, gates: dict[str, Gate], info: dict[str, Any]) -> Path:
    """Write gates as JSON, atomically."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "info": info,
        "gates": {name: gate.to_dict() for name, gate in sorted(gates.items())},
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, (json.dumps(payload, indent=1) + "\n").encode("utf-8"))
    return path


@lru_cache(maxsize=8)
def load_gates(path: str | None = None) -> dict[str, Gate]:
    """Every gate in a gates file (None: the bundled one), read once per process.

    Raises:
        ForecasterError: on a missing, unreadable or malformed file.
    """
    source = str(bundled_gates_path() if path is None else path)
    try:
        data = json.loads(Path(source).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ForecasterError(f"cannot read gates file {source}: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ForecasterError(f"{source} is not a {FORMAT} file (format field)")
    if data.get("version") != VERSION:
        raise ForecasterError(
            f"{source} has gates version {data.get('version')!r}; this release reads {VERSION}. "
            "Refit it with benchmarks/auto_gate.py"
        )
    gates = data.get("gates")
    if not isinstance(gates, dict):
        raise ForecasterError(f"{source}: 'gates' must be an object of forecaster → gate")
    return {str(k): Gate.from_dict(v, f"{source} [{k}]") for k, v in gates.items()}


def gate_for(name: str, path: str | None = None) -> Gate:
    """The gate of one forecaster (``auto``, ``learned``, ``learned_gbr``).

    Raises:
        ForecasterError: when the file has no gate for it.
    """
    gates = load_gates(path)
    if name not in gates:
        raise ForecasterError(
            f"gates file {path or bundled_gates_path()} has no gate for {name!r} "
            f"(it has {sorted(gates)})"
        )
    return gates[name]


# ------------------------------------------------------------------------------ signals
def signal(name: str, window: Window, forecast: ForecastFn, origins: int = ORIGINS) -> float:
    """One run-level signal of a history (see the module docs)."""
    if name == "backtest_gain":
        return backtest_gain(window, forecast, origins)
    if name == "horizon":
        return horizon_ratio(window.t, window.target_t)
    if name == "channels":
        return float(window.values.shape[1])
    return stability(window.values, 0.5 if name == "stability" else 0.75)


def backtest_gain(window: Window, forecast: ForecastFn, origins: int = ORIGINS) -> float:
    """The forecast's mean in-history rank agreement minus naive's (0 when too short)."""
    pairs = backtest_pairs(window.t, window.target_t, origins)
    gains = []
    for origin, target in pairs:
        head = window.head(origin, target)
        seen = window.values[target]
        gains.append(rank_agreement(forecast(head), seen) - rank_agreement(head.values[-1], seen))
    return float(np.mean(gains)) if gains else 0.0


# ------------------------------------------------------------------- shrink and intervals
def shrink_toward_naive(window: Window, forecast: np.ndarray, shrink: float) -> np.ndarray:
    """The forecast's order, each channel's percentile move soft-thresholded by ``shrink``,
    turned back into |γ| (:func:`.features.from_ranks`)."""
    last = window.values[-1]
    if shrink <= 0.0:
        return forecast
    now, then = _percentile(last), _percentile(forecast)
    move = then - now
    score = now + np.sign(move) * np.maximum(np.abs(move) - shrink, 0.0)
    return from_ranks(window, score)


def volatility(window: Window) -> np.ndarray:
    """(C,) each channel's expected |γ| movement to the target: the std of its recent
    increments × √(snapshot spacings ahead) (the learned features' ``volatility``), plus
    :data:`INTERVAL_FLOOR` × the run's spread of |γ|."""
    return raw_volatility(window) + INTERVAL_FLOOR * run_scale(window.values)


def raw_volatility(window: Window) -> np.ndarray:
    """The std of each channel's recent increments × √(snapshot spacings ahead)."""
    from .features import _volatility  # the learned features' own definition

    return _volatility(window, max(float(window.target_t - window.t[-1]), 0.0))


def rank_residual(forecast: np.ndarray, final: np.ndarray) -> np.ndarray:
    """|final |γ| mapped by rank onto the forecast's values − forecast|: how far each channel
    ends from where the forecast put it, on the scale the cut is drawn on."""
    return np.abs(np.sort(forecast)[ranks(final)] - forecast)


def interval(
    window: Window, forecast: np.ndarray, gate: Gate, coverage: float
) -> tuple[np.ndarray, np.ndarray]:
    """``forecast ± k(coverage) · volatility``, the lower bound clipped at 0."""
    half = gate.width(coverage) * volatility(window)
    return np.maximum(forecast - half, 0.0), forecast + half


def _percentile(x: np.ndarray) -> np.ndarray:
    return ranks(x) / max(len(x) - 1, 1)
