"""Fitting the learned forecasters' models on recorded runs.

For every run and every cutoff, the history up to the cutoff gives each channel's features
(:mod:`forecastprune.forecasters.features`) and the run's final |γ| gives its target, the
scale-free change from the cutoff to the end. All channels of all runs and cutoffs are pooled
into one ridge regression. The cutoffs should cover those the model will be used at: the
features are scale-free, but how much a channel still moves depends on how early the cutoff is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from .boosted import BoostedModel
from .candidates import Window
from .domain import KEY, Domain
from .features import (
    FEATURES,
    RANK_TARGETS,
    RANKING_FEATURES,
    RUN_FEATURES,
    change_target,
    channel_features,
    rank_target,
    ranking_features,
)
from .ridge import RidgeModel

DEFAULT_CUTOFFS = (0.05, 0.1, 0.2, 0.3)
#: ridge penalty; leave-one-run-out on the suite's tuning runs: 0–0.1 alike, 1.0 halves the gain
DEFAULT_ALPHA = 0.01
#: how ``learned_gbr``'s pooled examples are weighed: every example alike ("channel"), or every
#: run's examples summing to the same weight ("run"), so that a 17,056-channel MobileNetV2 run
#: does not count 60 times as much as a 272-channel one
WEIGHTINGS = ("channel", "run")
#: nested family-out on the corpus's 29 tuning families, ungated: "run" +0.016 mean gain
#: (worst cell −0.069), "channel" +0.013 (−0.085); docs/corpus.md
DEFAULT_WEIGHTING = "run"
#: what ``learned_gbr`` is fitted to predict (:data:`.features.RANK_TARGETS`)
DEFAULT_RANK_TARGET = "final percentile"


def run_examples(
    store: Any, cutoffs: Sequence[float | str], use_clock: bool = True, ranking: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(N, F) features and (N,) targets of one open store, all cutoffs stacked.

    With ``ranking`` the features are :func:`.features.ranking_features` (the layer columns
    come from the store's layout) and the target is the final percentile, as ``learned_gbr``
    reads and predicts them; otherwise they are ``learned``'s channel features and scale-free
    change.

    Raises:
        ConfigError: on a malformed cutoff or one that leaves nothing to forecast.
        StoreError: when the store has fewer than two snapshots.
    """
    from ..runpoint import RunPoint
    from ..store.timeline import run_length

    steps, gammas = store.history()
    if len(steps) < 2:
        from ..errors import StoreError

        raise StoreError(f"store {store.path} has {len(steps)} snapshot(s); training needs ≥ 2")
    from ..store.verify import check_finite

    check_finite(store.path, steps, gammas, store.layout)  # NaN would reach the solver
    values = np.abs(np.asarray(gammas, dtype=np.float64))
    t = _time_axis(store, steps, use_clock)
    steps = steps.astype(np.float64)
    layers = np.repeat(np.arange(len(store.layout.sizes)), store.layout.sizes)
    xs, ys = [], []
    length = run_length(store)
    for cutoff in cutoffs:
        step = RunPoint.parse(cutoff, rules=False, what="cutoff").resolve(length)
        end = int(np.searchsorted(steps, step, side="right"))
        if end < 2 or end >= len(steps):
            raise ConfigError(
                f"cutoff {cutoff} of {store.path} leaves {end} of {len(steps)} snapshots in the "
                "history; use cutoffs strictly inside the run"
            )
        for target in _targets(end, len(steps)):
            window = Window(
                steps[:end], t[:end], values[:end], float(steps[target]), float(t[target]), layers
            )
            if ranking:
                xs.append(ranking_features(window))
                ys.append(rank_target(values[target]))
            else:
                xs.append(channel_features(window))
                ys.append(change_target(window, values[target]))
    return np.vstack(xs), np.concatenate(ys)


def _targets(end: int, length: int) -> list[int]:
    """Target rows for a history of ``end`` rows: the run's end only. (Adding points a quarter
    and half way there, to teach short horizons, lowered the leave-one-run-out gain at 10 %
    from +0.072 to +0.053 and did not make ``auto``'s in-history backtests of the model work.)"""
    return [length - 1]


def _time_axis(store: Any, steps: np.ndarray, use_clock: bool) -> np.ndarray:
    """Cumulative LR when asked and the store knows its LR, else the steps (as forecasting)."""
    from ..core.lr_clock import clock_for_store as store_clock
    from ..errors import StoreError

    if use_clock:
        try:
            return np.asarray(store_clock(store)(steps), dtype=np.float64)
        except StoreError:
            pass
    return steps.astype(np.float64)


def fit_learned(
    store_paths: Sequence[str | Path],
    cutoffs: Sequence[float | str] = DEFAULT_CUTOFFS,
    alpha: float = DEFAULT_ALPHA,
    use_clock: bool = True,
    progress: Callable[[str], None] | None = None,
) -> RidgeModel:
    """Fit the ``learned`` regression on recorded runs.

    Args:
        store_paths: the training runs' stores.
        cutoffs: fractions of each run (or ``step:N``) at which examples are taken.
        alpha: the ridge penalty.
        use_clock: use cumulative LR where the store knows its LR.
        progress: called with each store's path as it is read.

    Returns:
        The fitted model, its ``info`` naming the runs and cutoffs.

    Raises:
        ConfigError: without stores, or on bad cutoffs.
    """
    x, y, info, _ = _examples(store_paths, cutoffs, use_clock, True, progress)
    return ridge_from_examples(x, y, info, alpha)


