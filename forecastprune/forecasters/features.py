"""Per-channel features of a γ history, for the learned cross-channel forecasters.

Every feature is scale-free — γ levels are centred on the run's mean |γ| at the cutoff, and γ
levels and differences are divided by the run's **spread** of |γ| across channels there
(:func:`run_scale`); movements are projected over the real horizon — so a model fitted on one
run (or on the early part of a run) applies to another run, a later cutoff or another horizon.
The spread, not the mean, is the scale because it is what the ranking depends on: a run whose
γ starts at 1.0 (torchvision, timm, ultralytics) and one starting at 0.5 (the suite) move by
about the same absolute amounts, so divided by the mean the first's channels look twice as
close together, and a model fitted on the second (which pulls the top percentiles down by a
fixed share of the mean) reversed the first's ranking. ``global_ridge``'s regression target is
the same way scale-free: ``(γ_target − γ_last) / scale``; its prediction is turned back into γ
by :func:`from_change`, so its forecasts are |γ| values and thresholds work on them exactly as
on any other forecaster's. ``learned`` and ``learned_gbr`` predict percentiles instead
(:func:`rank_target`, :func:`from_ranks`).

:func:`layered_features` adds four layer columns for forecasters given the run's layout (tag
``uses_layout``): where a channel's layer stands, where the channel stands inside it, how deep
the layer is, and recent volatility signed by the side of the median the channel is on. The
side-change analysis (``docs/side-changes.md``) found these relative signals to be what says
which channels still cross the cut — signals a per-channel forecaster cannot see.
:func:`ranking_features`, what ``learned_gbr`` reads, adds how each channel's percentile has
moved and four run-level columns (how settled the ranking is, how far the run is, how far its
|γ| have fallen, how spread they are): a model fitted on other families cannot know a run's
recipe, and these say how much reordering is still to come. Ranking models predict
:func:`rank_target` and turn it back into |γ| with :func:`from_ranks`.
"""

from __future__ import annotations

import numpy as np

from .candidates import Window, ar1_increments, ema

#: feature names, in column order
FEATURES = (
    "level_z",  # (last |γ| − the run's mean) / scale
    "percentile",  # rank of the last |γ| among all channels, in [0, 1]
    "trend_lr_all",  # least-squares slope over the whole history (cumulative LR) × horizon
    "trend_lr_recent",  # the same over the last quarter
    "trend_step_recent",  # the same over the last quarter, on the step axis
    "ar1_lr",  # AR(1)-on-increments forecast minus the last value
    "volatility",  # std of recent increments × √(horizon in snapshot spacings)
    "off_ema",  # last value minus its exponentially weighted mean
    "horizon_ratio",  # horizon / history length (cumulative LR); the same for every channel
)
#: the layer columns :func:`layered_features` appends, in order
LAYER_FEATURES = (
    "layer_level_z",  # (the channel's layer's mean last |γ| − the run's mean) / scale
    "layer_percentile",  # rank of the last |γ| within its layer, in [0, 1]
    "depth",  # the layer's position in the network, 0 (first) to 1 (last)
    "volatility_side",  # volatility × (percentile − ½): lively channels below the median rise
)
#: how each channel's standing has moved, :func:`ranking_features` appends after the layer
#: columns (percentiles among all channels, so scale-free by construction)
MOMENTUM_FEATURES = (
    "percentile_move_half",  # percentile now − percentile at half the history
    "percentile_move_recent",  # percentile now − percentile at three quarters of it
    "percentile_range_recent",  # highest − lowest percentile over the last quarter
)
#: run-level columns :func:`ranking_features` appends last, the same for every channel: how
#: far the run is and how settled its ranking (a family-out model cannot know a run's recipe;
#: these tell it how much reordering is still to come)
RUN_FEATURES = (
    "stability",  # Spearman's ρ of the last |γ| with the |γ| at half the history
    "elapsed_steps",  # the last step / the target step
    "mean_level_drop",  # the run's mean |γ| now / at the history's first snapshot
    "spread_ratio",  # the run's spread of |γ| / its mean |γ|, now
)
#: every column ``learned_gbr`` reads, in order (:func:`ranking_features`)
RANKING_FEATURES = FEATURES + LAYER_FEATURES + MOMENTUM_FEATURES + RUN_FEATURES
#: what a ranking model predicts (:func:`ranking_scores`): the final percentile, or its move
RANK_TARGETS = ("final percentile", "percentile move")
RECENT = 0.25
#: below this share of the run's scale, predictions are squashed instead of clipped
FLOOR = 0.01


