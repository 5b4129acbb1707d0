"""The detection evidence table: dense vs slimming vs Early-Bird vs forecast-early, on YOLO.

ultralytics YOLOv8n and YOLO11n, built from their yaml (no weights), trained by ultralytics' own
trainer through forecastprune's integration (:func:`attach`) on a generated cluttered shapes
set (:func:`make_clutter_dataset`: six classes, several scales, occlusion, distractors),
a fixed epoch budget per run. Methods, at ratios 0.5 and 0.7 under ``grouped``:

- **dense** (``normal`` in the records): no L1, no pruning;
- **slimming**: L1 for the whole budget, prune on the final |γ|
  (:func:`prune_ultralytics_checkpoint`, ``naive`` at cutoff 1.0), then a fine-tune
  (:class:`PrunedDetectionTrainer`) charged to its compute. The L1 run is one computation
  shared by both ratios (same seed, same data, nothing depends on the ratio before the prune);
- **slimming (same budget)**: L1 for 75 % of the budget, prune on the current |γ|, train on;
- **early-bird**: prune when the current-|γ| mask is within Hamming 0.1 of the previous 4
  (checked once per epoch);
- **forecast F @c**: L1 while recording γ; at fraction c (0.1, 0.3) forecast the final |γ| with
  F (``auto``, and ``naive`` as the control), prune once, train on without L1;
- **forecast auto @confidence**: the backtest-confidence timing rule (forced at 60 %).

Records are saved after every run (``docs/results-yolo-runs.json``), grouped seed by seed, so
``--resume`` continues an interrupted grid; ``--render-only`` re-renders
``docs/results-yolo.md`` and its plots. Run it from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/yolo_table.py --detectors yolov8n --seeds 0,1,2 --resume
    python benchmarks/yolo_table.py --quick                 # a ~5-minute smoke run
    python benchmarks/yolo_table.py --render-only
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO = Path(__file__).resolve().parents[1]
DETECTORS = ("yolov8n", "yolo11n")
RATIOS = (0.5, 0.7)
POLICY = "grouped"
LATENCY_SIZE = 640


@dataclass(frozen=True)
class Budget:
    """Data and training settings shared by every run of a grid."""

    imgsz: int = 64
    n_train: int = 1024
    n_val: int = 256
    epochs: int = 10
    finetune_epochs: int = 5
    batch: int = 16
    sparsity: float = 1e-3
    data_seed: int = 0


FULL = Budget()
QUICK = Budget(n_train=256, n_val=64, epochs=5, finetune_epochs=2)


@dataclass(frozen=True)
class Variant:
    """One method: a name, its family (for the statistics) and its ``attach`` options."""

    name: str
    family: str
    options: dict[str, Any] = field(default_factory=dict)


NORMAL = Variant("normal", "normal")
SLIMMING = Variant("slimming", "slimming")  # the L1 run + prune + fine-tune; see run_slimming
PER_RATIO = (
    Variant("slimming (same budget)", "slimming", {"forecaster": "naive", "prune_at": 0.75}),
    Variant("early-bird", "early-bird", {"forecaster": "naive", "prune_at": "early-bird"}),
    *(
        Variant(f"forecast {f} @{c}", "forecast", {"forecaster": f, "prune_at": c})
        for c in (0.1, 0.3)
        for f in ("naive", "auto")
    ),
    # as in docs/results.md: the newest mask need agree with the previous one only, because
    # the backtest, not a long window, is the evidence that the forecast is right
    Variant(
        "forecast auto @confidence",
        "forecast-auto",
        {
            "forecaster": "auto",
            "prune_at": "confidence",
            "auto_options": {"window": 1, "min_confidence": 0.9},
        },
    ),
)
VARIANT_NAMES = (NORMAL.name, SLIMMING.name, *(v.name for v in PER_RATIO))


@dataclass(frozen=True)
class Job:
    """One unit of work: one run, or (slimming) one L1 run with a fine-tune per ratio."""

    detector: str
    variant: Variant
    seed: int
    ratios: tuple[float, ...]  # the ratios whose records this job writes; () for dense

    @property
    def keys(self) -> list[tuple[Any, ...]]:
        if not self.ratios:
            return [(self.detector, self.variant.name, self.seed, None)]
        return [(self.detector, self.variant.name, self.seed, r) for r in self.ratios]


def jobs_for(
    detectors: tuple[str, ...], seeds: list[int], ratios: tuple[float, ...], names: tuple[str, ...]
) -> list[Job]:
    """Detector by detector, seed by seed (an interrupted grid keeps whole seeds), the longest
    job (slimming) first."""
    jobs = []
    for detector in detectors:
        for seed in seeds:
            if SLIMMING.name in names:
                jobs.append(Job(detector, SLIMMING, seed, ratios))
            if NORMAL.name in names:
                jobs.append(Job(detector, NORMAL, seed, ()))
            for variant in PER_RATIO:
                if variant.name in names:
                    jobs += [Job(detector, variant, seed, (r,)) for r in ratios]
    return jobs


# ------------------------------------------------------------------------- one run
class ComputeMeter:
    """Training compute as it happens: 3 × MACs/image × images, at the model's current size.

    Registered before the pruner's callback, so each batch is charged at the model that ran it
    (the prune swaps the model in after the batch that triggered it).
    """

    def __init__(self, imgsz: int) -> None:
        self.imgsz = imgsz
        self.macs = 0
        self.batches = 0
        self._key: tuple[int, int] | None = None
        self._per_image = 0

    def on_train_batch_end(self, trainer: Any) -> None:
        model = trainer.model
        key = (id(model), sum(p.numel() for p in model.parameters()))
        if key != self._key:
            self._key, self._per_image = key, macs_of(model, self.imgsz)
        loader = trainer.train_loader
        index = self.batches % len(loader)
        size = min(trainer.batch_size, len(loader.dataset) - index * trainer.batch_size)
        self.macs += 3 * self._per_image * size
        self.batches += 1


def macs_of(model: Any, imgsz: int) -> int:
    """MACs per image at ``imgsz``, on an eval-mode copy (the BN statistics stay untouched)."""
    import torch

    from forecastprune.engine.stats import count_macs

    probe = copy.deepcopy(model).float().eval()
    return int(count_macs(probe, torch.zeros(1, 3, imgsz, imgsz)))


def train(
    source: str,
    data: Path,
    budget: Budget,
    seed: int,
    project: Path,
    *,
    options: dict[str, Any] | None = None,
    epochs: int | None = None,
    trainer: Any = None,
) -> tuple[Any, ComputeMeter, Any]:
    """One ultralytics training run; returns (trainer, compute meter, pruner or None)."""
    from forecastprune.integrations.ultralytics import attach, offline

    meter = ComputeMeter(budget.imgsz)
    with offline():
        from ultralytics import YOLO

        model = YOLO(source)
        model.add_callback("on_train_batch_end", meter.on_train_batch_end)
        pruner = attach(model, **options) if options is not None else None
        extra = {"trainer": trainer} if trainer is not None else {}
        model.train(
            data=str(data),
            epochs=epochs or budget.epochs,
            imgsz=budget.imgsz,
            batch=budget.batch,
            nbs=budget.batch,  # one optimizer update per batch: steps = batches
            workers=0,
            plots=False,
            val=False,  # validate once, after the last epoch
            device="cpu",
            amp=False,
            seed=seed,
            deterministic=True,
            verbose=False,
            project=str(project),
            name="run",
            exist_ok=True,
            **extra,
        )
    return model.trainer, meter, pruner


def final_numbers(trainer: Any, imgsz: int) -> dict[str, Any]:
    """mAP of the final (EMA) model, its size and its fused CPU latency at 640 and ``imgsz``."""
    import torch

    from forecastprune.engine.stats import count_params, measure_latencies

    final = copy.deepcopy(trainer.ema.ema).float().eval()
    metrics = trainer.metrics
    fused = copy.deepcopy(final).fuse(verbose=False)
    latencies = [
        1e3
        * measure_latencies(
            [fused], torch.zeros(1, 3, size, size), repeats=repeats, statistic="min"
        )[0]
        for size, repeats in ((LATENCY_SIZE, 5), (imgsz, 30))
    ]
    return {
        "accuracy": float(metrics["metrics/mAP50-95(B)"]),
        "map50": float(metrics["metrics/mAP50(B)"]),
        "params": int(count_params(final)),
        "macs": macs_of(final, imgsz),
        "macs_640": macs_of(final, LATENCY_SIZE),
        "latency_ms_640": latencies[0],
        "latency_ms_train": latencies[1],
    }


def _base(job: Job, ratio: float | None) -> dict[str, Any]:
    return {
        "task": job.detector,
        "variant": job.variant.name,
        "family": job.variant.family,
        "seed": job.seed,
        "ratio": ratio,
        "policy": POLICY if ratio is not None else None,
    }


def run_plain(job: Job, data: Path, budget: Budget, tmp: Path) -> list[dict[str, Any]]:
    """Dense, or one attached method at one ratio."""
    from forecastprune.engine.spec import PruneSpec

    start = time.perf_counter()
    ratio = job.ratios[0] if job.ratios else None
    options = None
    if ratio is not None:
        options = {
            **job.variant.options,
            "spec": PruneSpec(ratio=ratio, policy=POLICY),
            "sparsity": budget.sparsity,
            "store_path": tmp / "gammas.fpstore",
        }
    trainer, meter, pruner = train(
        f"{job.detector}.yaml", data, budget, job.seed, tmp, options=options
    )
    timing = pruner.pruner.timing.summary() if pruner is not None else {}
    return [
        {
            **_base(job, ratio),
            **final_numbers(trainer, budget.imgsz),
            "prune_step": None if pruner is None else pruner.pruned_at,
            "total_steps": meter.batches,
            "train_macs": meter.macs,
            "wall_seconds": time.perf_counter() - start,
            "fired_by": None if pruner is None else pruner.pruner.fired_by,
            "timing": {k: timing[k] for k in ("distances", "confidences") if k in timing},
        }
    ]


def run_slimming(job: Job, data: Path, budget: Budget, tmp: Path) -> list[dict[str, Any]]:
    """One L1 run over the whole budget, then per ratio: prune on the final |γ|, fine-tune."""
    from forecastprune.engine.spec import PruneSpec
    from forecastprune.integrations.ultralytics import prune_ultralytics_checkpoint
    from forecastprune.integrations.ultralytics.finetune import PrunedDetectionTrainer

    start = time.perf_counter()
    store = tmp / "gammas.fpstore"
    options = {"forecaster": "naive", "prune_at": None, "sparsity": budget.sparsity}
    trainer, sparse, _ = train(
        f"{job.detector}.yaml",
        data,
        budget,
        job.seed,
        tmp / "l1",
        options={**options, "store_path": store},
    )
    last = Path(trainer.last)
    shared = time.perf_counter() - start
    records = []
    for ratio in job.ratios:
        began = time.perf_counter()
        pruned = prune_ultralytics_checkpoint(
            last,
            store,
            tmp / f"pruned-{ratio}.pt",
            forecaster="naive",
            cutoff=1.0,
            spec=PruneSpec(ratio=ratio, policy=POLICY),
            imgsz=budget.imgsz,
        )
        tuned, meter, _ = train(
            str(pruned.path),
            data,
            budget,
            job.seed,
            tmp / f"ft-{ratio}",
            epochs=budget.finetune_epochs,
            trainer=PrunedDetectionTrainer,
        )
        records.append(
            {
                **_base(job, ratio),
                **final_numbers(tuned, budget.imgsz),
                "prune_step": sparse.batches,
                "total_steps": sparse.batches + meter.batches,
                "train_macs": sparse.macs + meter.macs,
                # the shared L1 run counts in full for each ratio: each row is what it costs
                "wall_seconds": shared + time.perf_counter() - began,
                "fired_by": "fixed",
                "timing": {},
            }
        )
    return records


def run_one(job: Job, data: str, budget: Budget) -> list[dict[str, Any]]:
    """Train one job in this process and return its records."""
    import torch

    torch.set_num_threads(1)  # one core per run; parallelism comes from --jobs
    with tempfile.TemporaryDirectory(prefix="fp-yolo-") as tmp:
        run = run_slimming if job.variant.name == SLIMMING.name else run_plain
        return run(job, Path(data), budget, Path(tmp))


# ------------------------------------------------------------------------- the grid
def dataset(budget: Budget, cache: Path) -> Path:
    """The clutter set of this budget, generated once under ``cache``."""
    from forecastprune.integrations.ultralytics import make_clutter_dataset

    root = cache / (
        f"clutter-{budget.imgsz}px-{budget.n_train}-{budget.n_val}-seed{budget.data_seed}"
    )
    data = root / "data.yaml"
    if data.exists():
        return data
    partial = root.with_name(root.name + ".partial")
    if partial.exists():
        import shutil

        shutil.rmtree(partial)
    make_clutter_dataset(
        partial,
        n_train=budget.n_train,
        n_val=budget.n_val,
        imgsz=budget.imgsz,
        seed=budget.data_seed,
    )
    partial.rename(root)
    # data.yaml names its own directory: point it at the final place
    text = data.read_text(encoding="utf-8").replace(str(partial.resolve()), str(root.resolve()))
    data.write_text(text, encoding="utf-8")
    return data


def run_all(jobs: list[Job], workers: int, data: Path, budget: Budget, save: Any) -> None:
    """Run every job (in ``workers`` processes), calling ``save(records)`` after each."""
    start = time.perf_counter()
    if workers == 1:
        outputs: Any = (run_one(j, str(data), budget) for j in jobs)
    else:
        pool = ProcessPoolExecutor(max_workers=workers)
        futures = [pool.submit(run_one, j, str(data), budget) for j in jobs]
        outputs = (f.result() for f in as_completed(futures))
    for i, records in enumerate(outputs, 1):
        save(records)
        for r in records:
            print(
                f"[{i}/{len(jobs)}] {r['task']} {r['variant']:<26} r={r['ratio']} seed "
                f"{r['seed']}: mAP50-95 {r['accuracy']:.3f} mAP50 {r['map50']:.3f}, prune "
                f"{r['prune_step']}/{r['total_steps']}, {r['params'] / 1e6:.2f} M params, "
                f"{r['wall_seconds']:.0f} s ({time.perf_counter() - start:.0f} s total)",
                flush=True,
            )


def _key(record: dict[str, Any]) -> tuple[Any, ...]:
    return (record["task"], record["variant"], record["seed"], record["ratio"])


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--detectors", default=None, help="comma-separated (default: both; --quick: yolov8n)"
    )
    parser.add_argument(
        "--seeds", default=None, help="comma-separated seeds (default 0,1,2; --quick: 0,1)"
    )
    parser.add_argument("--ratios", default=",".join(map(str, RATIOS)))
    parser.add_argument(
        "--variants", default=None, help="comma-separated variant names (default: all)"
    )
    parser.add_argument("--jobs", type=int, default=1, help="runs in parallel processes")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: yolov8n, ratio 0.5, 2 seeds, 256 images, 5 epochs",
    )
    parser.add_argument("--epochs", type=int, help="override the budget's epochs")
    parser.add_argument("--n-train", type=int, help="override the budget's training images")
    parser.add_argument("--resume", action="store_true", help="keep the saved runs, do the rest")
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="the report (default docs/results-yolo.md; --quick: a file in the temp directory)",
    )
    parser.add_argument("--data-cache", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--render-only", action="store_true")
    parser.add_argument(
        "--max-jobs", type=int, default=None, help="stop after this many jobs (a resumable chunk)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from yolo_report import write_report

    args = parse(argv)
    if args.out is None:
        quick = Path(tempfile.gettempdir()) / "results-yolo-quick.md"
        args.out = quick if args.quick else REPO / "docs" / "results-yolo.md"
    from evidence_report import runs_path, saved_runs

    raw = runs_path(args.out)
    saved = saved_runs(args.out)
    if args.render_only:
        if saved is None:
            print(f"Error: --render-only needs the saved runs in {raw}", file=sys.stderr)
            return 2
        write_report(saved, args.out)
        return 0
    budget = QUICK if args.quick else FULL
    if args.epochs:
        budget = replace(budget, epochs=args.epochs, finetune_epochs=max(1, args.epochs // 2))
    if args.n_train:
        budget = replace(budget, n_train=args.n_train, n_val=max(16, args.n_train // 4))
    detectors = tuple(
        (args.detectors or ("yolov8n" if args.quick else ",".join(DETECTORS))).split(",")
    )
    if set(detectors) - set(DETECTORS):
        print(
            f"Error: unknown detectors {detectors}; expected some of {DETECTORS}", file=sys.stderr
        )
        return 2
    ratios = (0.5,) if args.quick else tuple(float(r) for r in args.ratios.split(","))
    seeds = [int(s) for s in (args.seeds or ("0,1" if args.quick else "0,1,2")).split(",")]
    names = tuple(args.variants.split(",")) if args.variants else VARIANT_NAMES
    unknown = sorted(set(names) - set(VARIANT_NAMES))
    if unknown:
        print(
            f"Error: unknown variants {unknown}; expected some of {VARIANT_NAMES}", file=sys.stderr
        )
        return 2
    meta: dict[str, Any] = {
        "budget": asdict(budget),
        "quick": args.quick,
        "jobs": args.jobs,
        "grids": [
            {"task": d, "ratios": list(ratios), "policies": [POLICY], "epochs": budget.epochs}
            for d in DETECTORS
            if d in detectors or (saved and any(r["task"] == d for r in saved["results"]))
        ],
        "seeds": seeds,
        "variants": list(names),
        "seconds": 0.0,
        "results": [],
    }
    if args.resume and saved is not None:
        if saved["budget"] != meta["budget"]:
            print(
                f"Error: {raw} holds runs of another budget; resume needs the same one",
                file=sys.stderr,
            )
            return 2
        meta["results"], meta["seconds"] = saved["results"], saved["seconds"]
        meta["seeds"] = sorted(set(saved["seeds"]) | set(seeds))
        asked = set(names) | set(saved.get("variants", VARIANT_NAMES))
        meta["variants"] = [v for v in VARIANT_NAMES if v in asked]
    done = {_key(r) for r in meta["results"]}
    todo = [j for j in jobs_for(detectors, seeds, ratios, names) if set(j.keys) - done]
    if args.max_jobs is not None:
        todo = todo[: args.max_jobs]
    print(f"{len(todo)} jobs to do ({len(done)} runs saved)", flush=True)
    data = dataset(budget, args.data_cache)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    start, before = time.perf_counter(), meta["seconds"]

    def save(records: list[dict[str, Any]]) -> None:
        from forecastprune._util import atomic_write_bytes

        keys = {_key(r) for r in records}
        meta["results"] = [r for r in meta["results"] if _key(r) not in keys] + records
        meta["seconds"] = before + time.perf_counter() - start
        atomic_write_bytes(raw, json.dumps(meta, indent=0).encode("utf-8"))

    run_all(todo, max(1, args.jobs), data, budget, save)
    write_report(meta, args.out)
    print(f"wrote {args.out}: {len(meta['results'])} runs, {meta['seconds'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
