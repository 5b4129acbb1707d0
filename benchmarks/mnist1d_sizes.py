"""Is the dense MNIST-1D model data-bound? Its accuracy against the number of training signals.

Trains the evidence table's dense ``cnn1d`` (``mnist1d_table.RECIPE``, method ``normal``) for
the same number of optimizer steps as a table run (10 epochs of 20,000 signals at batch 128:
1,560 steps) on the first 4,000 / 10,000 / 20,000 / 40,000 training signals of one generated
set (45,000 signals, 5,000 held out), and on the MNIST-1D default set (4,000 / 1,000 — the
set the authors' CNN figure is measured on, made locally with the generator's defaults). Where
the accuracy stops rising with more signals at equal steps, more data would not help the dense
model: the table's 20,000 are enough. Writes ``docs/results-mnist1d-sizes.json``, which
``mnist1d_report.py`` renders. From the repository root::

    python benchmarks/mnist1d_sizes.py --seeds 0,1,2    # add --resume to continue a cut run
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mnist1d_table import GRID, RECIPE  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
#: the study's sets: name -> (training signals generated, test signals)
SETS = {"mnist1d-45k": (40000, 5000), "mnist1d-default": (4000, 1000)}
#: (set, training signals used)
CELLS = (
    ("mnist1d-default", 4000),
    ("mnist1d-45k", 4000),
    ("mnist1d-45k", 10000),
    ("mnist1d-45k", 20000),
    ("mnist1d-45k", 40000),
)


def table_steps() -> int:
    """Optimizer steps of one dense table run."""
    from forecastprune.zoo.data import get_task

    n_train = get_task(GRID.task).n_train
    return GRID.epochs * (n_train // GRID.batch_size)


def run_cell(name: str, n_train: int, seed: int, steps: int) -> dict[str, Any]:
    """Train the dense model on ``n_train`` signals of set ``name`` for about ``steps`` steps."""
    import torch

    from forecastprune.pipeline.run import run_config
    from forecastprune.pipeline.train_config import TrainConfig
    from forecastprune.zoo.data import TASKS, Mnist1dTask

    torch.set_num_threads(1)
    TASKS.setdefault(name, Mnist1dTask(name, *SETS[name]))  # a study set, this process only
    epochs = max(1, math.ceil(steps / (n_train // GRID.batch_size)))
    config = TrainConfig.load(REPO / "configs" / "normal.yaml").replace(
        **RECIPE,
        task=name,
        epochs=epochs,
        batch_size=GRID.batch_size,
        train_subset=n_train,
        eval_every=epochs,
        seed=seed,
    )
    with tempfile.TemporaryDirectory(prefix="fp-sizes-") as tmp:
        run = run_config(config, store_path=Path(tmp) / "gammas.fpstore", progress=False)
    return {
        "set": name,
        "train": n_train,
        "test": SETS[name][1],
        "seed": seed,
        "epochs": epochs,
        "steps": run.total_steps,
        "accuracy": run.accuracy,
        "wall_seconds": run.summary()["wall_seconds"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results-mnist1d-sizes.json")
    parser.add_argument(
        "--resume", action="store_true", help="keep the cells saved in --out; run the rest"
    )
    args = parser.parse_args(argv)
    from forecastprune._util import atomic_write_bytes

    meta: dict[str, Any] = {"steps": table_steps(), "seconds": 0.0, "results": []}
    if args.resume and args.out.exists():
        meta = json.loads(args.out.read_text(encoding="utf-8"))
    done = {(r["set"], r["train"], r["seed"]) for r in meta["results"]}
    start, before = time.perf_counter(), meta["seconds"]
    for seed in (int(s) for s in args.seeds.split(",")):
        for name, n_train in CELLS:
            if (name, n_train, seed) in done:
                continue
            r = run_cell(name, n_train, seed, meta["steps"])
            meta["results"].append(r)
            meta["seconds"] = before + time.perf_counter() - start
            atomic_write_bytes(args.out, json.dumps(meta, indent=1).encode("utf-8"))
            print(
                f"{name} train {n_train} seed {seed}: {100 * r['accuracy']:.2f} % after "
                f"{r['steps']} steps ({r['wall_seconds']:.1f} s)",
                flush=True,
            )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
