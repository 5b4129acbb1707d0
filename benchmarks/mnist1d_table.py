"""The evidence table on MNIST-1D: dense vs slimming vs Early-Bird vs forecast-driven early pruning.

MNIST-1D (Greydanus 2020) is a public benchmark with a published CNN figure; its data is made
locally by the ``mnist1d`` package's generator (``forecastprune[mnist1d]``, never downloaded).
This trains the ``cnn1d`` zoo model (stride-2 Conv1d → BatchNorm1d → ReLU blocks, a linear
classifier over the flattened features) on the ``mnist1d`` task (20,000 training / 5,000 test
signals) with every method, and writes ``docs/results-mnist1d.md`` with its plots and the raw
per-run records (``docs/results-mnist1d-runs.json``):

- ratios 0.5 and 0.7 of the channels under the ``grouped`` policy;
- methods: normal (dense); slimming 2× (the original recipe: L1 for a whole budget, prune at
  its end, fine-tune as long again, charged to its compute); slimming on the same total
  budget (75 % sparse, 25 % fine-tune); Early-Bird; forecast ``naive`` and ``auto`` at 10 %
  and 30 % of the run; forecast ``auto`` timed by the backtest-``confidence`` rule;
- ≥ 5 seeds, paired by seed (``evidence_stats.py``).

The grid machinery is the digits table's (``early_prune_table.py``: one
:func:`~forecastprune.pipeline.run.run_config` per run, exactly as ``forecastprune train``
runs it); the model, task and recipe ride in every variant's overrides. Records are saved
after every run, so ``--resume`` continues an interrupted grid. From the repository root::

    python benchmarks/mnist1d_table.py --seeds 0,1,2,3,4          # the full grid
    python benchmarks/mnist1d_table.py --resume                  # continue it
    python benchmarks/mnist1d_table.py --quick --out /tmp/q.md   # a smoke run (seconds)
    python benchmarks/mnist1d_table.py --render-only             # report from the saved runs
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from early_prune_table import Job, TaskGrid, Variant, _key, run_all  # noqa: E402
from evidence_report import runs_path, saved_runs  # noqa: E402
from mnist1d_report import write_mnist1d_report  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
FORECASTERS = ("naive", "auto")
CUTOFFS = ("0.1", "0.3")

#: the model and recipe every run shares (on top of each method's configs/<method>.yaml)
RECIPE: dict[str, Any] = {
    "model": "cnn1d",
    "widths": (64, 64, 64),
    "gamma_init": 0.5,
    "augment": False,  # the generator already draws a fresh transformation per signal
    "lr": 0.05,
    "momentum": 0.9,
    "weight_decay": 1e-4,
    "schedule": "cosine",
    "sparsity": 5e-3,
}
GRID = TaskGrid("mnist1d", epochs=10, batch_size=128, ratios=(0.5, 0.7), policies=("grouped",))
#: --quick: 2 epochs on the first 2,000 training signals, one ratio, 2 seeds
QUICK_GRID = TaskGrid("mnist1d", epochs=2, batch_size=128, ratios=(0.7,), policies=("grouped",))
QUICK_RECIPE = {**RECIPE, "train_subset": 2000}


def variants(epochs: int, recipe: dict[str, Any]) -> list[Variant]:
    """Every pruning variant of one (ratio, policy) group, in table order."""

    def variant(name: str, config: str, family: str, **overrides: Any) -> Variant:
        return Variant(name, config, family, {**recipe, **overrides})

    rows = [
        variant("slimming", "slimming", "slimming"),
        # the original recipe: L1 for a whole budget, then a fine-tune as long again
        variant("slimming 2×", "slimming", "slimming", epochs=2 * epochs, sparse_fraction=0.5),
        variant("early-bird", "early-bird", "early-bird"),
    ]
    rows += [
        variant(f"forecast {f} @{at}", "forecast-auto", "forecast", forecaster=f, prune_at=at)
        for at in CUTOFFS
        for f in FORECASTERS
    ]
    # the backtest-confidence timing as the digits table runs it: the newest mask agrees with
    # the previous one and the forecaster's own backtest reaches IoU 0.9 (forced at 60 %)
    rows.append(
        variant(
            "forecast auto @confidence",
            "forecast-auto",
            "forecast-auto",
            forecaster="auto",
            prune_at="confidence",
            auto_window=1,
            auto_min_confidence=0.9,
        )
    )
    return rows


def jobs_for(grid: TaskGrid, seeds: list[int], recipe: dict[str, Any]) -> list[Job]:
    """Every run, seed by seed (an interrupted grid keeps whole seeds), longest first."""
    normal = Variant("normal", "normal", "normal", dict(recipe))
    jobs = []
    for seed in seeds:
        batch = [Job(grid, normal, seed, None, None)]
        for ratio in grid.ratios:
            for policy in grid.policies:
                batch += [Job(grid, v, seed, ratio, policy) for v in variants(grid.epochs, recipe)]
        jobs += sorted(batch, key=lambda j: -j.cost)
    return jobs


def _jsonable(recipe: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in recipe.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel processes")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 2 seeds, 2 epochs on 2,000 signals"
    )
    parser.add_argument(
        "--resume", action="store_true", help="keep the runs saved in the records file"
    )
    parser.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="start no new run after this many minutes (run the grid in chunks with --resume)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results-mnist1d.md")
    parser.add_argument(
        "--render-only", action="store_true", help="re-render from the runs saved next to --out"
    )
    args = parser.parse_args(argv)
    raw = runs_path(args.out)
    grid, recipe = (QUICK_GRID, QUICK_RECIPE) if args.quick else (GRID, RECIPE)
    seeds = [0, 1] if args.quick else [int(s) for s in args.seeds.split(",")]
    saved = saved_runs(args.out, args.render_only or args.resume)
    if args.render_only:
        if saved is None:
            parser.error(f"--render-only needs the saved runs in {raw}")
        write_mnist1d_report(saved, args.out)
        return 0
    meta: dict[str, Any] = {
        "seeds": seeds,
        "jobs": args.jobs,
        "quick": args.quick,
        "grids": [asdict(grid)],
        "recipe": _jsonable(recipe),
        "forecasters": list(FORECASTERS),
        "cutoffs": list(CUTOFFS),
        "seconds": 0.0,
        "results": [],
    }
    if saved is not None:
        meta["results"], meta["seconds"] = saved["results"], saved["seconds"]
        meta["seeds"] = sorted(set(saved["seeds"]) | set(seeds))
    done = {_key(r) for r in meta["results"]}
    todo = [j for j in jobs_for(grid, seeds, recipe) if j.key not in done]
    print(f"{len(todo)} runs to do ({len(done)} saved)", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    start, before = time.perf_counter(), meta["seconds"]

    def save(record: dict[str, Any]) -> None:
        from forecastprune._util import atomic_write_bytes

        meta["results"].append(record)
        meta["seconds"] = before + time.perf_counter() - start
        atomic_write_bytes(raw, json.dumps(meta).encode("utf-8"))

    if args.max_minutes is None:
        run_all(todo, max(1, args.jobs), save)
    else:  # one run at a time, so the chunk ends on time
        for job in todo:
            if time.perf_counter() - start > 60 * args.max_minutes:
                print("time is up: continue with --resume", flush=True)
                break
            run_all([job], 1, save)
    write_mnist1d_report(meta, args.out)
    print(f"wrote {args.out} ({len(meta['results'])} runs, {meta['seconds'] / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
