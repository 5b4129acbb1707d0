"""EarlyPruner under real 2-process DDP on gloo: identical pruned models, one store writer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from _ddp import WORLD, init_rank, run_ranks
from torch import nn
from torch.nn.parallel import DistributedDataParallel

pytestmark = pytest.mark.slow  # real training or several processes: seconds each

STEPS, PRUNE_AT = 6, 3


def worker(rank: int, out: str) -> None:
    """One rank: sparse steps on its own data shard, prune at step 3, train on, save."""
    init_rank(rank, out)
    try:
        from forecastprune.pipeline import EarlyPruner
        from forecastprune.zoo import build_model, load_digits_split

        split = load_digits_split(seed=0)
        torch.manual_seed(0)  # the same initial model on every rank
        model: nn.Module = DistributedDataParallel(build_model("darknet", width=0.25))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        pruner = EarlyPruner(
            model,
            optimizer,
            forecaster="naive",
            prune_at=f"step:{PRUNE_AT}",
            total_steps=STEPS,
            example_inputs=split.x_train[:2],
            store_path=Path(out) / f"store_rank{rank}",
        )
        for step in range(1, STEPS + 1):
            # each rank trains on its own shard: only DDP's all-reduce keeps them equal
            i = (2 * step + rank) * 16
            x, y = split.x_train[i : i + 16], split.y_train[i : i + 16]
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            pruner.regularize(step - 1)
            optimizer.step()
            model, optimizer = pruner.step(step)
        torch.save(
            {
                "wrapped": isinstance(model, DistributedDataParallel),
                "pruned_at": pruner.pruned_at,
                "params": [name for name, _ in model.module.named_parameters()],
                "state": model.module.state_dict(),
            },
            Path(out) / f"rank{rank}.pt",
        )
    finally:
        dist.destroy_process_group()


def test_both_ranks_end_with_the_same_pruned_model_and_only_rank0_records(tmp_path) -> None:
    run_ranks(
        worker, tmp_path, ["torch.optim", "forecastprune.pipeline", "forecastprune.zoo", __name__]
    )
    results = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    for result in results:
        assert result["wrapped"] and result["pruned_at"] == PRUNE_AT
    states = [r["state"] for r in results]
    assert states[0].keys() == states[1].keys()
    for name in states[0]:
        assert states[0][name].shape == states[1][name].shape, name
    # weights are identical bit for bit: after the prune, only the re-wrapped DDP's all-reduce
    # keeps ranks that train on different shards together. (BN running statistics are not
    # compared: each rank updates them from its own batch and DDP re-broadcasts rank 0's at
    # the start of every forward pass.)
    for name in results[0]["params"]:
        assert torch.equal(states[0][name], states[1][name]), name
    # the model really is smaller than the dense one (widths 4/8/16/8 → fewer channels)
    from forecastprune.zoo import build_model

    dense = build_model("darknet", width=0.25).state_dict()
    assert sum(t.numel() for t in states[0].values()) < sum(t.numel() for t in dense.values())
    from forecastprune.store import GammaTrajectoryStore

    with GammaTrajectoryStore.open(tmp_path / "store_rank0") as store:
        assert store.steps.tolist() == [1, 2, 3]
    assert not (tmp_path / "store_rank1").exists()
