"""Does physical pruning pay off in measured CPU latency as much as it does in MACs?

For each demo model (VGG, ResNet, Darknet on digits) and YOLOv3, half of the prunable channels
are pruned under both policies (``seed`` and ``grouped``; random scores, seeded), once with
the kept counts as they fall (``round_to=1``) and once rounded up to multiples of 8
(``round_to=8``, the recommended setting for CPU deployment: the widths vectorised kernels handle
without remainder loops). The script prints, per model × threads × runtime × policy × round_to:

* the MAC reduction  (conv/linear MACs before / after),
* the measured latency speedup (median forward latency before / after),
* their ratio, and whether it meets the target: latency speedup ≥ 0.8 × MAC reduction.

Measurement conditions (all reported, none dropped):

* inputs: the digits models on a deployment-like batch of 256 digits images upscaled ×2 to
  16×16 (``load_digits_split(upscale=2)`` trains on exactly these; at 8×8 the tiny feature maps
  make per-layer fixed costs a large share), YOLOv3 on one 416×416 image;
* ``torch.inference_mode``, 2 untimed warm-up passes, the original and its 4 pruned versions
  timed interleaved with a rotating order (``measure_latencies``); a model's latency is the
  fastest of its passes (``statistic="min"``; ``--statistic median`` for the median): on a shared
  machine other processes only ever add time, and medians of the same model moved by 2× between
  runs here while minima stayed put; 15 passes per digits model, 5 per YOLOv3 model;
* 1 and 2 intra-op threads;
* three runtimes: ``eager`` (NCHW, the model as it is), ``channels_last`` (NHWC memory format,
  which oneDNN convolutions prefer) and ``frozen`` (TorchScript trace → freeze →
  ``optimize_for_inference``: BN folded into the convolutions, as a deployed model runs).

Why some rows stay below 0.8 (checked, not guessed; 1 thread, batch 256 at 16×16):

* the surgery is not the cause: pruned weights and buffers are contiguous, no parameter or op is
  added (compensation goes into existing BN/bias terms; ``tests/test_stats.py`` checks both),
  and a pruned VGG runs as fast as a freshly built VGG of the same widths;
* MACs fall quadratically when both sides of a conv shrink (``seed`` at 50 % removes ~75 % of a
  plain chain's MACs, ``grouped`` on ResNet/Darknet removes 80–83 % as the residual widths shrink
  too) while pooling, BN, activations, residual adds and concatenations fall only linearly and
  are memory-bound. In eager NCHW VGG, ``max_pool2d`` alone is 31 % of the original's time and
  42 % of the pruned one's (torch profiler); ``channels_last`` pools far faster, which is why it
  is VGG's best runtime;
* the convolutions themselves do not speed up in proportion at narrow widths: VGG's conv time
  fell 2.4× for 4× fewer MACs, ResNet-grouped's 2.2× for 5.9× (oneDNN blocks channels by 8/16,
  and the 1-channel stem cannot be pruned), so rows with the largest MAC reductions
  (``grouped/1``) have the lowest ratios; ``round_to=8`` removes fewer MACs but keeps the
  kernels efficient and is the setting whose rows most often meet 0.8;
* ``frozen`` folds BN into the convs and speeds up the original most, but its pruned VGGs all
  land on the same time whatever their widths (14.1–14.2 ms on 1 thread), capping its ratios;
* 2 threads on this 2-core machine shared with other jobs is at the mercy of their load (the
  original sometimes runs slower with 2 threads than with 1); the minimum over passes keeps
  identical models (VGG ``seed``/``grouped`` are the same cut) within a few % of each other.

Measured here (torch 2.13 CPU, 2-core machine shared with other jobs, defaults, 311 s): 37 of
96 rows meet 0.8. YOLOv3, the one deployment-sized model: 17/24, with ``round_to=8`` 11/12
(ratios 0.78–0.98; ``seed`` 0.87–0.98 everywhere, ``grouped/8`` 0.82–0.91 except eager on 2
threads, 0.78); with ``round_to=1`` ``seed`` meets it (0.85–0.94) and ``grouped`` does not
(0.63–0.78, the 5.4× MAC cuts). The digits models meet it in 20/72 rows, 17 of them with
``round_to=8`` (VGG best 1.08 channels_last, ResNet ``seed/8`` 0.81–1.11 in all six, Darknet up
to 1.08); on ResNet and Darknet ``grouped/1`` never does (0.27–0.49; 4.9–5.9× MAC cuts).
Recommended for CPU deployment: ``round_to=8``, ``channels_last``.

Run: ``python benchmarks/bench_engine.py [--repeats 15] [--statistic min] [--threads 1,2]
[--runtimes eager,channels_last,frozen] [--models vgg,yolov3]``.
"""

from __future__ import annotations

import argparse
import copy
import time
import warnings

import numpy as np
import torch
from torch import nn

from forecastprune.engine import (
    PruneSpec,
    count_macs,
    measure_latencies,
    plan_channels,
    prune_model,
    select_channels,
)
from forecastprune.zoo import build_model

