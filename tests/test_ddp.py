"""Two real DDP processes on gloo: only rank 0 records, and the L1 term is carried once."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from _ddp import WORLD, init_rank, run_ranks
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from forecastprune.record.recorder import GammaRecorder
from forecastprune.record.sparsity import BNSparsity
from forecastprune.store import GammaTrajectoryStore

pytestmark = pytest.mark.slow  # real training or several processes: seconds each

S = 1e-2
BN_NAMES = ["1", "4"]


def make_net() -> nn.Sequential:
    torch.manual_seed(0)  # every rank builds the same initial model
    net = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, padding=1),
        nn.BatchNorm2d(6),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 3),
    )
    with torch.no_grad():
        for name in BN_NAMES:
            net.get_submodule(name).weight.normal_()  # signed γ
    return net


def batch(rank: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(100 + rank)
    x = torch.randn(8, 1, 6, 6, generator=generator)
    return x, torch.randint(0, 3, (8,), generator=generator)


def data_grad(net: nn.Module, rank: int) -> list[torch.Tensor]:
    """The γ gradient of ``rank``'s batch alone, on a private copy of the model."""
    private = copy.deepcopy(net)
    x, y = batch(rank)
    nn.functional.cross_entropy(private(x), y).backward()
    return [private.get_submodule(n).weight.grad.clone() for n in BN_NAMES]


def sgd_step(model: nn.Module, lr: float) -> None:
    # plain SGD by hand: building a torch.optim optimizer costs each spawned rank seconds of
    # one-off imports, and the update rule is not what this test is about
    with torch.no_grad():
        for param in model.parameters():
            param.sub_(lr * param.grad)


def worker(rank: int, out: str) -> None:
    """One DDP rank: a sparse training step, recorded; saves its γ gradients for the parent."""
    init_rank(rank, out)
    try:
        net = make_net()
        # what every rank should end with: the rank-averaged data gradient + s·sign(γ), once
        grads = [data_grad(net, r) for r in range(WORLD)]
        signs = [torch.sign(net.get_submodule(n).weight.detach()) for n in BN_NAMES]
        wanted = [(g0 + g1) / WORLD + S * sign for g0, g1, sign in zip(*grads, signs)]
        model = DistributedDataParallel(net)
        recorder = GammaRecorder(model, Path(out) / f"store_rank{rank}")
        sparsity = BNSparsity(model, S)
        recorder.step(0)
        for step in (1, 2):
            x, y = batch(rank)
            model.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            sparsity.apply(step)
            if step == 1:
                got = [net.get_submodule(n).weight.grad.clone() for n in BN_NAMES]
            sgd_step(model, lr=0.1)
            recorder.step(step)
        recorder.close()
        torch.save(
            {
                "got": got,
                "wanted": wanted,
                "signs": signs,
                "gamma": torch.cat([net.get_submodule(n).weight.detach() for n in BN_NAMES]),
            },
            Path(out) / f"rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


def test_ddp_only_rank0_writes_and_l1_is_added_once(tmp_path):
    run_ranks(worker, tmp_path, [__name__])
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    for result in results:
        for got, wanted, sign in zip(result["got"], result["wanted"], result["signs"]):
            torch.testing.assert_close(got, wanted, rtol=0, atol=0)
            assert torch.all(sign != 0)  # so "once" is visible: twice would differ by s
    assert not (tmp_path / "store_rank1").exists()
    with GammaTrajectoryStore.open(tmp_path / "store_rank0") as store:
        np.testing.assert_array_equal(store.steps, [0, 1, 2])
        assert store.layout.names == tuple(BN_NAMES)  # plain names, no "module." prefix
        np.testing.assert_array_equal(store.final()[1], results[0]["gamma"].numpy())
    # DDP kept the ranks in sync, so rank 0's record stands for every rank
    torch.testing.assert_close(results[0]["gamma"], results[1]["gamma"], rtol=0, atol=0)
