"""Benchmark the recorder's overhead on a real sparse-training loop (target: ≤ 1 %).

The ResNet-style demo model trains on digits (SGD + BNSparsity) in blocks of ``--steps``
iterations; blocks alternate between the plain loop and the same loop plus
``GammaRecorder.step`` recording every iteration into an on-disk store. Interleaving (and
swapping the order every repeat) spreads machine noise evenly over both variants. Prints the
per-step wall and CPU times side by side (CPU time is that of the whole process, so it
includes the recorder's background writer thread, and is less disturbed than wall time by other
load on a shared machine), their overhead ratios, and the wall time spent inside
``recorder.step`` itself.

    python benchmarks/bench_recorder.py [--repeats 20] [--steps 50] [--batch 64] [--threads 1]

Each recorded block ends with ``recorder.flush()`` so the background writer's work (store
appends, one segment write + fsync per block: ``flush_every = --steps``) is charged to the block
that caused it rather than spilling into the next one.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from forecastprune.record.recorder import GammaRecorder
from forecastprune.record.sparsity import BNSparsity
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

    def block(self, steps: int, recorder: GammaRecorder | None) -> tuple[float, float, float]:
        """Run ``steps`` iterations; return wall seconds, process CPU seconds, and wall
        seconds inside ``recorder.step``."""
        in_recorder = 0.0
        start, cpu_start = time.perf_counter(), time.process_time()
        for _ in range(steps):
            self.iteration += 1
            first = (self.iteration * self.batch) % (len(self.x) - self.batch)
            x, y = self.x[first : first + self.batch], self.y[first : first + self.batch]
            self.optimizer.zero_grad()
            nn.functional.cross_entropy(self.model(x), y).backward()
            self.sparsity.apply(self.iteration)
            self.optimizer.step()
            if recorder is not None:
                tick = time.perf_counter()
                recorder.step(self.iteration)
                in_recorder += time.perf_counter() - tick
        if recorder is not None:
            recorder.flush()  # charge the writer's pending work to this block
        return time.perf_counter() - start, time.process_time() - cpu_start, in_recorder


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    loop = Loop(args.model, args.batch)
    loop.block(args.steps, None)  # warm-up: allocator, kernels, first-call imports
    times: dict[str, list[float]] = {
        k: [] for k in ("plain", "rec", "plain_cpu", "rec_cpu", "inside")
    }
    with tempfile.TemporaryDirectory() as tmp:
        recorder = GammaRecorder(
            loop.model,
            Path(tmp) / "gammas",
            every=1,
            optimizer=loop.optimizer,
            flush_every=args.steps,
        )
        recorder.step(0)  # the initial γ, as in real use; creates the store outside the timing
        for repeat in range(args.repeats):
            order = (None, recorder) if repeat % 2 == 0 else (recorder, None)
            for variant in order:
                wall, cpu, in_recorder = loop.block(args.steps, variant)
                key = "plain" if variant is None else "rec"
                times[key].append(wall / args.steps)
                times[f"{key}_cpu"].append(cpu / args.steps)
                if variant is not None:
                    times["inside"].append(in_recorder / args.steps)
        recorder.flush()
        snapshots, channels = len(recorder.store), recorder.layout.total
        recorder.close()
    report(args, times, snapshots, channels)


def report(
    args: argparse.Namespace, times: dict[str, list[float]], snapshots: int, channels: int
) -> None:
    med = {key: statistics.median(values) for key, values in times.items()}
    print(
        f"model={args.model} batch={args.batch} threads={args.threads} "
        f"flush_every={args.steps} "
        f"repeats={args.repeats} x {args.steps} steps per variant; "
        f"{channels} channels, {snapshots} snapshots recorded"
    )
    print(f"{'variant':<28}{'wall ms/step':>14}{'ratio':>9}{'CPU ms/step':>14}{'ratio':>9}")
    for label, key in (("plain loop", "plain"), ("loop + recorder (every=1)", "rec")):
        print(
            f"{label:<28}{med[key] * 1e3:>14.3f}{med[key] / med['plain']:>9.4f}"
            f"{med[key + '_cpu'] * 1e3:>14.3f}{med[key + '_cpu'] / med['plain_cpu']:>9.4f}"
        )
    paired = statistics.median(r / p for r, p in zip(times["rec_cpu"], times["plain_cpu"]))
    own = med["inside"] / med["plain"]
    print(f"CPU overhead, median of paired block ratios: {paired - 1:+.2%}")
    print(
        f"wall time inside recorder.step: {med['inside'] * 1e6:.1f} us/step = {own:.2%} of a "
        f"plain step"
    )
    cpu_overhead = med["rec_cpu"] / med["plain_cpu"] - 1
    verdict = "meets" if cpu_overhead <= TARGET else "misses"
    print(f"CPU overhead {cpu_overhead:+.2%}: {verdict} the {TARGET:.0%} target")


if __name__ == "__main__":
    main()
