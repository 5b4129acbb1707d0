"""Depth vs width on CPU latency: channel-only, blocks-only and both, at matched MACs.

For each model (ultralytics yolov5nu, yolov8n, yolo11n, yolov3u built from their yaml;
torchvision resnet50; timm darknet53 — all without weights, BN statistics randomised, scores
random and seeded: the *shape* of the cut is measured, not its accuracy):

* **blocks** — a fraction ``f`` of the removable residual blocks (:func:`plan_blocks`), chosen
  by random scores, removed with :func:`prune_blocks`; its MACs are the target;
* **channels** — the ``grouped`` channel cut whose ratio is bisected until its MACs match the
  blocks-only model's (within 0.5 %, else the closest of 10 tries);
* **both** — ``f / 2`` of the blocks removed, then channels bisected to the same MACs.

``f`` is 0.5 and 1.0 (``--fractions``): half of the blocks, and every removable block. Channel
counts are kept as they fall (``--round-to 1``) or rounded up to multiples of 8
(``--round-to 8``, the CPU-friendly setting of ``bench_engine.py``).

Each row reports params, conv/linear MACs, fused CPU latency and the *latency/MAC ratio*:
(latency speedup) ÷ (MAC reduction), 1.0 meaning the latency falls as much as the MACs.
Latency follows ``bench_ultralytics.py``'s protocol: eval mode, 1 intra-op thread, one image,
the original and the three cut models timed interleaved, fastest of ``--repeats`` passes after
2 warm-ups, on *fused* models (BN folded into the convs as deployed: ultralytics' own
``fuse()`` for the detectors; for the others every conv whose output only its BN reads, found by
the channel tracer, absorbs that BN, and the BN becomes its activation or an Identity). Peak RSS
of the process is printed beside the table.

Input sizes: 320² for the detectors (640² does not fit the shared 2-core machine's time; the
structure and the MAC ratios are size independent), 224² for the classifiers. Plans and cuts are
made at 64², where tracing is cheap.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_blocks.py [--models ...] [--repeats 5]
[--json rows.json]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from forecastprune._torchvision_ops import ensure_torchvision_ops  # noqa: E402

ensure_torchvision_ops()

from forecastprune.engine.block_surgery import prune_blocks  # noqa: E402
from forecastprune.engine.blocks import plan_blocks  # noqa: E402
from forecastprune.engine.coupling import default_layout, plan_channels, traced_flow  # noqa: E402
from forecastprune.engine.spec import PruneSpec
from forecastprune.engine.stats import count_macs, count_params, measure_latencies  # noqa: E402
from forecastprune.engine.surgery import prune_model  # noqa: E402
from forecastprune.engine.threshold import select_channels  # noqa: E402

DETECTORS = ("yolov5nu", "yolov8n", "yolo11n", "yolov3u")
SMALL = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def build(name: str) -> tuple[nn.Module, int]:
    """The model (eval mode, random plausible BN statistics) and its timing input size."""
    if name in DETECTORS:
        from ultralytics.nn.tasks import DetectionModel

        model, size = DetectionModel(f"{name}.yaml", verbose=False), 320
    elif name == "resnet50":
        import torchvision

        model, size = torchvision.models.resnet50(), 224
    else:
        import timm

        model, size = timm.create_model(name, pretrained=False), 224
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                n = module.num_features
                module.weight.copy_(torch.rand(n, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(n, generator=gen) * 0.1)
                module.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
    return model.eval(), size


def remove_blocks(model: nn.Module, fraction: float, seed: int = 0) -> nn.Module:
    """A copy without ``fraction`` of the removable blocks, picked at random (seeded)."""
    plan = plan_blocks(model, SMALL)
    n = round(fraction * len(plan.blocks))
    chosen = np.random.default_rng(seed).permutation(len(plan.blocks))[:n]
    return prune_blocks(model, [plan.blocks[i].name for i in chosen], SMALL, plan)


def channels_to(
    model: nn.Module,
    target: float,
    x: torch.Tensor,
    round_to: int = 1,
) -> tuple[nn.Module, float]:
    """The grouped channel cut of ``model`` whose MACs (at ``x``) are closest to ``target``."""
    plan = plan_channels(model, SMALL, policy="grouped")
    scores = np.random.default_rng(0).random(plan.layout.total)
    low, high, best = 0.0, 0.95, (np.inf, model, 0.0)
    for _ in range(10):
        ratio = (low + high) / 2
        decision = select_channels(scores, plan, PruneSpec(ratio=ratio, round_to=round_to))
        cut = prune_model(model, decision, SMALL, plan)
        macs = count_macs(cut, x)
        if abs(macs - target) < best[0]:
            best = (abs(macs - target), cut, ratio)
        if abs(macs - target) < 0.005 * target:
            break
        low, high = (ratio, high) if macs > target else (low, ratio)
    return best[1], best[2]


def fuse(model: nn.Module, detector: bool) -> nn.Module:
    """A copy with BN folded into the conv before it (see the module docstring)."""
    model = copy.deepcopy(model)
    if detector:
        return model.fuse(verbose=False)
    flow = traced_flow(model, SMALL, default_layout(model))
    for conv_name, bn_name in flow.bn_after.items():
        conv, bn = model.get_submodule(conv_name), model.get_submodule(bn_name)
        if not isinstance(conv, nn.Conv2d):
            continue
        with torch.no_grad():
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
            conv.bias = nn.Parameter(bn.bias + (bias - bn.running_mean) * scale)
        parent, _, key = bn_name.rpartition(".")
        act = getattr(bn, "act", None)  # timm's BatchNormAct2d runs its activation inside
        model.get_submodule(parent)._modules[key] = act if act is not None else nn.Identity()
    return model


def rows_for(name: str, repeats: int, fractions: list[float], round_to: int) -> list[dict]:
    model, size = build(name)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(2))
    macs0, params0 = count_macs(model, x), count_params(model)
    variants: dict[tuple[float, str], tuple[nn.Module, float]] = {}
    for fraction in fractions:
        blocks = remove_blocks(model, fraction)
        target = count_macs(blocks, x)
        variants[fraction, "channels"] = channels_to(model, target, x, round_to)
        variants[fraction, "blocks"] = (blocks, 0.0)
        variants[fraction, "both"] = channels_to(
            remove_blocks(model, fraction / 2), target, x, round_to
        )
    detector = name in DETECTORS
    fused = [fuse(m, detector) for m in (model, *(v[0] for v in variants.values()))]
    # every cut is timed interleaved with the original, in one loop
    times = measure_latencies(fused, x, repeats=repeats, statistic="min")
    rows = []
    for ((fraction, kind), (cut, ratio)), seconds in zip(variants.items(), times[1:], strict=True):
        macs = count_macs(cut, x)
        rows.append(
            {
                "model": name,
                "size": size,
                "fraction": fraction,
                "kind": kind,
                "round_to": round_to,
                "channel_ratio": ratio,
                "blocks_removed": len(cut.forecastprune_surgery.blocks),
                "params0": params0,
                "params": count_params(cut),
                "macs0": macs0,
                "macs": macs,
                "ms0": 1e3 * times[0],
                "ms": 1e3 * seconds,
                "ratio": (times[0] / seconds) / (macs0 / macs),
            }
        )
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| model (input) | f | cut | blocks removed | channel ratio | params M | GMACs | "
        "MAC red. | fused ms | speedup | latency/MAC |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} ({r['size']}²) | {r['fraction']:g} | {r['kind']} | "
            f"{r['blocks_removed']} | "
            f"{r['channel_ratio']:.3f} | {r['params0'] / 1e6:.2f} → {r['params'] / 1e6:.2f} | "
            f"{r['macs0'] / 1e9:.2f} → {r['macs'] / 1e9:.2f} | {r['macs0'] / r['macs']:.2f}× | "
            f"{r['ms0']:.1f} → {r['ms']:.1f} | {r['ms0'] / r['ms']:.2f}× | {r['ratio']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="yolov5nu,yolov8n,yolo11n,yolov3u,resnet50,darknet53")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--fractions",
        default="0.5,1.0",
        help="fractions of the removable blocks the blocks-only cut removes",
    )
    parser.add_argument(
        "--round-to",
        type=int,
        default=1,
        help="kept channels per layer rounded up to a multiple of this (8 suits "
        "CPU kernels, see bench_engine.py)",
    )
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows: list[dict] = []
    for name in (n for n in args.models.split(",") if n):
        fractions = [float(f) for f in args.fractions.split(",")]
        rows += rows_for(name, args.repeats, fractions, args.round_to)
        print(f"{name} done", file=sys.stderr, flush=True)
    print(table(rows))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS {peak:.0f} MiB")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
