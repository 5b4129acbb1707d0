"""``forecastprune record``: sparse-train a zoo model on digits while recording every BN γ.

The run itself is :func:`forecastprune.pipeline.recording.record_run`; see there for what the
run directory receives.
"""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path
from typing import Any

import click
import torch

from ..pipeline.recording import LR_SCHEDULERS, OPTIMIZERS, RecordSettings, record_run
from ..zoo.data import TASKS

#: each flag's default is the library's
_DEFAULT = {f.name: f.default for f in fields(RecordSettings)}


def _numbers(text: str, what: str) -> tuple[float, ...]:
    """Parse ``"0.5,0.75"``; ``what`` names the option in the error."""
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise click.BadParameter(
            f"expected comma-separated numbers, got {text!r}", param_hint=what
        ) from None


def settings_from_flags(flags: dict[str, Any]) -> tuple[RecordSettings, int | None]:
    """The run's settings and ``--threads`` from the parsed flags of ``record``."""
    options = dict(flags)
    threads = options.pop("threads")
    options["lr_milestones"] = _numbers(options["lr_milestones"], "--lr-milestones")
    if options["widths"]:
        options["widths"] = _numbers(options["widths"], "--widths")
    return RecordSettings(**options), threads


@click.command()
@click.option(
    "--model",
    "model_name",
    default=_DEFAULT["model_name"],
    show_default=True,
    help="Zoo model to train (vgg, resnet, darknet, ...).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    required=True,
    help="Run directory for gammas.fpstore, model.pt and run.json.",
)
@click.option("--epochs", type=click.IntRange(min=1), default=_DEFAULT["epochs"], show_default=True)
@click.option(
    "--sparsity",
    type=click.FloatRange(min=0.0),
    default=_DEFAULT["sparsity"],
    show_default=True,
    help="BN-L1 strength s (0 records a dense run).",
)
@click.option(
    "--sparsity-schedule",
    type=click.Choice(["constant", "step", "relieve"]),
    default=_DEFAULT["sparsity_schedule"],
    show_default=True,
    help="step: s x factor after --sparsity-at; relieve: only the top channels.",
)
@click.option(
    "--sparsity-factor",
    type=click.FloatRange(min=0.0),
    default=_DEFAULT["sparsity_factor"],
    show_default=True,
    help="Multiplier of s after the switch.",
)
@click.option(
    "--sparsity-at",
    type=click.FloatRange(0.0, 1.0),
    default=_DEFAULT["sparsity_at"],
    show_default=True,
    help="Fraction of training at which the sparsity schedule switches.",
)
@click.option(
    "--relieve-top",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=_DEFAULT["relieve_top"],
    show_default=True,
    help="Share of channels (largest |γ|) relieved by 'relieve'.",
)
@click.option(
    "--every",
    type=click.IntRange(min=1),
    default=_DEFAULT["every"],
    show_default=True,
    help="Record γ every this many updates.",
)
@click.option(
    "--lr", type=click.FloatRange(min=0.0, min_open=True), default=_DEFAULT["lr"], show_default=True
)
@click.option(
    "--lr-scheduler",
    type=click.Choice(list(LR_SCHEDULERS)),
    default=_DEFAULT["lr_scheduler"],
    show_default=True,
    help="step: x --lr-decay at each milestone; cosine: anneal to 0 over the run; "
    "linear: down to 1% of --lr; onecycle: torch's OneCycleLR.",
)
@click.option(
    "--lr-milestones",
    default=",".join(map(str, _DEFAULT["lr_milestones"])),
    show_default=True,
    help="Fractions of training at which the LR is multiplied by --lr-decay.",
)
@click.option(
    "--lr-decay",
    type=click.FloatRange(0.0, 1.0, min_open=True),
    default=_DEFAULT["lr_decay"],
    show_default=True,
)
@click.option(
    "--warmup",
    type=click.FloatRange(0.0, 1.0, max_open=True),
    default=_DEFAULT["warmup"],
    show_default=True,
    help="Share of the run over which the LR rises linearly to --lr (onecycle: its rising share).",
)
@click.option(
    "--optimizer",
    type=click.Choice(list(OPTIMIZERS)),
    default=_DEFAULT["optimizer"],
    show_default=True,
    help="sgd / nesterov: SGD with (Nesterov) --momentum; adamw: beta1 = --momentum.",
)
@click.option(
    "--momentum",
    type=click.FloatRange(0.0, 1.0, max_open=True),
    default=_DEFAULT["momentum"],
    show_default=True,
)
@click.option(
    "--weight-decay",
    type=click.FloatRange(min=0.0),
    default=_DEFAULT["weight_decay"],
    show_default=True,
    help="L2 on conv/linear weights (never on BN).",
)
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=_DEFAULT["batch_size"], show_default=True
)
@click.option(
    "--seed",
    type=int,
    default=_DEFAULT["seed"],
    show_default=True,
    help="Seeds initialisation, shuffling and augmentation (the split is fixed).",
)
@click.option(
    "--gamma-init",
    type=click.FloatRange(min=0.0, min_open=True),
    default=_DEFAULT["gamma_init"],
    show_default=True,
    help="Initial BN γ.",
)
@click.option(
    "--task",
    type=click.Choice(list(TASKS)),
    default=_DEFAULT["task"],
    show_default=True,
    help="digits: 1,437 training images; digits-hard: 359, stronger shifts; mnist1d: 20,000 "
    "generated 1-D signals (model cnn1d, the mnist1d extra).",
)
@click.option(
    "--width",
    type=click.FloatRange(min=0.0, min_open=True),
    default=_DEFAULT["width"],
    show_default=True,
    help="Channel width multiplier.",
)
@click.option("--widths", default=None, help="Base widths, comma-separated (model-specific).")
@click.option(
    "--augment/--no-augment",
    default=True,
    show_default=True,
    help="Random shifts and Gaussian noise on training images.",
)
@click.option(
    "--noise",
    type=click.FloatRange(min=0.0),
    default=_DEFAULT["noise"],
    show_default=True,
    help="Augmentation noise level (standardised pixel units).",
)
@click.option(
    "--dtype",
    type=click.Choice(["float32", "float16"]),
    default=_DEFAULT["dtype"],
    show_default=True,
    help="Store value dtype (float16 halves the size).",
)
@click.option(
    "--flush-every",
    type=click.IntRange(min=1),
    default=_DEFAULT["flush_every"],
    show_default=True,
    help="Snapshots per store segment (a crash loses at most this many).",
)
@click.option(
    "--limit-batches",
    type=click.IntRange(min=1),
    default=None,
    help="Train on at most this many batches per epoch (quick trials).",
)
@click.option(
    "--threads",
    type=click.IntRange(1, 4 * (os.cpu_count() or 1)),
    default=None,
    help="CPU threads for torch (small models often run fastest on 1).",
)
@click.option("--progress/--no-progress", default=True, help="Show a progress bar.")
@click.option("--overwrite", is_flag=True, help="Replace an existing recording in --out.")
def record(**options: Any) -> None:
    """Sparse-train a zoo model on scikit-learn digits while recording every BN γ.

    \b
    Example:
      forecastprune record --model darknet --epochs 30 --sparsity 5e-3 --every 2 --out runs/dk
      forecastprune store info runs/dk/gammas.fpstore
    """
    settings, threads = settings_from_flags(options)
    previous = torch.get_num_threads()
    try:
        if threads:
            torch.set_num_threads(threads)
        result = record_run(settings)
    finally:
        torch.set_num_threads(previous)
    click.echo(f"final test accuracy: {result.accuracy:.4f}")
    click.echo(
        f"recorded {result.shape[0]} snapshots x {result.shape[1]} channels into "
        f"{result.store_path}"
    )
