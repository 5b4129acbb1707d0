"""Forecaster speed and agreement benchmark (a script, not a test).

Run::

    python benchmarks/bench_forecasters.py                 # C = 13,376, T = 200
    python benchmarks/bench_forecasters.py --subsample 50  # faster reference fits

Prints, on synthetic sparse-training trajectories (benchmarks/_synthetic.py) and on the bundled
real store when it is installed:

1. fit + predict seconds of every built-in forecaster (best of ``--repeat`` runs), and the IoU
   of the channels it would prune at a 50 % global ratio against the run's true final γ;
2. for ARIMA(2,1,1) and ARIMA(1,1,0): the batched backend's time against statsforecast's and
   statsmodels' ARIMA of the same order (those two timed on a subsample and scaled to C),
   the speed ratios, and agreement with statsmodels on the subsample: median |Δ prediction| and
   the IoU of the lowest-half sets each would prune ("IoU sm"; statsmodels fits each channel
   scaled to unit increments, see :func:`statsmodels_prediction`); "IoU sf" compares with
   statsforecast, and "sf~sm" the two reference implementations with each other (how much
   two exact-likelihood fits of the same order disagree sets the scale for "IoU sm").

Targets (issue 3): every built-in ≤ 1 s at C = 13,376, T = 200 on 2 cores; batched ARIMA
≥ 100× faster than statsforecast's per-series ARIMA; pruned-set IoU ≥ 0.99 vs statsmodels.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _synthetic import YOLOV3_CHANNELS, make_run  # noqa: E402

from forecastprune.core.lr_clock import cumulative_lr_clock
from forecastprune.core.metrics import iou
from forecastprune.errors import StoreError  # noqa: E402
from forecastprune.forecasters import get_forecaster, list_forecasters  # noqa: E402

ORDERS = ((2, 1, 1), (1, 1, 0))
RATIO = 0.5


def lowest(scores: np.ndarray, ratio: float = RATIO) -> np.ndarray:
    """(C,) bool mask of the ``ratio`` lowest scores (the global slimming cut)."""
    mask = np.zeros(scores.shape[0], dtype=bool)
    mask[np.argsort(scores, kind="stable")[: int(round(ratio * scores.shape[0]))]] = True
    return mask


def best_time(run: Callable[[], object], repeat: int) -> tuple[float, object]:
    """Fastest wall time of ``repeat`` calls (the CPU is shared) and the last result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def builtin_specs() -> list[str]:
    """Every built-in forecaster with default parameters, plus the ARIMA orders benchmarked."""
    names = [
        info.name
        for info in list_forecasters(include_broken=False)
        if info.source == "built-in" and not info.is_prefix
    ]
    extra = [f"arima(p={p},d={d},q={q})" for p, d, q in ORDERS if (p, d, q) != (1, 1, 0)]
    return names + extra + ["linear(time_axis=lr)", "arima(time_axis=lr)"]


def time_builtins(steps, values, clock, target, truth, repeat: int) -> None:
    print(f"\n{'forecaster':<28}{'fit+predict s':>14}{'IoU vs final (50 %)':>22}")
    oracle = lowest(truth)
    for spec in builtin_specs():
        forecaster = get_forecaster(spec)

        def run(f=forecaster):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return f.fit(steps, values, clock=clock).predict(target)

        seconds, prediction = best_time(run, repeat)
        flag = "" if seconds <= 1.0 else "   > 1 s target"
        print(f"{spec:<28}{seconds:>14.3f}{iou(lowest(prediction), oracle):>22.3f}{flag}")


def statsforecast_seconds(values: np.ndarray, order, horizon: int) -> tuple[float, np.ndarray, int]:
    """Seconds per series, predictions and failure count of statsforecast's ARIMA per column.

    statsforecast raises on some series (all-NaN residuals); those keep their last value.
    """
    from statsforecast.models import ARIMA

    predictions = values[-1].copy()
    failed = 0
    start = time.perf_counter()
    for channel in range(values.shape[1]):
        model = ARIMA(order=order, include_mean=False)
        try:
            forecast = model.forecast(y=np.ascontiguousarray(values[:, channel]), h=horizon)
            predictions[channel] = forecast["mean"][-1]
        except ValueError:
            failed += 1
    return (time.perf_counter() - start) / values.shape[1], predictions, failed


