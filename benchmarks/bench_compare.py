"""Benchmark the main job: ``compare``'s replay on a YOLOv3-sized store.

4 built-in forecasters (sma, ema, linear, arima) × 20 cutoffs on a synthetic 13,376-channel ×
1,000-snapshot store (plus the naive control), at one ratio. Target: ≤ 30 s on 2 CPU cores.
Prints the total, the target ratio, and where the time goes: store read, forecaster fits (per
forecaster, summed over cutoffs, as measured inside the isolated workers) and the rest
(isolation, thresholding, metrics, the Early-Bird masks).

    python benchmarks/bench_compare.py [--channels 13376] [--snapshots 1000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _synthetic import YOLOV3_CHANNELS, make_run  # noqa: E402

from forecastprune.store.layout import ChannelLayout  # noqa: E402
from forecastprune.compare.replay import ReplaySettings, replay  # noqa: E402
from forecastprune.store import GammaTrajectoryStore  # noqa: E402

TARGET_S = 30.0
FORECASTERS = ["sma", "ema", "linear", "arima"]


def build_store(path: Path, channels: int, snapshots: int) -> None:
    """Write a synthetic run into a store, split into 42 layers like YOLOv3's prunable BNs."""
    run = make_run(n_channels=channels, n_snapshots=snapshots, record_every=10, seed=0)
    sizes = np.full(42, channels // 42)
    sizes[: channels - sizes.sum()] += 1
    layout = ChannelLayout(tuple((f"bn{i}", int(n)) for i, n in enumerate(sizes)))
    meta = {"lr_schedule": run.lr_schedule, "total_steps": int(run.steps[-1])}
    with GammaTrajectoryStore.create(path, layout, metadata=meta, flush_every=200) as store:
        for step, row, lr in zip(run.steps, run.values, run.lrs, strict=True):
            store.append(int(step), row, lr=float(lr))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=YOLOV3_CHANNELS)
    parser.add_argument("--snapshots", type=int, default=1000)
    args = parser.parse_args()
    cutoffs = tuple(np.round(np.arange(1, 21) * 0.025, 3))  # 2.5 % … 50 %

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.fpstore"
        start = time.perf_counter()
        build_store(path, args.channels, args.snapshots)
        print(f"synthetic store {args.channels} channels × {args.snapshots} snapshots "
              f"built in {time.perf_counter() - start:.1f} s (not counted)")
        with GammaTrajectoryStore.open(path) as store:
            start = time.perf_counter()
            store.history()
            read = time.perf_counter() - start
            start = time.perf_counter()
            result = replay(store, FORECASTERS, ReplaySettings(cutoffs=cutoffs, ratios=(0.5,)))
            total = time.perf_counter() - start

    fits = {name: sum(r.seconds for r in result.rows if r.forecaster == name)
            for name in result.forecasters}
    failed = [name for name in result.forecasters if result.failure(name)]
    print(f"\n{'part':<28}{'seconds':>9}{'share':>8}")
    print(f"{'store read (once)':<28}{read:>9.2f}{read / total:>8.0%}")
    for name, seconds in fits.items():
        print(f"{'fits: ' + name:<28}{seconds:>9.2f}{seconds / total:>8.0%}")
    rest = total - sum(fits.values())
    print(f"{'isolation, engine, metrics':<28}{rest:>9.2f}{rest / total:>8.0%}")
    print(f"\ncompare, {len(FORECASTERS)} forecasters (+ naive) × {len(cutoffs)} cutoffs: "
          f"{total:.1f} s   target {TARGET_S:.0f} s   measured/target = {total / TARGET_S:.2f}"
          f"   {'OK' if total <= TARGET_S else 'OVER TARGET'}")
    if failed:
        print(f"failed forecasters: {failed}")


if __name__ == "__main__":
    main()
