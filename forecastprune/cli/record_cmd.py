"""``forecastprune record``: sparse-train a zoo model on digits while recording every BN γ.

The run directory ``--out`` receives:

- ``gammas.fpstore`` — the γ trajectory store (initial γ at step 0, then every ``--every``
  updates, plus the last update), with the run's settings and final accuracy as metadata;
- ``model.pt`` — the trained weights (a plain state dict, loadable with ``weights_only=True``);
- ``run.json`` — the settings and the per-epoch loss, accuracy and learning rate.

Weight decay applies to conv and linear weights only: on γ it would add a uniform L2 shrink on
top of the L1 term and blur the separation the recording is meant to show.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
import torch
from torch import nn

from ..errors import ConfigError
from ..pipeline.trainer import Callback, EpochRecord, Trainer

STORE_NAME = "gammas.fpstore"
MODEL_NAME = "model.pt"
SUMMARY_NAME = "run.json"


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
        if trainer.step and self.recorder.last_step != trainer.step:
            self.recorder.snapshot(trainer.step)
        self.recorder.close()  # flushes; the store itself stays open for its owner


def _float_list(text: str, what: str) -> list[float]:
    """Parse ``"0.5,0.75"``; ``what`` names the option in the error."""
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers, got {text!r}",
                                 param_hint=what) from None


def _milestones(fractions: list[float], total_steps: int) -> list[int]:
    """LR drop points in updates from fractions of training, each strictly inside the run."""
    if any(not 0.0 < f < 1.0 for f in fractions) or fractions != sorted(set(fractions)):
        raise click.BadParameter(
            f"expected increasing fractions strictly between 0 and 1 (e.g. 0.5,0.75); got "
            f"{fractions}", param_hint="--lr-milestones",
        )
    return [max(1, round(f * total_steps)) for f in fractions]


def _model_kwargs(widths: str | None, width: float, gamma_init: float) -> dict[str, Any]:
    """The zoo builder's keyword arguments from the width and γ options."""
    kwargs: dict[str, Any] = {"width": width, "gamma_init": gamma_init}
    if widths:
        values = _float_list(widths, "--widths")
        if any(v != int(v) or v < 1 for v in values):
            raise click.BadParameter(
                f"expected positive integers, got {widths!r}", param_hint="--widths"
            )
        kwargs["widths"] = [int(v) for v in values]
    return kwargs


def _make_optimizer(model: nn.Module, lr: float, momentum: float, wd: float) -> torch.optim.SGD:
    """SGD with momentum; weight decay on conv/linear weights only (never on BN γ/β)."""
    decayed = [p for p in model.parameters() if p.ndim > 1]
    plain = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decayed, "weight_decay": wd}, {"params": plain, "weight_decay": 0.0}]
    return torch.optim.SGD(groups, lr=lr, momentum=momentum)


def _check_out(out: Path, overwrite: bool) -> None:
    """Refuse to clobber an earlier recording unless ``--overwrite`` was given."""
    taken = [name for name in (STORE_NAME, MODEL_NAME, SUMMARY_NAME) if (out / name).exists()]
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; pass a directory for the run's outputs")
    if taken and not overwrite:
        raise ConfigError(
            f"--out {out} already holds a recording ({', '.join(taken)}); pass --overwrite to "
            "replace it or choose another directory"
        )


def _write_outputs(
    out: Path, model: nn.Module, meta: dict[str, Any], epochs: list[EpochRecord]
) -> None:
    """Write ``model.pt`` and ``run.json`` atomically (a crash never leaves half a file)."""
    from .._util import atomic_write_bytes

    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    atomic_write_bytes(out / MODEL_NAME, buffer.getvalue())
    summary = {**meta, "epochs": [asdict(e) for e in epochs]}
    atomic_write_bytes(out / SUMMARY_NAME, (json.dumps(summary, indent=2) + "\n").encode())


@click.command()
@click.option("--model", "model_name", default="darknet", show_default=True,
              help="Zoo model to train (vgg, resnet, darknet, ...).")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Run directory for gammas.fpstore, model.pt and run.json.")
@click.option("--epochs", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--sparsity", type=click.FloatRange(min=0.0), default=5e-3, show_default=True,
              help="BN-L1 strength s (0 records a dense run).")
