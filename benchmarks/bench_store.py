"""Benchmark store appends at YOLOv3's width (13,376 channels): per-row, batched, disk speed.

Side by side in one run, interleaved and repeated (shared machines are noisy; the best of the
repeats is reported): snapshots per second for

- ``append`` one row at a time (what a recorder does), at ``flush_every`` 50 and 256;
- ``append_many`` with 2,000-row segments (imports, thinning);
- the disk itself: the same bytes written with ``np.save`` and one fsync per 2,000 rows, the
  ceiling any store format could reach;

and ``append_many``'s share of that ceiling. Targets: per-row ≥ 5,000 snapshots/s on an idle
machine; batched near disk speed.

    python benchmarks/bench_store.py [--channels 13376] [--rows 4000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _synthetic import YOLOV3_CHANNELS  # noqa: E402

from forecastprune.core.layout import ChannelLayout
from forecastprune.store import GammaTrajectoryStore  # noqa: E402


def _layout(channels: int) -> ChannelLayout:
    sizes = np.full(42, channels // 42)
    sizes[: channels - sizes.sum()] += 1
    return ChannelLayout(tuple((f"bn{i}", int(n)) for i, n in enumerate(sizes)))


def per_row(tmp: Path, rows: np.ndarray, flush_every: int) -> float:
    with GammaTrajectoryStore.create(
        tmp / "s", _layout(rows.shape[1]), flush_every=flush_every
    ) as store:
        start = time.perf_counter()
        for step, row in enumerate(rows):
            store.append(step, row, lr=0.1)
        store.flush()
        return time.perf_counter() - start


def batched(tmp: Path, rows: np.ndarray) -> float:
    with GammaTrajectoryStore.create(tmp / "s", _layout(rows.shape[1]), flush_every=2000) as store:
        start = time.perf_counter()
        store.append_many(np.arange(len(rows)), rows, lrs=np.full(len(rows), 0.1))
        return time.perf_counter() - start


def disk(tmp: Path, rows: np.ndarray) -> float:
    (tmp / "s").mkdir()
    start = time.perf_counter()
    for first in range(0, len(rows), 2000):
        with open(tmp / "s" / f"{first}.npy", "wb") as handle:
            np.save(handle, rows[first : first + 2000])
            handle.flush()
            os.fsync(handle.fileno())
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=YOLOV3_CHANNELS)
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = np.random.default_rng(0).normal(size=(args.rows, args.channels)).astype(np.float32)
    cases = {
        "append, flush_every=50": lambda d: per_row(d, rows, 50),
        "append, flush_every=256": lambda d: per_row(d, rows, 256),
        "append_many (2,000-row segments)": lambda d: batched(d, rows),
        "disk: np.save + fsync per 2,000 rows": lambda d: disk(d, rows),
    }
    best = {name: float("inf") for name in cases}
    for _ in range(args.repeats):
        for name, case in cases.items():
            tmp = Path(tempfile.mkdtemp())
            try:
                best[name] = min(best[name], case(tmp))
            finally:
                shutil.rmtree(tmp)
    megabytes = rows.nbytes / 1e6
    print(
        f"{args.rows:,} snapshots × {args.channels:,} channels (float32, {megabytes:.0f} MB), "
        f"best of {args.repeats}"
    )
    for name, seconds in best.items():
        print(
            f"  {name:<40} {args.rows / seconds:>9,.0f} snapshots/s "
            f"{megabytes / seconds:>8.0f} MB/s"
        )
    ceiling = best["disk: np.save + fsync per 2,000 rows"]
    print(f"append_many / disk speed = {ceiling / best['append_many (2,000-row segments)']:.2f}")


if __name__ == "__main__":
    main()
