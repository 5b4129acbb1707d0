"""Does physical pruning pay off in measured CPU latency as much as it does in MACs?

For each demo model (VGG, ResNet, Darknet on digits) and YOLOv3, half of the prunable channels
are pruned under both policies (``seed`` and ``grouped``; random scores, seeded), once with
the kept counts as they fall and once rounded up to multiples of 8 (``round_to=8``), and the
script prints, side by side:

* the MAC reduction  (MACs before / MACs after),
* the measured latency speedup (median eval-mode forward latency before / after, the models
  timed interleaved so machine load drifts hit all of them alike),
* their ratio — the target is a latency speedup of at least 0.8 × the MAC reduction.

The digits models are tiny, so they are timed on a batch of 256 images (one 8×8 image would
measure Python overhead, not compute); YOLOv3 on one 416×416 image.

Run: ``python benchmarks/bench_engine.py [--repeats 7] [--threads N] [--models vgg,yolov3]``
(on a shared machine ``--threads 1`` gives far steadier figures).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from forecastprune.engine import (
    count_macs,
    measure_latencies,
    plan_channels,
    prune_model,
    select_channels,
)
from forecastprune.zoo import build_model

#: model -> (input shape timed, input shape traced for the plan and the surgery)
MODELS = {
    "vgg": ((256, 1, 8, 8), (2, 1, 8, 8)),
    "resnet": ((256, 1, 8, 8), (2, 1, 8, 8)),
    "darknet": ((256, 1, 8, 8), (2, 1, 8, 8)),
    "yolov3": ((1, 3, 416, 416), (1, 3, 64, 64)),
}
#: (policy, round_to): kept counts as they fall, and rounded up to multiples of 8 (the widths
#: CPU kernels vectorise best)
VARIANTS = (("seed", 1), ("grouped", 1), ("seed", 8), ("grouped", 8))
TARGET = 0.8


def prune_half(model: torch.nn.Module, trace: torch.Tensor, policy: str, round_to: int
               ) -> torch.nn.Module:
    """Half of the prunable channels pruned under ``policy`` (random, seeded scores)."""
    plan = plan_channels(model, trace, policy=policy)
    scores = np.random.default_rng(0).random(plan.layout.total)
    decision = select_channels(scores, plan.layout, ratio=0.5, prunable=plan.prunable,
                               groups=plan.groups, round_to=round_to)
    return prune_model(model, decision, trace, plan)


def bench(name: str, repeats: int) -> list[tuple]:
    """Rows ``(model, policy/round_to, MAC red., speedup, ms before, ms after)`` of a model."""
    timed_shape, trace_shape = MODELS[name]
    torch.manual_seed(0)
    model = build_model(name).eval()
    trace, timed = torch.randn(trace_shape), torch.randn(timed_shape)
    pruned = [prune_half(model, trace, *variant).eval() for variant in VARIANTS]
    macs = [count_macs(m, timed) for m in [model, *pruned]]
    latency = measure_latencies([model, *pruned], timed, repeats=repeats, warmup=2)
    return [(name, f"{policy}/{round_to}", macs[0] / macs[i + 1], latency[0] / latency[i + 1],
             latency[0], latency[i + 1]) for i, (policy, round_to) in enumerate(VARIANTS)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed passes per model")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated models")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{args.repeats} interleaved repeats, 50 % of prunable channels pruned")
    header = ("model", "policy/round", "MAC reduction", "latency speedup", "speedup / MAC red.",
              "before ms", "after ms", f">= {TARGET}")
    print("  ".join(f"{h:>18}" if i > 1 else f"{h:<12}" for i, h in enumerate(header)))
    start = time.perf_counter()
    for name in args.models.split(","):
        for model, policy, mac_red, speedup, before, after in bench(name, args.repeats):
            ratio = speedup / mac_red
            cells = [f"{model:<12}", f"{policy:<12}", f"{mac_red:>17.2f}x", f"{speedup:>17.2f}x",
                     f"{ratio:>18.2f}", f"{1e3 * before:>18.2f}", f"{1e3 * after:>18.2f}",
                     f"{'yes' if ratio >= TARGET else 'NO':>18}"]
            print("  ".join(cells), flush=True)
    print(f"total {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
