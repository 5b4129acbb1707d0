"""Run one configured method end to end: data, model, optimizer, schedule, training, figures.

Shared by ``forecastprune train`` and ``benchmarks/early_prune_table.py`` so the CLI and the
evidence table train exactly the same way. Under ``torchrun`` (an initialised process group)
the model is wrapped in ``DistributedDataParallel`` and every rank trains on its own shard of
each epoch (``DistributedSampler``); only rank 0 records γ and writes outputs.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, Subset

from .. import _util
from .._util import atomic_write_bytes
from .methods import MethodRun, run_method
from .train_config import TrainConfig
from .trainer import Callback, Trainer


def run_config(
    config: TrainConfig,
    store_path: str | Path | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> MethodRun:
    """Train one method as ``config`` says and measure it.

    Args:
        config: the validated run settings.
        store_path: directory for the γ store (a temporary one when None).
        overwrite: replace an existing store at ``store_path``.
        progress: show the progress bar.

    Returns:
        The :class:`~forecastprune.pipeline.methods.MethodRun`.
    """
    from ..forecasters import load_plugins
    from ..isolation import DEFAULT_TIMEOUT
    from ..zoo import build_model, make_loaders
    from ..zoo.data import get_task

    for path in config.plugins:
        load_plugins(path, timeout=DEFAULT_TIMEOUT)  # a plugin hanging at import is an error
    torch.manual_seed(config.seed)
    task = get_task(config.task)
    # the split stays fixed across seeds so every run is scored on the same test images
    split = task.split(upscale=config.upscale)
    train_loader, test_loader = make_loaders(
        split,
        config.batch_size,
        augment=config.augment,
        max_shift=task.max_shift,
        noise_std=task.noise_std,
        seed=config.seed,
    )
    world, rank = _util.world()
    if config.train_subset is not None or world > 1:
        train_loader = _reshard(train_loader, config, world, rank)
    colour = {"in_channels": task.channels} if task.channels != 1 else {}
    model: nn.Module = build_model(
        config.model, num_classes=split.num_classes, **colour, **config.model_kwargs()
    )
    optimizer = torch.optim.SGD(
        model.parameters(), lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    total_steps = config.epochs * len(train_loader)
    scheduler = _scheduler(optimizer, config.schedule, total_steps)
    callbacks: list[Callback] = []
    if world > 1:
        model = nn.parallel.DistributedDataParallel(model)
        callbacks.append(_SamplerEpoch())
    trainer_kwargs = {
        "train_loader": train_loader,
        "test_loader": test_loader,
        "epochs": config.epochs,
        "scheduler": scheduler,
        "callbacks": callbacks,
        "progress": progress and rank == 0,
        "eval_every": config.eval_every,
    }
    # what compare and prune need to rebuild the model and trace it (the store's layout names
    # its BN layers, not its shape)
    metadata = {
        "model": config.model,
        "model_kwargs": {**colour, **config.model_kwargs(), "num_classes": split.num_classes},
        "input_shape": [1, *split.x_train.shape[1:]],
        "task": config.task,
        "seed": config.seed,
        "method": config.method,
    }
    return run_method(
        config.method_spec(store_path, overwrite),
        model,
        optimizer,
        trainer_kwargs,
        example_inputs=split.x_train[:2],
        samples_per_step=config.batch_size * world,
        metadata=metadata,
    )


def init_distributed_from_env() -> bool:
    """Join the process group ``torchrun`` describes (gloo on CPU), if any.

    Returns:
        True when this process is one of several ranks.
    """
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or not torch.distributed.is_available():
        return False
    if not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    return True


def _reshard(loader: DataLoader, config: TrainConfig, world: int, rank: int) -> DataLoader:
    """The training loader restricted to ``train_subset`` and/or this rank's shard."""
    dataset: Any = loader.dataset
    if config.train_subset is not None:
        dataset = Subset(dataset, range(min(config.train_subset, len(dataset))))
    if world == 1:
        return DataLoader(
            dataset,
            batch_size=config.batch_size,
            shuffle=True,
            drop_last=True,
            generator=torch.Generator().manual_seed(config.seed),
            collate_fn=loader.collate_fn,
        )
    sampler = DistributedSampler(
        dataset, num_replicas=world, rank=rank, shuffle=True, seed=config.seed, drop_last=True
    )
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        drop_last=True,
        collate_fn=loader.collate_fn,
    )


class _SamplerEpoch(Callback):
    """Reshuffles a ``DistributedSampler`` each epoch (it repeats one order otherwise)."""

    def on_epoch_end(self, trainer: Trainer, epoch: int) -> None:
        sampler = getattr(trainer.train_loader, "sampler", None)
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch + 1)


def _scheduler(
    optimizer: torch.optim.Optimizer, schedule: str, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """A per-iteration schedule: cosine annealing to 0 over the run, or none."""
    if schedule == "constant":
        return None
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps))


def save_run(out: Path, summary: dict[str, Any], model: Any, config: Any) -> None:
    """``summary.json`` and ``model.pt`` (reloadable without unpickling), written atomically.

    A pruned model is saved with its channel plan (:func:`~forecastprune.engine.persist.
    save_pruned`, reloaded with ``load_pruned``); a dense one as a plain state dict.
    """
    from ..engine.persist import save_pruned
    from ..engine.surgery import surgery_record

    text = json.dumps(summary, indent=2, default=_jsonable) + "\n"
    atomic_write_bytes(out / "summary.json", text.encode("utf-8"))
    if surgery_record(model) is not None:
        save_pruned(
            model,
            out / "model.pt",
            builder=config.model,
            kwargs={**config.model_kwargs(), "num_classes": model_classes(model)},
            overwrite=True,
        )
        return
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    atomic_write_bytes(out / "model.pt", buffer.getvalue())


def model_classes(model: Any) -> int:
    """Output classes of a zoo model (its last linear layer's width)."""
    from torch import nn

    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    return int(linears[-1].out_features)


def _jsonable(value: Any) -> Any:
    """numpy scalars/arrays → plain Python for json.dumps."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
