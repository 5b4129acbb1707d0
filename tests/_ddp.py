"""Run a function on two real DDP ranks (gloo, CPU) from a test."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

WORLD = 2


def init_rank(rank: int, out: str) -> None:
    """Join the process group. A file rendezvous in the test's own folder, not a TCP port:
    no port can be taken by another process between choosing and binding it."""
    torch.set_num_threads(1)
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    dist.init_process_group(
        "gloo", init_method=f"file://{Path(out) / 'rendezvous'}", rank=rank, world_size=WORLD
    )


def run_ranks(
    worker: Callable[[int, str], None], out: Path, preload: Sequence[str], timeout: float = 120.0
) -> None:
    """Run ``worker(rank, str(out))`` on every rank and wait for all of them.

    Fresh processes (never fork one whose OpenMP pool is live), forked from a forkserver that
    imports ``preload`` once instead of once per rank, which halves the CPU on a 2-core machine.
    """
    mp.get_context("forkserver").set_forkserver_preload(["torch._dynamo", *preload])
    context = mp.start_processes(
        worker, args=(str(out),), nprocs=WORLD, join=False, start_method="forkserver"
    )
    deadline = time.monotonic() + timeout
    while not context.join(timeout=1.0):
        if time.monotonic() > deadline:
            for process in context.processes:
                process.terminate()
            raise TimeoutError(f"the {WORLD} DDP ranks did not finish within {timeout} s")