def statsmodels_prediction(steps, values: np.ndarray, order, target: int) -> np.ndarray:
    """statsmodels' exact-likelihood ARIMA forecast of every column (the backend fits each
    channel at unit scale, see forecastprune.forecasters.arima.statsmodels_backend)."""
    p, d, q = order
    reference = get_forecaster(f"arima(p={p},d={d},q={q},backend=statsmodels)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return reference.fit(steps, values).predict(target)


def compare_orders(steps, values, target, subsample: int, repeat: int, seed: int) -> None:
    n_channels = values.shape[1]
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(n_channels, size=min(subsample, n_channels), replace=False))
    horizon = int(round((target - steps[-1]) / (steps[1] - steps[0])))
    print(
        f"\nReference fits on a random subsample of {picked.size} channels, scaled to "
        f"C = {n_channels}; horizon {horizon} records"
    )
    header = (
        f"{'order':<10}{'batched s':>10}{'statsforecast s':>17}{'statsmodels s':>15}"
        f"{'× sf':>8}{'× sm':>8}{'med |Δ| sm':>12}{'IoU sm':>8}{'IoU sf':>8}"
        f"{'sf~sm':>8}"
    )
    print(header)
    for p, d, q in ORDERS:
        batched = get_forecaster(f"arima(p={p},d={d},q={q})")
        ours, _ = best_time(lambda model=batched: model.fit(steps, values).predict(target), repeat)
        mine = (
            get_forecaster(f"arima(p={p},d={d},q={q})")
            .fit(steps, values[:, picked])
            .predict(target)
        )
        sf_each, sf_pred, sf_failed = statsforecast_seconds(values[:, picked], (p, d, q), horizon)
        start = time.perf_counter()
        sm_pred = statsmodels_prediction(steps, values[:, picked], (p, d, q), target)
        sm_each = (time.perf_counter() - start) / picked.size
        sf_total, sm_total = sf_each * n_channels, sm_each * n_channels
        print(
            f"{f'({p},{d},{q})':<10}{ours:>10.3f}{sf_total:>17.1f}{sm_total:>15.1f}"
            f"{sf_total / ours:>8.0f}{sm_total / ours:>8.0f}"
            f"{np.median(np.abs(mine - sm_pred)):>12.2e}"
            f"{iou(lowest(mine), lowest(sm_pred)):>8.3f}"
            f"{iou(lowest(mine), lowest(np.maximum(sf_pred, 0.0))):>8.3f}"
            f"{iou(lowest(np.maximum(sf_pred, 0.0)), lowest(sm_pred)):>8.3f}"
            + (f"   (statsforecast failed on {sf_failed}: last value used)" if sf_failed else "")
        )


def bundled_store_section(repeat: int) -> None:
    from forecastprune.store import GammaTrajectoryStore, bundled_store_path

    try:
        path = bundled_store_path()
    except StoreError as exc:
        print(f"\nBundled store: skipped ({exc})")
        return
    store = GammaTrajectoryStore.open(path)
    steps, values = store.history()
    final_step, final = store.final()
    cutoff = max(int(0.25 * len(steps)), 12)
    clock = cumulative_lr_clock(
        steps, store.lrs, store.metadata.get("lr_schedule"), store.metadata.get("total_steps")
    )
    print(
        f"\nBundled store {path.name}: C = {values.shape[1]}, T = {len(steps)}; fit on the "
        f"first {cutoff} snapshots (to step {steps[cutoff - 1]}), predict step {final_step}"
    )
    time_builtins(steps[:cutoff], np.abs(values[:cutoff]), clock, final_step, np.abs(final), repeat)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--channels", type=int, default=YOLOV3_CHANNELS)
    parser.add_argument("--snapshots", type=int, default=200, help="history length T")
    parser.add_argument(
        "--subsample",
        type=int,
        default=100,
        help="channels for the per-series statsforecast/statsmodels fits",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    # The history is the first quarter of a run 4·T snapshots long (one LR drop lies ahead at
    # 50 % and another at 75 %); forecasts target the run's last step.
    run = make_run(args.channels, 4 * args.snapshots, seed=args.seed)
    steps = run.steps[: args.snapshots]
    values = np.abs(run.values[: args.snapshots])
    target, truth = int(run.steps[-1]), np.abs(run.values[-1])
    clock = cumulative_lr_clock(steps, run.lrs[: args.snapshots], run.lr_schedule)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"forecastprune forecaster benchmark: C = {args.channels}, T = {args.snapshots}, "
        f"target step {target}; {os.cpu_count()} CPUs, load average {load} (shared machine: "
        f"times are the best of {args.repeat})"
    )
    time_builtins(steps, values, clock, target, truth, args.repeat)
    compare_orders(steps, values, target, args.subsample, args.repeat, args.seed)
    bundled_store_section(args.repeat)


if __name__ == "__main__":
    main()
