"""Record → compare → prune early → fine-tune, for a YOLOv8n trained with ultralytics.

Needs the ultralytics extra (``pip install "forecastprune[ultralytics]"``). Everything runs
offline on a detection dataset drawn on the spot (coloured shapes on noise, YOLO format)::

    python examples/ultralytics_yolov8.py --out runs/yolov8-example   # 10-20 min on 2 CPU cores

1. **Record**: sparse-train yolov8n (L1 on every BN γ) for the whole budget while recording γ.
2. **Compare**: replay forecasters on that store — which one, seeing only the first 10-50 % of
   the run, predicts the channels the finished run would prune? (``forecastprune compare
   --store OUT/gammas.fpstore`` prints the same table.)
3. **Prune the finished run** with its own store, as network slimming would, to see what the
   cut costs before any fine-tuning.
4. **Prune early**: train again from scratch; at the chosen point the forecast prunes the
   model, and the remaining epochs train the smaller model normally (the fine-tune).
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import torch

from forecastprune.compare import ReplaySettings
from forecastprune.compare.replay import replay
from forecastprune.compare.report import format_table
from forecastprune.engine import PruneSpec
from forecastprune.engine.stats import count_macs, count_params
from forecastprune.integrations.ultralytics import (
    attach,
    make_shapes_dataset,
    offline,
    prune_ultralytics_checkpoint,
)
from forecastprune.store import GammaTrajectoryStore

FORECASTERS = ["sma", "linear", "arima(p=2,d=1,q=1)"]
CUTOFFS = (0.1, 0.2, 0.3, 0.5)
MAP = "metrics/mAP50-95(B)"


def train(data: Path, out: Path, name: str, epochs: int, **pruner_options):
    """One ultralytics run with the pruner attached.

    Returns:
        (pruner, run folder, per-epoch mAP50-95, wall seconds)
    """
    from ultralytics import YOLO

    model = YOLO("yolov8n.yaml")
    pruner = attach(model, **pruner_options)
    start = time.perf_counter()
    model.train(
        data=str(data),
        epochs=epochs,
        imgsz=64,
        batch=16,
        nbs=16,
        workers=0,
        plots=False,
        device="cpu",
        amp=False,
        project=str(out),
        name=name,
        exist_ok=True,
        seed=0,
        verbose=False,
    )
    seconds = time.perf_counter() - start
    run = Path(model.trainer.save_dir)
    return pruner, run, epoch_maps(run / "results.csv"), seconds


def measure(checkpoint: Path) -> tuple[int, int]:
    """Parameters and MACs per 64×64 image of a saved model."""
    from ultralytics import YOLO

    model = YOLO(str(checkpoint)).model.float().eval()
    return count_params(model), count_macs(model, torch.zeros(1, 3, 64, 64))


def epoch_maps(results_csv: Path) -> list[float]:
    with results_csv.open() as handle:
        return [float(row[MAP]) for row in csv.DictReader(handle)]


def choose(result, ratio: float, good_iou: float) -> tuple[str, float]:
    """The earliest cutoff whose best forecaster reaches ``good_iou`` (else the latest)."""
    for cutoff in result.cutoffs:
        best = result.best(cutoff, ratio)
        rows = [r for r in result.rows_for(ratio, cutoff) if r.forecaster == best]
        if best is not None and rows and rows[0].iou >= good_iou:
            return best, cutoff.fraction
    last = result.cutoffs[-1]
    return result.best(last, ratio) or "sma", last.fraction


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/yolov8-example"))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--ratio", type=float, default=0.3)
    parser.add_argument("--sparsity", type=float, default=1e-3)
    args = parser.parse_args()
    # one spec for the replay, the end-of-run prune and the early prune: the same set each way
    spec = PruneSpec(ratio=args.ratio, policy="grouped")
    torch.set_num_threads(2)
    out = args.out.resolve()
    data = out / "data" / "data.yaml"
    if not data.exists():
        make_shapes_dataset(data.parent, n_train=256, n_val=64, imgsz=64)
    store_path = out / "gammas.fpstore"

    with offline():
        _, dense, dense_maps, dense_s = train(
            data,
            out,
            "record",
            args.epochs,
            prune_at=None,
            sparsity=args.sparsity,
            store_path=store_path,
            overwrite=True,
        )

        with GammaTrajectoryStore.open(store_path) as store:
            result = replay(store, FORECASTERS, ReplaySettings(cutoffs=CUTOFFS, spec=spec))
        print(format_table(result))
        forecaster, cutoff = choose(result, args.ratio, good_iou=0.8)
        print(f"\nchosen: {forecaster} at {cutoff:.0%} of the run")

        # network slimming's way: prune the finished run by its final |γ| (naive at the end)
        final = prune_ultralytics_checkpoint(
            dense / "weights" / "last.pt",
            store_path,
            out / "dense-pruned.pt",
            forecaster="naive",
            cutoff=1.0,
            spec=spec,
            overwrite=True,
        )
        from ultralytics import YOLO

        cut_map = (
            YOLO(str(final.path))
            .val(
                data=str(data),
                imgsz=64,
                batch=32,
                device="cpu",
                plots=False,
                verbose=False,
                project=str(out),
                name="val-dense-pruned",
                exist_ok=True,
            )
            .box.map
        )

        early, early_run, early_maps, early_s = train(
            data,
            out,
            "early",
            args.epochs,
            forecaster=forecaster,
            prune_at=cutoff,
            spec=spec,
            sparsity=args.sparsity,
            store_path=out / "early.fpstore",
            overwrite=True,
        )
        rows = [
            (
                f"dense, sparse-trained {args.epochs} epochs",
                dense / "weights" / "last.pt",
                dense_maps[-1],
                f"{dense_s:.0f} s",
            ),
            ("the same, pruned at the end (no fine-tune)", final.path, cut_map, "-"),
            (
                f"pruned early ({forecaster}, update {early.pruned_at} of {early.updates}), "
                "then trained",
                early_run / "weights" / "last.pt",
                early_maps[-1],
                f"{early_s:.0f} s",
            ),
        ]
        table = [(label, *measure(path), value, seconds) for label, path, value, seconds in rows]

    print("\n| model | params | MACs / 64² image | mAP50-95 | training wall time |")
    print("|---|---|---|---|---|")
    for label, params, macs, value, seconds in table:
        print(f"| {label} | {params:,} | {macs:,} | {value:.3f} | {seconds} |")
    # validation runs at each epoch's end: epoch e's (0-based) is the first after the prune
    e = max(i for i, start in enumerate(early.update_plan.epoch_starts) if start <= early.pruned_at)
    before = f"{early_maps[e - 1]:.3f}" if e else "none (pruned in the first epoch)"
    print(
        f"\nearly run mAP50-95: epoch {e} (before the prune) {before}, epoch {e + 1} (after) "
        f"{early_maps[e]:.3f}, final {early_maps[-1]:.3f}"
    )


if __name__ == "__main__":
    main()