def ridge_from_examples(
    x: np.ndarray, y: np.ndarray, info: dict[str, Any], alpha: float = DEFAULT_ALPHA
) -> RidgeModel:
    """The ``learned`` ranking regression on stacked ranking :func:`run_examples` (their
    channel columns only: ``learned`` needs no layout), its domain in ``info``.

    ``learned`` predicts each channel's final percentile, as ``learned_gbr`` does. It used to
    predict the scale-free change and lost 0.03 IoU to naive on average on the corpus's
    families it never saw (a change model refitted on the corpus lost 0.37: a linear change
    extrapolated across recipes reorders whole bands of channels); the percentile model,
    fitted family-out, gained +0.001 with its worst cell −0.036 (docs/corpus.md).
    """
    x = np.asarray(x)[:, : len(FEATURES)]
    info = {**info, "target": "final percentile", KEY: Domain.of(x, FEATURES).to_info()}
    return RidgeModel.fit(x, y, FEATURES, alpha, info)


def fit_learned_gbr(
    store_paths: Sequence[str | Path],
    cutoffs: Sequence[float | str] = DEFAULT_CUTOFFS,
    use_clock: bool = True,
    progress: Callable[[str], None] | None = None,
    weighting: str = DEFAULT_WEIGHTING,
) -> BoostedModel:
    """Fit the ``learned_gbr`` ranking model on recorded runs (arguments as
    :func:`fit_learned`, ``weighting`` one of :data:`WEIGHTINGS`; the model's settings are
    :data:`.boosted.DEFAULT_PARAMS`).

    Raises:
        ConfigError: without stores, on bad cutoffs or an unknown weighting.
    """
    x, y, info, sizes = _examples(store_paths, cutoffs, use_clock, True, progress)
    return gbr_from_examples(x, y, info, weighting, sizes)


def gbr_from_examples(
    x: np.ndarray,
    y: np.ndarray,
    info: dict[str, Any],
    weighting: str = DEFAULT_WEIGHTING,
    run_sizes: Sequence[int] = (),
    target: str = DEFAULT_RANK_TARGET,
) -> BoostedModel:
    """The ``learned_gbr`` model on stacked ranking :func:`run_examples` (``y``: the final
    percentile), its domain, weighting and target in ``info``; ``run_sizes`` (each run's
    example count, in stacking order) is needed by the "run" weighting.

    Raises:
        ConfigError: on an unknown weighting or target.
    """
    if target not in RANK_TARGETS:
        raise ConfigError(f"target {target!r} is unknown; use one of {list(RANK_TARGETS)}")
    features = RANKING_FEATURES
    weights = example_weights(weighting, run_sizes, len(y))
    if target == "percentile move":
        y = y - x[:, FEATURES.index("percentile")]
    info = {
        **info,
        "weighting": weighting,
        "target": target,
        KEY: Domain.of(x, features, whole=RUN_FEATURES).to_info(),
    }
    return BoostedModel.fit(x, y, features, info, sample_weight=weights)


def example_weights(weighting: str, run_sizes: Sequence[int], total: int) -> np.ndarray | None:
    """Per-example weights for ``weighting`` (None: alike), averaging 1 over the examples.

    Raises:
        ConfigError: on a weighting outside :data:`WEIGHTINGS`, or run sizes that do not add
            up to the examples.
    """
    if weighting not in WEIGHTINGS:
        raise ConfigError(f"weighting {weighting!r} is unknown; use one of {list(WEIGHTINGS)}")
    if weighting == "channel":
        return None
    sizes = np.asarray(run_sizes, dtype=np.int64)
    if sizes.sum() != total or np.any(sizes <= 0):
        raise ConfigError(
            f"run weighting needs each run's example count (positive, summing to {total}); "
            f"got {list(run_sizes)}"
        )
    return np.repeat(total / (len(sizes) * sizes), sizes)


def _examples(
    store_paths: Sequence[str | Path],
    cutoffs: Sequence[float | str],
    use_clock: bool,
    ranking: bool,
    progress: Callable[[str], None] | None,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any], list[int]]:
    """Every store's examples stacked, the provenance to save with the model, and each
    store's example count."""
    from ..store import GammaTrajectoryStore

    if not store_paths:
        raise ConfigError("name at least one recorded store to fit on (--stores a.fpstore ...)")
    xs, ys = [], []
    for path in store_paths:
        if progress is not None:
            progress(str(path))
        with GammaTrajectoryStore.open(path) as store:
            x, y = run_examples(store, cutoffs, use_clock, ranking)
        xs.append(x)
        ys.append(y)
    info = {
        "trained_on": [Path(p).name for p in store_paths],
        "cutoffs": [str(c) for c in cutoffs],
        "use_clock": use_clock,
        "examples": int(sum(len(y) for y in ys)),
    }
    return np.vstack(xs), np.concatenate(ys), info, [len(y) for y in ys]