@click.option("--sparsity-schedule", type=click.Choice(["constant", "step", "relieve"]),
              default="constant", show_default=True,
              help="step: s x factor after --sparsity-at; relieve: only the top channels.")
@click.option("--sparsity-factor", type=click.FloatRange(min=0.0), default=0.1,
              show_default=True, help="Multiplier of s after the switch.")
@click.option("--sparsity-at", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
              help="Fraction of training at which the sparsity schedule switches.")
@click.option("--relieve-top", type=click.FloatRange(0.0, 1.0, min_open=True), default=0.3,
              show_default=True, help="Share of channels (largest |γ|) relieved by 'relieve'.")
@click.option("--every", type=click.IntRange(min=1), default=2, show_default=True,
              help="Record γ every this many updates.")
@click.option("--lr", type=click.FloatRange(min=0.0, min_open=True), default=0.05,
              show_default=True)
@click.option("--lr-scheduler", type=click.Choice(["step", "cosine"]), default="step",
              show_default=True,
              help="step: x --lr-decay at each milestone; cosine: anneal to 0 over the run.")
@click.option("--lr-milestones", default="0.5,0.75", show_default=True,
              help="Fractions of training at which the LR is multiplied by --lr-decay.")
@click.option("--lr-decay", type=click.FloatRange(0.0, 1.0, min_open=True), default=0.1,
              show_default=True)
@click.option("--momentum", type=click.FloatRange(0.0, 1.0, max_open=True), default=0.9,
              show_default=True)
@click.option("--weight-decay", type=click.FloatRange(min=0.0), default=1e-4, show_default=True,
              help="L2 on conv/linear weights (never on BN).")
