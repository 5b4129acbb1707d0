"""``auto``'s speed at YOLOv3 scale (a script, not a test).

Run::

    python benchmarks/bench_auto.py            # C = 13,376 channels, T = 200 snapshots

Times the whole prediction path (``predict_history``: |γ|, clock, fit, backtests of every
candidate at three origins, the final forecast, clipping) on synthetic sparse-training
trajectories (benchmarks/_synthetic.py), best of ``--repeat`` runs, and prints what ``auto``
chose. Twice: with the cumulative-LR clock (this run's LR drops leave little LR-time ahead, so
``auto`` finds the run settled and skips its backtests) and on the step axis (four histories
ahead: every candidate is backtested — the worst case). Target (issue 10): ≤ 2 s.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _synthetic import YOLOV3_CHANNELS, make_run
from forecastprune.predict import predict_history
from forecastprune.record.lr_clock import cumulative_lr_clock

TARGET_SECONDS = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=YOLOV3_CHANNELS)
    parser.add_argument("--snapshots", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    run = make_run(args.channels, args.snapshots)
    total = int(run.steps[-1]) * 5  # the history is the first fifth of the run
    clock = cumulative_lr_clock(run.steps, run.lrs, run.lr_schedule, total)
    for spec in ("auto", "auto(learned=False)"):
        for axis, run_clock in (("LR clock", clock), ("steps", None)):
            best, prediction = np.inf, None
            for _ in range(args.repeat):
                start = time.perf_counter()
                prediction = predict_history(spec, run.steps, run.values, total, clock=run_clock)
                best = min(best, time.perf_counter() - start)
            verdict = "ok" if best <= TARGET_SECONDS else "TOO SLOW"
            print(f"{spec:20s} {axis:8s} C={args.channels} T={args.snapshots}: {best:.3f} s "
                  f"(target ≤ {TARGET_SECONDS:g} s: {verdict}); chose {prediction.note}")


if __name__ == "__main__":
    main()
