"""Depth vs width in training: yolov8n on generated shapes, pruned early, mAP after one budget.

Every variant trains ``DetectionModel("yolov8n.yaml")`` (no weights) with ultralytics'
trainer on the same locally generated detection set (``make_shapes_dataset``: 3 classes of
filled shapes, 64² images), the same epochs, seed and recipe, with forecastprune's ``attach``:
BN-L1 (s = 1e-3) and γ recording until 30 % of the updates, then one early prune by the ``sma``
forecast and plain training to the end:

* ``dense`` — recorded and sparse-trained the whole run, never pruned (the reference);
* ``channels`` — the ``grouped`` channel cut at ``--channel-ratio`` (0.10 matches the MACs of
  removing every bottleneck in ``bench_blocks.py``);
* ``blocks`` — every removable bottleneck (6 in yolov8n) removed, no channels;
* ``both`` — half of the bottlenecks and half the channel ratio.

Printed per variant: params and MACs (64²) of the final model, mAP50 and mAP50-95 on the
validation split after the last epoch, wall time and peak RSS. One variant per process
(``--variant``), so a run stays short on a shared machine.

Run: ``OMP_NUM_THREADS=1 python benchmarks/train_blocks.py --variant blocks --epochs 20
--root /tmp/tb [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forecastprune.engine.block_rule import BlockSpec  # noqa: E402
from forecastprune.engine.stats import count_macs, count_params  # noqa: E402
from forecastprune.integrations.ultralytics import (  # noqa: E402
    attach,
    make_shapes_dataset,
    offline,
)

VARIANTS = ("dense", "channels", "blocks", "both")


def options(variant: str, channel_ratio: float) -> dict:
    """attach() options of one variant."""
    common = {"forecaster": "sma", "prune_at": 0.3, "sparsity": 1e-3, "policy": "grouped"}
    if variant == "dense":
        return {**common, "prune_at": None}
    if variant == "channels":
        return {**common, "ratio": channel_ratio}
    if variant == "blocks":
        return {**common, "ratio": 0.0, "blocks": BlockSpec(ratio=1.0)}
    return {**common, "ratio": channel_ratio / 2, "blocks": BlockSpec(ratio=0.5)}


def run(variant: str, epochs: int, root: Path, channel_ratio: float, seed: int) -> dict:
    data = root / "data" / "data.yaml"
    if not data.exists():
        data = make_shapes_dataset(root / "data", n_train=256, n_val=64, imgsz=64)
    start = time.perf_counter()
    with offline():
        from ultralytics import YOLO

        torch.manual_seed(seed)
        model = YOLO("yolov8n.yaml")
        pruner = attach(model, **options(variant, channel_ratio))
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
            seed=seed,
            deterministic=True,
            verbose=False,
            project=str(root / "runs"),
            name=f"{variant}-{seed}",
            exist_ok=True,
        )
    trainer = model.trainer
    final = trainer.ema.ema.float()
    x = torch.zeros(1, 3, 64, 64)
    metrics = trainer.metrics
    return {
        "variant": variant,
        "epochs": epochs,
        "seed": seed,
        "pruned_at": pruner.pruned_at,
        "blocks": (pruner.pruner.prune_info or {}).get("blocks", []) if pruner.pruner else [],
        "params": count_params(final),
        "macs": count_macs(final, x),
        "map50": float(metrics.get("metrics/mAP50(B)", float("nan"))),
        "map50_95": float(metrics.get("metrics/mAP50-95(B)", float("nan"))),
        "seconds": time.perf_counter() - start,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", choices=VARIANTS, required=True)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--channel-ratio", type=float, default=0.10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    row = run(args.variant, args.epochs, args.root, args.channel_ratio, args.seed)
    print(json.dumps(row))
    if args.json:
        args.json.write_text(json.dumps(row))


if __name__ == "__main__":
    main()