#: model -> (input shape timed, input shape traced for the plan and the surgery)
MODELS = {
    "vgg": ((256, 1, 16, 16), (2, 1, 16, 16)),
    "resnet": ((256, 1, 16, 16), (2, 1, 16, 16)),
    "darknet": ((256, 1, 16, 16), (2, 1, 16, 16)),
    "yolov3": ((1, 3, 416, 416), (1, 3, 64, 64)),
}
#: timed passes per model (a YOLOv3 pass takes ~50× a digits batch's)
REPEATS = {"vgg": 15, "resnet": 15, "darknet": 15, "yolov3": 5}
#: (policy, round_to): kept counts as they fall, and rounded up to multiples of 8
VARIANTS = (("seed", 1), ("grouped", 1), ("seed", 8), ("grouped", 8))
RUNTIMES = ("eager", "channels_last", "frozen")
TARGET = 0.8


def prune_half(model: nn.Module, trace: torch.Tensor, policy: str, round_to: int) -> nn.Module:
    """Half of the prunable channels pruned under ``policy`` (random, seeded scores)."""
    plan = plan_channels(model, trace, policy=policy)
    scores = np.random.default_rng(0).random(plan.layout.total)
    decision = select_channels(scores, plan, PruneSpec(ratio=0.5, round_to=round_to))
    return prune_model(model, decision, trace, plan).eval()


def deploy(model: nn.Module, example: torch.Tensor, runtime: str) -> tuple[nn.Module, torch.Tensor]:
    """A copy of ``model`` and the input, prepared for ``runtime`` (the model is not touched)."""
    model = copy.deepcopy(model).eval()
    if runtime == "eager":
        return model, example
    if runtime == "channels_last":
        example = example.contiguous(memory_format=torch.channels_last)
        return model.to(memory_format=torch.channels_last), example
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript's deprecation notice, once per model
        frozen = torch.jit.freeze(torch.jit.trace(model, example))
        return torch.jit.optimize_for_inference(frozen), example


def bench(
    name: str, threads: list[int], runtimes: list[str], repeats: int | None, statistic: str
) -> list[tuple]:
    """Rows ``(model, threads, runtime, variant, MAC red., speedup, ms before, ms after)``."""
    timed_shape, trace_shape = MODELS[name]
    torch.manual_seed(0)
    model = build_model(name).eval()
    trace, timed = torch.randn(trace_shape), torch.randn(timed_shape)
    models = [model, *(prune_half(model, trace, *variant) for variant in VARIANTS)]
    macs = [count_macs(m, timed) for m in models]
    rows = []
    for n_threads in threads:
        torch.set_num_threads(n_threads)
        for runtime in runtimes:
            prepared = [deploy(m, timed, runtime) for m in models]
            latency = measure_latencies(
                [m for m, _ in prepared],
                prepared[0][1],
                repeats=repeats or REPEATS[name],
                warmup=2,
                statistic=statistic,
            )
            rows += [
                (
                    name,
                    n_threads,
                    runtime,
                    f"{policy}/{round_to}",
                    macs[0] / macs[i],
                    latency[0] / latency[i],
                    latency[0],
                    latency[i],
                )
                for i, (policy, round_to) in enumerate(VARIANTS, start=1)
            ]
            del prepared
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed passes per model (default: 15 digits models, 5 YOLOv3)",
    )
    parser.add_argument(
        "--statistic",
        choices=("min", "median"),
        default="min",
        help="how a model's timed passes are summarised",
    )
    parser.add_argument("--threads", default="1,2", help="comma-separated intra-op thread counts")
    parser.add_argument("--runtimes", default=",".join(RUNTIMES), help="comma-separated runtimes")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated models")
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    runtimes = args.runtimes.split(",")
    unknown = sorted(set(runtimes) - set(RUNTIMES)) + sorted(
        set(args.models.split(",")) - set(MODELS)
    )
    if unknown:
        parser.error(f"unknown runtime/model {unknown}; choose from {RUNTIMES} and {tuple(MODELS)}")
    print(
        f"torch {torch.__version__}; {args.statistic} of {args.repeats or 'default'} "
        f"interleaved passes after 2 warm-ups; 50 % of prunable channels pruned; "
        f"digits models: batch 256 at 16x16, yolov3: 1 image at 416x416"
    )
    header = (
        "model",
        "thr",
        "runtime",
        "policy/round",
        "MAC red.",
        "speedup",
        "ratio",
        "before ms",
        "after ms",
        f">={TARGET}",
    )
    widths = (8, 3, 13, 12, 9, 9, 6, 10, 10, 6)
    print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    start, met, total = time.perf_counter(), 0, 0
    for name in args.models.split(","):
        for model, thr, runtime, variant, mac_red, speedup, before, after in bench(
            name, threads, runtimes, args.repeats, args.statistic
        ):
            ratio = speedup / mac_red
            met, total = met + (ratio >= TARGET), total + 1
            cells = (
                model,
                str(thr),
                runtime,
                variant,
                f"{mac_red:.2f}x",
                f"{speedup:.2f}x",
                f"{ratio:.2f}",
                f"{1e3 * before:.2f}",
                f"{1e3 * after:.2f}",
                "yes" if ratio >= TARGET else "NO",
            )
            print("  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True)), flush=True)
    print(
        f"{met}/{total} rows meet speedup >= {TARGET} x MAC reduction; "
        f"total {time.perf_counter() - start:.1f} s"
    )


if __name__ == "__main__":
    main()
