"""``auto``'s speed at YOLOv3 scale (a script, not a test).

Run::

    python benchmarks/bench_auto.py            # C = 13,376 channels, T = 200 snapshots

Times the whole prediction path (``predict_history``: |γ|, clock, fit, backtests, the final
forecast, clipping) on synthetic sparse-training trajectories (benchmarks/_synthetic.py) with
a 75-layer layout (YOLOv3 has 75 BN layers), best of ``--repeat`` runs, beside ``naive`` on the
same run (the ratio), and prints what each chose. Twice: with the cumulative-LR clock (this
run's LR drops leave little LR-time ahead, so ``auto`` finds the run settled and skips its
backtests) and on the step axis (four histories ahead). The bundled ``auto`` gate is closed
(docs/corpus.md), so ``auto`` alone is naive's cost; ``auto(open gate)`` backtests
``learned_gbr`` at three origins through a gate that opens, then forecasts — the worst case —
and ``auto(gated=False)`` skips the gate. Beside each time: the prediction's peak traced
allocation (``tracemalloc``: what one forecast adds) and the process's peak RSS so far.
Target (issues 10 and 20): ≤ 2 s.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import tracemalloc
from dataclasses import replace
from pathlib import Path

import numpy as np
from _synthetic import YOLOV3_CHANNELS, make_run

from forecastprune.core.layout import ChannelLayout
from forecastprune.core.lr_clock import cumulative_lr_clock
from forecastprune.forecasters.gate import load_gates, save_gates
from forecastprune.predict import attach_layout, build_forecaster, predict_history

TARGET_SECONDS = 2.0
#: BN layers of YOLOv3, for the layer-aware forecaster's layout
YOLOV3_LAYERS = 75


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=YOLOV3_CHANNELS)
    parser.add_argument("--snapshots", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    run = make_run(args.channels, args.snapshots)
    total = int(run.steps[-1]) * 5  # the history is the first fifth of the run
    clock = cumulative_lr_clock(run.steps, run.lrs, run.lr_schedule, total)
    layers = [len(a) for a in np.array_split(np.arange(args.channels), YOLOV3_LAYERS)]
    open_gates = _open_auto_gates(Path(tempfile.mkdtemp()) / "open-gates.json")
    cases = [
        (spec, axis, run_clock)
        for axis, run_clock in (("LR clock", clock), ("steps", None))
        for spec in (
            "naive",
            "auto",
            f"auto(gates='{open_gates}')",
            "auto(gated=False)",
            "auto(learned=False)",
        )
    ]
    # learned_gbr's bundled gate reads the channel count and stays closed at this size:
    # ungated it pays for its model
    cases += [
        ("learned_gbr", "steps", None),
        ("learned_gbr(gated=False)", "steps", None),
        ("learned", "steps", None),
    ]
    naive_seconds: dict[str, float] = {}
    for spec, axis, run_clock in cases:
        model = attach_layout(
            build_forecaster(spec),
            ChannelLayout.from_pairs([(f"bn{i}", n) for i, n in enumerate(layers)]),
        )
        best, traced, prediction = np.inf, 0, None
        for _ in range(args.repeat):
            tracemalloc.start()
            start = time.perf_counter()
            prediction = predict_history(model, run.steps, run.values, total, clock=run_clock)
            best = min(best, time.perf_counter() - start)
            traced = max(traced, tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        verdict = "ok" if best <= TARGET_SECONDS else "TOO SLOW"
        naive_seconds.setdefault(axis, best)  # naive comes first on each axis
        label = "auto(open gate)" if "gates=" in spec else spec
        print(
            f"{label:20s} {axis:8s} C={args.channels} T={args.snapshots}: {best:.3f} s "
            f"({best / naive_seconds[axis]:.0f}× naive; target ≤ {TARGET_SECONDS:g} s: "
            f"{verdict}), +{traced / 2**20:.0f} MiB traced, peak RSS {rss:.0f} MiB; "
            f"chose {prediction.note or spec}"
        )


def _open_auto_gates(path: Path) -> Path:
    """The bundled gates with ``auto``'s opened on every run (backtest gain > −1), so ``auto``
    pays for its backtests and its forecast: the cost of a gate that opens (the bundled one is
    closed and skips both)."""
    gates = load_gates()
    gates["auto"] = replace(gates["auto"], threshold=-1.0, closed=False)
    return save_gates(path, gates, {"made_by": "benchmarks/bench_auto.py"})


if __name__ == "__main__":
    main()