def channel_features(w: Window) -> np.ndarray:
    """(C, len(FEATURES)) features of every channel of a history window."""
    values = w.values
    last = values[-1]
    scale = run_scale(values)
    span = float(w.t[-1] - w.t[0])
    horizon = max(float(w.target_t - w.t[-1]), 0.0)
    columns = [
        (last - last.mean()) / scale,
        _percentile(last),
        _slope(w.t, values, 1.0) * horizon / scale,
        _slope(w.t, values, RECENT) * horizon / scale,
        _slope(w.steps, values, RECENT) * max(w.target_step - w.steps[-1], 0.0) / scale,
        (ar1_increments(w, window=1.0, axis="lr") - last) / scale,
        _volatility(w, horizon) / scale,
        (last - ema(w, span=4.0)) / scale,
        np.full(len(last), horizon / span if span > 0 else 0.0),
    ]
    return np.column_stack(columns)


def layered_features(w: Window) -> np.ndarray:
    """(C, len(FEATURES) + len(LAYER_FEATURES)): :func:`channel_features` and the layer columns.

    Raises:
        ValueError: when the window carries no layer numbers (``w.layers`` is None).
    """
    if w.layers is None:
        raise ValueError("layered_features needs each channel's layer (Window.layers)")
    base = channel_features(w)
    last, layers = w.values[-1], w.layers
    count = int(layers.max()) + 1
    per_layer = np.bincount(layers, weights=last, minlength=count) / np.maximum(
        np.bincount(layers, minlength=count), 1
    )
    within = np.empty(len(last))
    for layer in range(count):
        members = np.flatnonzero(layers == layer)
        within[members] = _percentile(last[members])
    volatility, percentile = base[:, FEATURES.index("volatility")], base[:, 1]
    columns = [
        (per_layer[layers] - last.mean()) / run_scale(w.values),
        within,
        layers / max(count - 1, 1),
        volatility * (percentile - 0.5),
    ]
    return np.column_stack([base, *columns])


