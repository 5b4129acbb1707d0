"""Benchmark the recorder's overhead on a real sparse-training loop (target: ≤ 1 %).

The ResNet-style demo model trains on digits (SGD + BNSparsity) in blocks of ``--steps``
iterations; blocks alternate between the plain loop and the same loop plus
``GammaRecorder.step`` recording every iteration into an on-disk store. Interleaving (and
swapping the order every repeat) spreads machine noise evenly over both variants. Prints the
per-step times side by side, the overhead ratio of the medians, and — less noisy — the time of
``recorder.step`` itself measured inside the recorded blocks.

    python benchmarks/bench_recorder.py [--repeats 20] [--steps 50] [--batch 64] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from forecastprune.recorder import GammaRecorder
from forecastprune.sparsity import BNSparsity
from forecastprune.zoo import build_model, load_digits_split

TARGET = 0.01


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--steps", type=int, default=50, help="iterations per timed block")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    return parser.parse_args()


class Loop:
    """One model, optimizer and data stream shared by both variants."""

    def __init__(self, model_name: str, batch: int) -> None:
        torch.manual_seed(0)
        self.model = build_model(model_name)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.05, momentum=0.9)
        self.sparsity = BNSparsity(self.model, 5e-3)
        data = load_digits_split()
        self.x, self.y = data.x_train, data.y_train
        self.batch = batch
        self.iteration = 0

    def block(self, steps: int, recorder: GammaRecorder | None) -> tuple[float, float]:
        """Run ``steps`` iterations; return (total seconds, seconds inside recorder.step)."""
        in_recorder = 0.0
        start = time.perf_counter()
        for _ in range(steps):
            self.iteration += 1
            first = (self.iteration * self.batch) % (len(self.x) - self.batch)
            x, y = self.x[first: first + self.batch], self.y[first: first + self.batch]
            self.optimizer.zero_grad()
            nn.functional.cross_entropy(self.model(x), y).backward()
            self.sparsity.apply(self.iteration)
            self.optimizer.step()
            if recorder is not None:
                tick = time.perf_counter()
                recorder.step(self.iteration)
                in_recorder += time.perf_counter() - tick
        return time.perf_counter() - start, in_recorder


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    loop = Loop(args.model, args.batch)
    loop.block(args.steps, None)  # warm-up: allocator, kernels, first-call imports
    plain, recorded, inside = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        recorder = GammaRecorder(loop.model, Path(tmp) / "gammas", every=1,
                                 optimizer=loop.optimizer)
        for repeat in range(args.repeats):
            order = (None, recorder) if repeat % 2 == 0 else (recorder, None)
            for variant in order:
                seconds, in_recorder = loop.block(args.steps, variant)
                if variant is None:
                    plain.append(seconds / args.steps)
                else:
                    recorded.append(seconds / args.steps)
                    inside.append(in_recorder / args.steps)
        recorder.flush()
        snapshots, channels = len(recorder.store), recorder.layout.total
        recorder.close()
    report(args, plain, recorded, inside, snapshots, channels)


def report(args, plain, recorded, inside, snapshots, channels) -> None:
    base, rec, own = (statistics.median(v) for v in (plain, recorded, inside))
    print(f"model={args.model} batch={args.batch} threads={args.threads} "
          f"repeats={args.repeats} x {args.steps} steps per variant; "
          f"{channels} channels, {snapshots} snapshots recorded")
    print(f"{'variant':<28}{'median ms/step':>16}{'ratio':>10}")
    print(f"{'plain loop':<28}{base * 1e3:>16.3f}{1.0:>10.4f}")
    print(f"{'loop + recorder (every=1)':<28}{rec * 1e3:>16.3f}{rec / base:>10.4f}")
    paired = statistics.median(r / p for r, p in zip(recorded, plain))
    print(f"overhead, ratio of medians:        {rec / base - 1:+.2%}")
    print(f"overhead, median of paired ratios: {paired - 1:+.2%}")
    verdict = "meets" if own / base <= TARGET else "misses"
    print(f"recorder.step itself: {own * 1e6:.1f} us/step = {own / base:.2%} of a plain step "
          f"({verdict} the {TARGET:.0%} target)")


if __name__ == "__main__":
    main()
