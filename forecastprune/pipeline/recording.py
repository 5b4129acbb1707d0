"""A recorded sparse-training run on digits: what ``forecastprune record`` runs.

The run directory receives:

- ``gammas.fpstore`` — the γ trajectory store (initial γ at step 0, then every ``every``
  updates, plus the last update), with the run's settings and final accuracy as metadata;
- ``model.pt`` — the trained weights (a plain state dict, loadable with ``weights_only=True``);
- ``run.json`` — the settings and the per-epoch loss, accuracy and learning rate.

Weight decay applies to conv and linear weights only: on γ it would add a uniform L2 shrink on
top of the L1 term and blur the separation the recording is meant to show.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .._util import atomic_write_bytes
from ..errors import ConfigError
from ..record.signals import flush_on_signals
from ..store.format import DEFAULT_FLUSH_EVERY
from ..zoo.from_store import RUN_MODEL_NAME
from .trainer import Callback, EpochRecord, Trainer

STORE_NAME = "gammas.fpstore"
SUMMARY_NAME = "run.json"
#: step: × ``lr_decay`` at each milestone; cosine: annealed to 0 over the run; linear: down to
#: ``LINEAR_FINAL`` × lr (ultralytics' default); onecycle: torch's OneCycleLR peaking at lr
LR_SCHEDULERS = ("step", "cosine", "linear", "onecycle")
#: sgd: with momentum; nesterov: the same with Nesterov momentum; adamw: β₁ = momentum
OPTIMIZERS = ("sgd", "nesterov", "adamw")
#: where ``linear`` ends, as a share of the peak LR (ultralytics' ``lrf``)
LINEAR_FINAL = 0.01
#: OneCycle's rising share of the run when no ``warmup`` is given (torch's default)
ONECYCLE_RISE = 0.3


@dataclass(frozen=True)
class RecordSettings:
    """Every setting of a recorded run (the ``record`` command's flags, same names).

    Raises:
        ConfigError: on LR milestones that are not increasing fractions inside the run, or
            widths that are not positive integers.
    """

    out: Path
    model_name: str = "darknet"
    epochs: int = 30
    sparsity: float = 5e-3
    sparsity_schedule: str = "constant"
    sparsity_factor: float = 0.1
    sparsity_at: float = 0.5
    relieve_top: float = 0.3
    every: int = 2
    lr: float = 0.05
    lr_scheduler: str = "step"
    lr_milestones: tuple[float, ...] = (0.5, 0.75)
    lr_decay: float = 0.1
    warmup: float = 0.0
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 64
    seed: int = 0
    gamma_init: float = 0.5
    task: str = "digits"
    width: float = 1.0
    widths: tuple[int, ...] | None = None
    augment: bool = True
    noise: float = 0.3
    dtype: str = "float32"
    flush_every: int = DEFAULT_FLUSH_EVERY
    limit_batches: int | None = None
    progress: bool = True
    overwrite: bool = False

    def __post_init__(self) -> None:
        if self.lr_scheduler not in LR_SCHEDULERS:
            raise ConfigError(
                f"lr_scheduler must be one of {', '.join(LR_SCHEDULERS)}; got {self.lr_scheduler!r}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(
                f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {self.optimizer!r}"
            )
        if not 0.0 <= self.warmup < 1.0:
            raise ConfigError(f"warmup is a fraction of the run in [0, 1); got {self.warmup}")
        from ..zoo.data import get_task

        get_task(self.task)  # names the valid tasks on an unknown one
        fractions = list(self.lr_milestones)
        if any(not 0.0 < f < 1.0 for f in fractions) or fractions != sorted(set(fractions)):
            raise ConfigError(
                f"LR milestones must be increasing fractions strictly between 0 and 1 (e.g. "
                f"0.5,0.75); got {fractions}"
            )
        if self.widths is not None and any(int(w) != w or w < 1 for w in self.widths):
            raise ConfigError(f"widths must be positive integers; got {list(self.widths)}")

    @property
    def model_kwargs(self) -> dict[str, Any]:
        """The zoo builder's keyword arguments (``in_channels`` on colour tasks only)."""
        from ..zoo.data import get_task

        kwargs: dict[str, Any] = {"width": self.width, "gamma_init": self.gamma_init}
        if self.widths:
            kwargs["widths"] = [int(w) for w in self.widths]
        if get_task(self.task).channels != 1:
            kwargs["in_channels"] = get_task(self.task).channels
        return kwargs


@dataclass(frozen=True)
class RecordResult:
    """The final test accuracy, the store's path and its (snapshots, channels)."""

    accuracy: float
    store_path: Path
    shape: tuple[int, int]


class SparseRecording(Callback):
    """Adds the BN-L1 gradient after backward and snapshots γ after each update.

    Args:
        sparsity: the :class:`~forecastprune.record.sparsity.BNSparsity` (None: no penalty).
        recorder: the :class:`~forecastprune.record.recorder.GammaRecorder`.
    """

    def __init__(self, sparsity: Any, recorder: Any) -> None:
        self.sparsity = sparsity
        self.recorder = recorder

    def on_after_backward(self, trainer: Trainer, step: int) -> None:
        if self.sparsity is not None:
            self.sparsity.apply(trainer.step)

    def on_after_step(self, trainer: Trainer, step: int) -> None:
        self.recorder.step(trainer.step)

    def on_train_end(self, trainer: Trainer) -> None:
        # the final γ is what forecasts are scored against, whatever the record interval
        # (also when a stop signal ends the run early: it is the γ the run stopped with)
        if trainer.step and self.recorder.last_step != trainer.step:
            self.recorder.snapshot(trainer.step)
        self.recorder.close()  # flushes; the store itself stays open for its owner


def check_run_dir(out: Path, overwrite: bool) -> None:
    """Refuse to clobber an earlier recording unless ``overwrite``.

    Raises:
        ConfigError: when ``out`` is a file, or holds a recording and ``overwrite`` is False.
    """
    taken = [n for n in (STORE_NAME, RUN_MODEL_NAME, SUMMARY_NAME) if (out / n).exists()]
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; pass a directory for the run's outputs")
    if taken and not overwrite:
        raise ConfigError(
            f"--out {out} already holds a recording ({', '.join(taken)}); pass --overwrite to "
            "replace it or choose another directory"
        )


def record_run(settings: RecordSettings) -> RecordResult:
    """Sparse-train a zoo model on a task of :mod:`~forecastprune.zoo.data` (digits or the
    generated shapes) while recording every BN γ into the run directory."""
    from ..zoo import build_model, make_loaders
    from ..zoo.data import get_task

    check_run_dir(settings.out, settings.overwrite)
    torch.manual_seed(settings.seed)
    model = build_model(settings.model_name, **settings.model_kwargs)
    task = get_task(settings.task)
    split = task.split()
    train_loader, test_loader = make_loaders(
        split,
        settings.batch_size,
        augment=settings.augment,
        max_shift=task.max_shift,
        noise_std=settings.noise,
        seed=settings.seed,
    )
    optimizer = _optimizer(model, settings)
    trainer = Trainer(
        model,
        optimizer,
        train_loader,
        test_loader,
        settings.epochs,
        limit_batches=settings.limit_batches,
        progress=settings.progress,
    )
    milestones = [max(1, round(f * trainer.total_steps)) for f in settings.lr_milestones]
    trainer.scheduler = _scheduler(optimizer, settings, milestones, trainer.total_steps)
    meta = _metadata(settings, trainer, milestones)
    # compare and prune rebuild the model from the metadata and trace it on this shape
    meta["input_shape"] = [1, *split.x_train.shape[1:]]
    callback = _recording_callback(model, optimizer, trainer, settings, meta)
    store = callback.recorder.store
    # flushed and closed (lock released) even if training fails or SIGTERM/SIGINT stops it
    with flush_on_signals(callback.recorder, store):
        trainer.callbacks.append(callback)
        result = trainer.fit()
        store.update_metadata(accuracy=result.accuracy)
        shape = (len(store), store.layout.total)
    _write_outputs(
        settings.out, trainer.model, {**meta, "accuracy": result.accuracy}, result.epochs
    )
    return RecordResult(result.accuracy, store.path, shape)


def _optimizer(model: nn.Module, settings: RecordSettings) -> torch.optim.Optimizer:
    """SGD (plain or Nesterov momentum) or AdamW (β₁ = momentum); weight decay on conv/linear
    weights only (never on BN γ/β)."""
    decayed = [p for p in model.parameters() if p.ndim > 1]
    plain = [p for p in model.parameters() if p.ndim <= 1]
    groups = [
        {"params": decayed, "weight_decay": settings.weight_decay},
        {"params": plain, "weight_decay": 0.0},
    ]
    if settings.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=settings.lr, betas=(settings.momentum, 0.999))
    return torch.optim.SGD(
        groups,
        lr=settings.lr,
        momentum=settings.momentum,
        nesterov=settings.optimizer == "nesterov",
    )