def ranking_features(w: Window) -> np.ndarray:
    """(C, len(RANKING_FEATURES)): :func:`layered_features`, then how each channel's percentile
    has moved, then the run-level columns.

    Nested family-out on the corpus's 29 tuning families (docs/corpus.md), the last two groups
    raised ``learned_gbr``'s ungated mean gain over naive at 10–20 % from +0.016 to +0.022 and
    cut the cells more than 0.01 below it from 80 to 58 of 444; the run columns did most of it
    (+0.021 alone; ``benchmarks/feature_ablation.py``).

    Raises:
        ValueError: when the window carries no layer numbers (``w.layers`` is None).
    """
    values, n = w.values, len(w.values)
    now = _percentile(values[-1])
    recent = range(max(0, n - max(3, n // 4)), n)
    percentiles = np.array([_percentile(values[i]) for i in recent])
    first_mean = float(values[0].mean())
    run_columns = (
        stability(values),
        float(w.steps[-1] / w.target_step) if w.target_step > 0 else 1.0,
        float(values[-1].mean()) / first_mean if first_mean > 0 else 1.0,
        float(values[-1].std()) / max(float(values[-1].mean()), 1e-12),
    )
    columns = [
        now - _percentile(values[max(0, n // 2 - 1)]),
        now - _percentile(values[max(0, int(round(0.75 * n)) - 1)]),
        percentiles.max(axis=0) - percentiles.min(axis=0),
        *(np.full(len(now), v if np.isfinite(v) else 1.0) for v in run_columns),
    ]
    return np.column_stack([layered_features(w), *columns])


def stability(values: np.ndarray, fraction: float = 0.5) -> float:
    """How settled a run's ranking is: Spearman's ρ of the last |γ| with the |γ| at
    ``fraction`` of the (T, C) history (the gates' ``stability`` and ``stability_recent``)."""
    return rank_correlation(values[-1], values[max(0, int(fraction * len(values)) - 1)])


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's ρ (ties broken by position); NaN for fewer than two channels."""
    if len(a) < 2:
        return float("nan")
    ra, rb = _percentile(a), _percentile(b)  # positional ties: never constant
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float(ra @ rb / np.sqrt((ra @ ra) * (rb @ rb)))


def rank_target(future: np.ndarray) -> np.ndarray:
    """A ranking model's target: each channel's percentile among the future |γ|, in [0, 1]."""
    return _percentile(future)


def ranking_scores(x: np.ndarray, predicted: np.ndarray, target: str) -> np.ndarray:
    """A ranking model's predictions for features ``x`` as scores for :func:`from_ranks`.

    A model of the ``"percentile move"`` (:data:`RANK_TARGETS`) predicts how far each channel's
    percentile moves; the current percentile is added back, so where the model predicts no
    move the current order stands exactly. A tree ensemble fitted on the final percentile
    itself approximates the identity in steps and shuffles the channels inside a step.

    Raises:
        ValueError: on a target outside :data:`RANK_TARGETS`.
    """
    if target not in RANK_TARGETS:
        raise ValueError(f"ranking target {target!r} is unknown; use one of {list(RANK_TARGETS)}")
    if target == "percentile move":
        return x[:, FEATURES.index("percentile")] + predicted
    return predicted


def from_ranks(w: Window, scores: np.ndarray) -> np.ndarray:
    """Predicted ranking scores back to |γ|: the channels take the current |γ| values in the
    predicted order (lowest score, smallest value). The forecast keeps the run's own spread of
    |γ|, so ε-collapse and thresholds read it as they read any forecast; only the order
    changes. As in :func:`from_change`, channels whose history never moved keep their value
    (and take no part in the reordering)."""
    out = w.values[-1].copy()
    moved = np.flatnonzero(np.ptp(w.values, axis=0) > 0)
    out[moved[np.argsort(scores[moved], kind="stable")]] = np.sort(out[moved])
    return out


def run_scale(values: np.ndarray) -> float:
    """The run's γ scale at the cutoff: the standard deviation of the last |γ| across channels
    (the mean |γ| while every channel still sits at one value, 1 when every channel is 0)."""
    last = values[-1]
    spread, mean = float(np.std(last)), float(np.mean(last))
    if spread > 1e-9 * max(mean, 1e-300):
        return spread
    return mean if mean > 0 else 1.0


def change_target(w: Window, future: np.ndarray) -> np.ndarray:
    """The regression target: ``(future − last) / scale``."""
    return (future - w.values[-1]) / run_scale(w.values)


def from_change(w: Window, change: np.ndarray) -> np.ndarray:
    """A predicted scale-free change back to |γ|, kept positive without ties.

    A regression that predicts large drops sends many channels below 0; clipping would tie
    them all at 0 and lose their order, which is what pruning needs. Below ``FLOOR × scale``
    the value is instead mapped through ``floor·exp(x/floor − 1)``: continuous, increasing and
    positive, so the order survives and every value stays a plausible |γ|. Channels whose
    history never moved keep their last value.
    """
    scale = run_scale(w.values)
    # a channel that never moved has nothing to extrapolate: it stays where it is
    moved = np.ptp(w.values, axis=0) > 0
    raw = w.values[-1] + np.where(moved, change, 0.0) * scale
    floor = FLOOR * scale
    low = np.minimum(raw, floor) / floor - 1.0  # ≤ 0, so exp never overflows
    return np.where(raw >= floor, raw, floor * np.exp(low))


def _percentile(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    out = np.empty(len(x))
    out[order] = np.arange(len(x)) / max(len(x) - 1, 1)
    return out


def _slope(t: np.ndarray, values: np.ndarray, fraction: float) -> np.ndarray:
    n = min(len(t), max(3, int(round(fraction * len(t)))))
    x, y = t[-n:], values[-n:]
    dx = x - x.mean()
    sxx = float(dx @ dx)
    if n < 3 or sxx <= 0.0:
        return np.zeros(values.shape[1])
    return (dx @ y) / sxx


def _volatility(w: Window, horizon: float) -> np.ndarray:
    n = min(len(w.t), max(4, int(round(RECENT * len(w.t)))))
    if n < 4:
        return np.zeros(w.values.shape[1])
    increments = np.diff(w.values[-n:], axis=0)
    spacing = float(w.t[-1] - w.t[-n]) / (n - 1)
    steps_ahead = horizon / spacing if spacing > 0 else 0.0
    return increments.std(axis=0) * np.sqrt(steps_ahead)
