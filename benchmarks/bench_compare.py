"""Benchmark the main job: ``compare``'s replay on YOLOv3-sized stores, time and peak memory.

For each store size (13,376 channels × 1,000 / 20,000 / 100,000 snapshots by default; the big
ones in float16, as a long run would be recorded) it replays sma, ema, linear and arima (plus
the naive control) at 10 cutoffs and one ratio, each size in a fresh process, and reports:

- wall time of the replay and its growth against the 20,000-snapshot store;
- peak RSS of the replaying process (``ru_maxrss``) and of the largest forecaster worker (each
  forecaster runs in a forked worker), both measured side by side in the same run;
- the store's size on disk and how long building it took (generating the synthetic run and
  writing it with batched appends; not part of the replay).

Targets (issue "runs of real length"): peak RSS under 2 GiB at 20,000 snapshots, and time and
memory at 100,000 within 2× of the 20,000 figures — the cost must grow with the forecasters'
windows, not with the length of the run.

    python benchmarks/bench_compare.py [--channels 13376] [--snapshots 1000,20000,100000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _synthetic import YOLOV3_CHANNELS, iter_run, step_decay_schedule  # noqa: E402

FORECASTERS = ["sma", "ema", "linear", "arima"]
CUTOFFS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5)
GIB = 1024**3


def build_store(path: Path, channels: int, snapshots: int, dtype: str) -> float:
    """Write a synthetic run (42 YOLOv3-like layers) chunk by chunk; return the seconds taken."""
    from forecastprune.core.layout import ChannelLayout
    from forecastprune.store import GammaTrajectoryStore

    sizes = np.full(42, channels // 42)
    sizes[: channels - sizes.sum()] += 1
    layout = ChannelLayout(tuple((f"bn{i}", int(n)) for i, n in enumerate(sizes)))
    total = snapshots * 10
    meta = {"lr_schedule": step_decay_schedule(total, 0.1), "total_steps": total}
    start = time.perf_counter()
    with GammaTrajectoryStore.create(
        path, layout, metadata=meta, flush_every=2000, dtype=dtype
    ) as store:
        for steps, values, lrs in iter_run(channels, snapshots, record_every=10, seed=0):
            store.append_many(steps, values, lrs=lrs)
    return time.perf_counter() - start


def replay_once(path: str) -> None:
    """Child process: replay the store and print one JSON line of figures."""
    from forecastprune.compare.replay import ReplaySettings, replay
    from forecastprune.engine.spec import PruneSpec
    from forecastprune.store import GammaTrajectoryStore

    start = time.perf_counter()
    with GammaTrajectoryStore.open(path) as store:
        result = replay(
            store,
            FORECASTERS,
            # policy none: the synthetic store has no model to plan with
            ReplaySettings(cutoffs=CUTOFFS, spec=PruneSpec(policy="none"), timeout=None),
        )
    seconds = time.perf_counter() - start
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    iou = {
        name: float(np.nanmean([r.iou for r in result.rows if r.forecaster == name]))
        for name in result.forecasters
    }
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rss": own,
                "worker_rss": workers,
                "iou": iou,
                "failed": [n for n in result.forecasters if result.failure(n)],
            }
        )
    )


def measure(channels: int, snapshots: int, tmp: Path) -> dict:
    dtype = "float32" if snapshots <= 1000 else "float16"
    path = tmp / f"s{snapshots}.fpstore"
    written = build_store(path, channels, snapshots, dtype)
    disk = sum(f.stat().st_size for f in path.iterdir())
    child = subprocess.run(
        [sys.executable, __file__, "--replay", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    for item in path.iterdir():
        item.unlink()
    path.rmdir()
    return {"snapshots": snapshots, "dtype": dtype, "disk": disk, "write_s": written, **figures}


def report(rows: list[dict]) -> None:
    base = next((r for r in rows if r["snapshots"] == 20000), rows[0])
    print(
        f"\n{'snapshots':>10} {'dtype':>8} {'disk GB':>8} {'build s':>8} {'replay s':>9} "
        f"{'×time':>6} {'RSS GiB':>8} {'worker GiB':>11} {'×RSS':>6}"
    )
    for r in rows:
        peak = max(r["rss"], r["worker_rss"])
        print(
            f"{r['snapshots']:>10,} {r['dtype']:>8} {r['disk'] / 1e9:>8.2f} "
            f"{r['write_s']:>8.1f} {r['seconds']:>9.1f} {r['seconds'] / base['seconds']:>6.2f} "
            f"{r['rss'] / GIB:>8.2f} {r['worker_rss'] / GIB:>11.2f} "
            f"{peak / max(base['rss'], base['worker_rss']):>6.2f}"
        )
    for r in rows:
        print(
            f"mean IoU over cutoffs at {r['snapshots']:,}: "
            + ", ".join(f"{k} {v:.3f}" for k, v in r["iou"].items())
            + (f"  FAILED: {r['failed']}" if r["failed"] else "")
        )
    print(
        f"\nforecasters: {', '.join(FORECASTERS)} (+ naive) × {len(CUTOFFS)} cutoffs; RSS is "
        "ru_maxrss of the replaying process and of its largest forecaster worker"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=YOLOV3_CHANNELS)
    parser.add_argument("--snapshots", default="1000,20000,100000")
    parser.add_argument("--replay", help=argparse.SUPPRESS)  # internal: the child process
    args = parser.parse_args()
    if args.replay:
        replay_once(args.replay)
        return
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for snapshots in (int(s) for s in args.snapshots.split(",")):
            rows.append(measure(args.channels, snapshots, Path(tmp)))
            print(
                f"{snapshots:,} snapshots: {rows[-1]['seconds']:.1f} s, "
                f"{max(rows[-1]['rss'], rows[-1]['worker_rss']) / GIB:.2f} GiB",
                flush=True,
            )
    report(rows)


if __name__ == "__main__":
    main()
