"""The evidence table: normal vs network slimming vs Early-Bird vs forecast-driven early pruning.

Trains the Darknet-style demo model with every method over a grid of tasks, pruning ratios,
coupling policies and seeds, and writes ``docs/results.md`` with its plots
(``docs/results-*.png``) and the raw per-run records (``docs/results-runs.json``):

- tasks: ``digits-hard`` (359 training / 1,438 test images, the dense model ≈ 91 %) on the full
  grid, ``digits`` (1,437 / 360, ≈ 99 %) on a reduced one (ratio 0.7 only: its runs cost
  twice as many steps, and at 0.5 it cannot tell methods apart);
- ratios 0.5, 0.7, 0.85 of the prunable channels, policies ``seed`` and ``grouped``;
- methods: normal, slimming, slimming 2×, Early-Bird, forecast with naive / sma / arima / auto
  / learned / learned_gbr at fixed cutoffs 0.1 and 0.3, and forecast ``auto`` with automatic timing
  by the
  mask-``stability`` rule and by the backtest-``confidence`` rule;
- ≥ 5 seeds; means with 95 % t-intervals and paired tests (see ``evidence_stats.py``).

Every run goes through :func:`forecastprune.pipeline.run.run_config`, exactly as
``forecastprune train`` runs it. Runs are ordered seed by seed, and the records are saved after
every run, so an interrupted grid keeps whole seeds and ``--resume`` continues it. Run it from
the repository root::

    python benchmarks/early_prune_table.py --jobs 2              # the full grid
    python benchmarks/early_prune_table.py --quick               # a CI-sized smoke run
    python benchmarks/early_prune_table.py --render-only         # report from the saved runs
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from evidence_report import runs_path, saved_runs, write_report  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"
FORECASTERS = ("naive", "sma", "arima", "auto", "learned", "learned_gbr")
CUTOFFS = ("0.1", "0.3")


@dataclass(frozen=True)
class Variant:
    """One method setting: a config file plus overrides."""

    name: str
    config: str
    family: str
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskGrid:
    """The training settings of one task and the part of the grid it runs."""

    task: str
    epochs: int
    batch_size: int
    ratios: tuple[float, ...]
    policies: tuple[str, ...]


#: the full grid; ``--quick`` shrinks it (see :func:`quick_grid`)
GRIDS = (
    TaskGrid(
        "digits-hard",
        epochs=20,
        batch_size=32,
        ratios=(0.5, 0.7, 0.85),
        policies=("seed", "grouped"),
    ),
    TaskGrid("digits", epochs=20, batch_size=64, ratios=(0.7,), policies=("seed", "grouped")),
)


def variants(
    epochs: int, forecasters: tuple[str, ...] = FORECASTERS, cutoffs: tuple[str, ...] = CUTOFFS
) -> list[Variant]:
    """Every pruning variant of one (task, ratio, policy) group, in table order."""
    rows = [
        Variant("slimming", "slimming", "slimming"),
        # the original recipe: a full sparse run, then a fine-tuning run of the same length
        Variant(
            "slimming 2×", "slimming", "slimming", {"epochs": 2 * epochs, "sparse_fraction": 0.5}
        ),
        Variant("early-bird", "early-bird", "early-bird"),
    ]
    rows += [
        Variant(
            f"forecast {f} @{at}", "forecast-auto", "forecast", {"forecaster": f, "prune_at": at}
        )
        for at in cutoffs
        for f in forecasters
    ]
    # the stability rule as configs/forecast-auto.yaml has it (window 3); the confidence rule
    # asks the newest mask to agree with the previous one only, because its backtest, not a
    # long window, is the evidence that the forecast is right
    rows += [
        Variant(
            "forecast auto @stability",
            "forecast-auto",
            "forecast-auto",
            {"forecaster": "auto", "prune_at": "stability"},
        ),
        Variant(
            "forecast auto @confidence",
            "forecast-auto",
            "forecast-auto",
            {
                "forecaster": "auto",
                "prune_at": "confidence",
                "auto_window": 1,
                "auto_min_confidence": 0.9,
            },
        ),
    ]
    return rows


NORMAL = Variant("normal", "normal", "normal")


def quick_grid() -> tuple[tuple[TaskGrid, ...], list[int], tuple[str, ...], tuple[str, ...]]:
    """A smoke-sized grid: one task, one ratio, one policy, 2 seeds, 2 forecasters, 4 epochs."""
    grid = (TaskGrid("digits-hard", epochs=4, batch_size=32, ratios=(0.7,), policies=("seed",)),)
    return grid, [0, 1], ("naive", "auto"), ("0.3",)


@dataclass(frozen=True)
class Job:
    """One training run."""

    grid: TaskGrid
    variant: Variant
    seed: int
    ratio: float | None  # None for normal (it neither prunes nor depends on the policy)
    policy: str | None

    @property
    def key(self) -> tuple[Any, ...]:
        return (self.grid.task, self.variant.name, self.seed, self.ratio, self.policy)

    @property
    def cost(self) -> int:
        return int(self.variant.overrides.get("epochs", self.grid.epochs))


def jobs_for(
    grids: tuple[TaskGrid, ...],
    seeds: list[int],
    forecasters: tuple[str, ...],
    cutoffs: tuple[str, ...],
) -> list[Job]:
    """Every run: task by task, then seed by seed (an interrupted grid keeps whole seeds of the
    first tasks), longest first within a seed so the last runs of the pool are short."""
    jobs = []
    for grid in grids:
        for seed in seeds:
            batch = [Job(grid, NORMAL, seed, None, None)]
            for ratio in grid.ratios:
                for policy in grid.policies:
                    batch += [
                        Job(grid, v, seed, ratio, policy)
                        for v in variants(grid.epochs, forecasters, cutoffs)
                    ]
            jobs += sorted(batch, key=lambda j: -j.cost)
    return jobs


def run_one(job: Job) -> dict[str, Any]:
    """Train one run in this process and return its record."""
    import torch

    from forecastprune.pipeline.run import run_config
    from forecastprune.pipeline.train_config import TrainConfig

    torch.set_num_threads(1)  # one core per run; parallelism comes from --jobs
    grid = job.grid
    config = TrainConfig.load(CONFIGS / f"{job.variant.config}.yaml")
    overrides: dict[str, Any] = {
        "task": grid.task,
        "epochs": grid.epochs,
        "batch_size": grid.batch_size,
        **job.variant.overrides,
        "seed": job.seed,
    }
    if job.ratio is not None:
        overrides.update(ratio=job.ratio, policy=job.policy)
    # only the final accuracy is reported: evaluating 1,438 test images every epoch would cost
    # a third of a run
    overrides["eval_every"] = overrides["epochs"]
    config = config.replace(**overrides)
    with tempfile.TemporaryDirectory(prefix="fp-table-") as tmp:
        run = run_config(config, store_path=Path(tmp) / "gammas.fpstore", progress=False)
    summary = run.summary()
    timing = (summary["pruner"] or {}).get("timing", {})
    return {
        "task": grid.task,
        "variant": job.variant.name,
        "family": job.variant.family,
        "seed": job.seed,
        "ratio": job.ratio,
        "policy": job.policy,
        "accuracy": summary["accuracy"],
        "params": summary["params"],
        "macs": summary["macs"],
        "prune_step": summary["prune_step"],
        "total_steps": summary["total_steps"],
        "train_macs": summary["train_macs"],
        "wall_seconds": summary["wall_seconds"],
        "fired_by": (summary["pruner"] or {}).get("fired_by"),
        "timing": {k: timing[k] for k in ("distances", "confidences") if k in timing},
    }


def _key(record: dict[str, Any]) -> tuple[Any, ...]:
    return (record["task"], record["variant"], record["seed"], record["ratio"], record["policy"])


def run_all(jobs: list[Job], workers: int, save: Any) -> float:
    """Run every job (in ``workers`` processes), calling ``save(record)`` after each."""
    start = time.perf_counter()
    if workers == 1:
        outputs: Any = (run_one(j) for j in jobs)
    else:
        pool = ProcessPoolExecutor(max_workers=workers)
        outputs = (f.result() for f in as_completed([pool.submit(run_one, j) for j in jobs]))
    for i, record in enumerate(outputs, 1):
        save(record)
        print(
            f"[{i}/{len(jobs)}] {record['task']} {record['variant']:<26} r={record['ratio']} "
            f"{record['policy']} seed {record['seed']}: acc {100 * record['accuracy']:.2f} %, "
            f"prune {record['prune_step']}, {record['wall_seconds']:.1f} s "
            f"({time.perf_counter() - start:.0f} s total)",
            flush=True,
        )
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds")
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel processes")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: tiny grid, 2 seeds, 4 epochs (minutes, not an answer)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the runs already saved in the records file; run the rest",
    )
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results.md")
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="re-render the report from the runs saved next to --out",
    )
    args = parser.parse_args(argv)
    raw = runs_path(args.out)
    if args.quick:
        grids, seeds, forecasters, cutoffs = quick_grid()
    else:
        grids, seeds = GRIDS, [int(s) for s in args.seeds.split(",")]
        forecasters, cutoffs = FORECASTERS, CUTOFFS
    saved = saved_runs(args.out, args.render_only or args.resume)
    if args.render_only:
        if saved is None:
            parser.error(f"--render-only needs the saved runs in {raw}")
        write_report(saved, args.out)
        return 0
    meta = {
        "seeds": seeds,
        "jobs": args.jobs,
        "quick": args.quick,
        "grids": [asdict(g) for g in grids],
        "forecasters": list(forecasters),
        "cutoffs": list(cutoffs),
        "seconds": 0.0,
        "results": [],
    }
    if saved is not None:
        meta["results"], meta["seconds"] = saved["results"], saved["seconds"]
    done = {_key(r) for r in meta["results"]}
    todo = [j for j in jobs_for(grids, seeds, forecasters, cutoffs) if j.key not in done]
    print(f"{len(todo)} runs to do ({len(done)} saved)", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    start, before = time.perf_counter(), meta["seconds"]

    def save(record: dict[str, Any]) -> None:
        from forecastprune._util import atomic_write_bytes

        meta["results"].append(record)
        meta["seconds"] = before + time.perf_counter() - start
        atomic_write_bytes(raw, json.dumps(meta).encode("utf-8"))

    run_all(todo, max(1, args.jobs), save)
    write_report(meta, args.out)
    print(f"wrote {args.out} in {meta['seconds'] / 60:.1f} min of runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