def _scheduler(
    optimizer: torch.optim.Optimizer, settings: RecordSettings, milestones: list[int], total: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """The per-iteration LR scheduler ``lr_scheduler`` names, after a linear warm-up over the
    first ``warmup`` share of the run (OneCycle's own rise takes that share instead)."""
    lr_scheduler = torch.optim.lr_scheduler
    name, rise = settings.lr_scheduler, max(1, round(settings.warmup * total))
    if name == "onecycle":
        share = settings.warmup or ONECYCLE_RISE
        return lr_scheduler.OneCycleLR(
            optimizer, settings.lr, total_steps=total, pct_start=share, cycle_momentum=False
        )
    if settings.warmup == 0.0 and name == "cosine":  # the suite's runs: kept bit for bit
        return lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    if settings.warmup == 0.0 and name == "step":
        return lr_scheduler.MultiStepLR(optimizer, milestones, gamma=settings.lr_decay)
    return lr_scheduler.LambdaLR(
        optimizer,
        partial(
            _lr_factor,
            name=name,
            total=total,
            rise=rise if settings.warmup else 0,
            milestones=tuple(milestones),
            decay=settings.lr_decay,
        ),
    )


def _lr_factor(
    step: int, name: str, total: int, rise: int, milestones: tuple[int, ...], decay: float
) -> float:
    """The LR at update ``step`` as a share of the peak: a linear warm-up over ``rise``
    updates, then the schedule ``name`` over the whole run."""
    warm = min(1.0, (step + 1) / rise) if rise else 1.0
    if name == "step":
        return warm * decay ** sum(step >= m for m in milestones)
    progress = min(step / total, 1.0)
    if name == "cosine":
        return warm * 0.5 * (1.0 + math.cos(math.pi * progress))
    return warm * (1.0 - (1.0 - LINEAR_FINAL) * progress)


def _metadata(settings: RecordSettings, trainer: Trainer, milestones: list[int]) -> dict[str, Any]:
    """The store metadata: every setting needed to reproduce and interpret the run."""
    from ..core.lr_clock import planned_lr_schedule
    from ..zoo.data import get_task

    return {
        "model": settings.model_name,
        "model_kwargs": settings.model_kwargs,
        "dataset": get_task(settings.task).dataset,
        "task": settings.task,
        "optimizer": settings.optimizer,
        "warmup": settings.warmup,
        "sparsity": settings.sparsity,
        "sparsity_schedule": settings.sparsity_schedule,
        "sparsity_factor": settings.sparsity_factor,
        "sparsity_at": settings.sparsity_at,
        "relieve_top": settings.relieve_top,
        "lr": settings.lr,
        "lr_scheduler": settings.lr_scheduler,
        "lr_milestones": milestones,
        "lr_decay": settings.lr_decay,
        "lr_schedule": planned_lr_schedule(trainer.scheduler, trainer.total_steps),
        "momentum": settings.momentum,
        "weight_decay": settings.weight_decay,
        "record_every": settings.every,
        "steps_per_epoch": trainer.steps_per_epoch,
        "total_steps": trainer.total_steps,
        "epochs": settings.epochs,
        "batch_size": settings.batch_size,
        "seed": settings.seed,
        "augment": settings.augment,
        "noise": settings.noise,
        "dtype": settings.dtype,
    }


def _recording_callback(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    trainer: Trainer,
    settings: RecordSettings,
    meta: dict[str, Any],
) -> SparseRecording:
    """The sparsity + recorder callback, with the store created and the initial γ recorded."""
    from ..core.bn_layers import layout_of, model_fingerprint, select_bn_layers
    from ..record.recorder import GammaRecorder
    from ..record.sparsity import BNSparsity
    from ..store import GammaTrajectoryStore

    sparsity = None
    if settings.sparsity > 0:
        sparsity = BNSparsity(
            model,
            settings.sparsity,
            schedule=settings.sparsity_schedule,
            total_steps=trainer.total_steps,
            factor=settings.sparsity_factor,
            at=settings.sparsity_at,
            top_fraction=settings.relieve_top,
        )
    # the store is created here, not by the recorder, to choose its value dtype
    store = GammaTrajectoryStore.create(
        settings.out / STORE_NAME,
        layout_of(select_bn_layers(model)),
        metadata=meta,
        fingerprint=model_fingerprint(model),
        overwrite=settings.overwrite,
        dtype=settings.dtype,
        flush_every=settings.flush_every,
    )
    recorder = GammaRecorder(
        model, store, every=settings.every, optimizer=optimizer, flush_every=settings.flush_every
    )
    recorder.step(0)
    return SparseRecording(sparsity, recorder)


def _write_outputs(
    out: Path, model: nn.Module, meta: dict[str, Any], epochs: list[EpochRecord]
) -> None:
    """Write ``model.pt`` and ``run.json`` atomically (a crash never leaves half a file)."""
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    atomic_write_bytes(out / RUN_MODEL_NAME, buffer.getvalue())
    summary = {**meta, "epochs": [asdict(e) for e in epochs]}
    atomic_write_bytes(out / SUMMARY_NAME, (json.dumps(summary, indent=2) + "\n").encode())