@click.option("--batch-size", type=click.IntRange(min=1), default=64, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seeds initialisation, shuffling and augmentation (the split is fixed).")
@click.option("--gamma-init", type=click.FloatRange(min=0.0, min_open=True), default=0.5,
              show_default=True, help="Initial BN γ.")
@click.option("--width", type=click.FloatRange(min=0.0, min_open=True), default=1.0,
              show_default=True, help="Channel width multiplier.")
@click.option("--widths", default=None, help="Base widths, comma-separated (model-specific).")
@click.option("--augment/--no-augment", default=True, show_default=True,
              help="Random shifts and Gaussian noise on training images.")
@click.option("--noise", type=click.FloatRange(min=0.0), default=0.3, show_default=True,
              help="Augmentation noise level (standardised pixel units).")
@click.option("--dtype", type=click.Choice(["float32", "float16"]), default="float32",
              show_default=True, help="Store value dtype (float16 halves the size).")
@click.option("--flush-every", type=click.IntRange(min=1), default=50, show_default=True,
              help="Snapshots per store segment (a crash loses at most this many).")
@click.option("--limit-batches", type=click.IntRange(min=1), default=None,
              help="Train on at most this many batches per epoch (quick trials).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="CPU threads for torch (small models often run fastest on 1).")
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
@click.option("--overwrite", is_flag=True, help="Replace an existing recording in --out.")
def record(**options: Any) -> None:
    """Sparse-train a zoo model on scikit-learn digits while recording every BN γ.

    \b
    Example:
      forecastprune record --model darknet --epochs 30 --sparsity 5e-3 --every 2 --out runs/dk
      forecastprune store info runs/dk/gammas.fpstore
    """
    out: Path = options["out"]
    _check_out(out, options["overwrite"])
    threads = torch.get_num_threads()
    try:
        if options["threads"]:
            torch.set_num_threads(options["threads"])
        accuracy, store_path, shape = run_record(options)
    finally:
        torch.set_num_threads(threads)
    click.echo(f"final test accuracy: {accuracy:.4f}")
    click.echo(f"recorded {shape[0]} snapshots x {shape[1]} channels into {store_path}")


def run_record(options: dict[str, Any]) -> tuple[float, Path, tuple[int, int]]:
    """Train and record as ``forecastprune record`` does, from its parsed options.

    Returns:
        The final test accuracy, the store path and the store's (snapshots, channels).
    """
    from ..zoo import build_model, load_digits_split, make_loaders

    torch.manual_seed(options["seed"])
    kwargs = _model_kwargs(options["widths"], options["width"], options["gamma_init"])
    model = build_model(options["model_name"], **kwargs)
    split = load_digits_split()
    train_loader, test_loader = make_loaders(
        split, options["batch_size"], augment=options["augment"],
        noise_std=options["noise"], seed=options["seed"],
    )
    optimizer = _make_optimizer(model, options["lr"], options["momentum"], options["weight_decay"])
    trainer = Trainer(model, optimizer, train_loader, test_loader, options["epochs"],
                      limit_batches=options["limit_batches"], progress=options["progress"])
    milestones = _milestones(
        _float_list(options["lr_milestones"], "--lr-milestones"), trainer.total_steps
    )
    trainer.scheduler = _scheduler(optimizer, options, milestones, trainer.total_steps)
    meta = _metadata(options, kwargs, trainer, milestones)
    callback = _recording_callback(model, optimizer, trainer, options, meta)
    store = callback.recorder.store
    with store:  # closed (lock released, buffer flushed) even if training fails
        trainer.callbacks.append(callback)
        result = trainer.fit()
        store.update_metadata(accuracy=result.accuracy)
        shape = (len(store), store.layout.total)
    _write_outputs(options["out"], trainer.model, {**meta, "accuracy": result.accuracy},
                   result.epochs)
    return result.accuracy, store.path, shape


def _scheduler(
    optimizer: torch.optim.Optimizer, options: dict[str, Any], milestones: list[int], total: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """The per-iteration LR scheduler ``--lr-scheduler`` names."""
    if options.get("lr_scheduler", "step") == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=options["lr_decay"])


def _metadata(
    options: dict[str, Any], kwargs: dict[str, Any], trainer: Trainer, milestones: list[int]
) -> dict[str, Any]:
    """The store metadata: every setting needed to reproduce and interpret the run."""
    from ..record.lr_clock import planned_lr_schedule

    schedule = planned_lr_schedule(trainer.scheduler, trainer.total_steps)
    return {
        "model": options["model_name"], "model_kwargs": kwargs, "dataset": "sklearn-digits",
        "sparsity": options["sparsity"], "sparsity_schedule": options["sparsity_schedule"],
        "sparsity_factor": options["sparsity_factor"], "sparsity_at": options["sparsity_at"],
        "relieve_top": options["relieve_top"], "lr": options["lr"],
        "lr_scheduler": options.get("lr_scheduler", "step"),
        "lr_milestones": milestones, "lr_decay": options["lr_decay"], "lr_schedule": schedule,
        "momentum": options["momentum"], "weight_decay": options["weight_decay"],
        "record_every": options["every"], "steps_per_epoch": trainer.steps_per_epoch,
        "total_steps": trainer.total_steps, "epochs": options["epochs"],
        "batch_size": options["batch_size"], "seed": options["seed"],
        "augment": options["augment"], "noise": options["noise"], "dtype": options["dtype"],
    }


def _recording_callback(
    model: nn.Module, optimizer: torch.optim.Optimizer, trainer: Trainer,
    options: dict[str, Any], meta: dict[str, Any],
) -> SparseRecording:
    """The sparsity + recorder callback, with the store created and the initial γ recorded."""
    from ..record.recorder import GammaRecorder
    from ..record.bn_layers import layout_of, model_fingerprint, select_bn_layers
    from ..record.sparsity import BNSparsity
    from ..store import GammaTrajectoryStore

    sparsity = None
    if options["sparsity"] > 0:
        sparsity = BNSparsity(
            model, options["sparsity"], schedule=options["sparsity_schedule"],
            total_steps=trainer.total_steps, factor=options["sparsity_factor"],
            at=options["sparsity_at"], top_fraction=options["relieve_top"],
        )
    # the store is created here, not by the recorder, to choose its value dtype
    store = GammaTrajectoryStore.create(
        options["out"] / STORE_NAME, layout_of(select_bn_layers(model)), metadata=meta,
        fingerprint=model_fingerprint(model), overwrite=options["overwrite"],
        dtype=options["dtype"], flush_every=options["flush_every"],
    )
    recorder = GammaRecorder(
        model, store, every=options["every"], optimizer=optimizer,
        flush_every=options["flush_every"],
    )
    recorder.step(0)
    return SparseRecording(sparsity, recorder)
