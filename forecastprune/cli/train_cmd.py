"""``forecastprune train``: one method (normal, slimming, early-bird, forecast) on digits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


@click.command()
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="YAML run configuration (see configs/*.yaml).",
)
@click.option("--seed", type=int, default=None, help="Override the config's seed.")
@click.option("--epochs", type=int, default=None, help="Override the config's epoch budget.")
@click.option("--forecaster", default=None, help="Override the forecaster (forecast method).")
@click.option(
    "--prune-at",
    default=None,
    help="Override the prune point: a fraction, step:N, stability or confidence (forecast method).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Directory for summary.json and the γ store (nothing is written if omitted).",
)
@click.option(
    "--overwrite", is_flag=True, help="Replace a γ store left in --out by an earlier run."
)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def train(
    config_path: Path,
    seed: int | None,
    epochs: int | None,
    forecaster: str | None,
    prune_at: str | None,
    out: Path | None,
    overwrite: bool,
    quiet: bool,
) -> None:
    """Train a demo model on digits with one method and print its figures.

    Methods: normal (dense), slimming (sparse → prune → fine-tune), early-bird (sparse until
    the Early-Bird criterion → prune → train) and forecast (sparse while recording γ → forecast
    the final γ → prune once → train without L1). Prints accuracy, params, MACs, the prune
    step, training compute (3 × MACs × batch per step) and wall time.

    Under ``torchrun`` every rank trains its shard with DDP (gloo on CPU); rank 0 records γ,
    decides the prune and writes the outputs, and every rank prunes identically.

    \b
    Example:
      forecastprune train --config configs/forecast-sma.yaml --seed 1 --out runs/sma
      torchrun --nproc_per_node=2 $(which forecastprune) train \\
          --config configs/forecast-sma.yaml --out runs/sma-ddp
    """
    from .._util import is_rank_zero
    from ..pipeline.run import init_distributed_from_env, run_config, save_run
    from ..pipeline.train_config import TrainConfig

    init_distributed_from_env()
    config = TrainConfig.load(config_path).replace(
        seed=seed, epochs=epochs, forecaster=forecaster, prune_at=prune_at
    )
    store_path = None if out is None else out / "gammas.fpstore"
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    run = run_config(config, store_path=store_path, overwrite=overwrite, progress=not quiet)
    summary = {"config": config.to_json(), **run.summary()}
    if is_rank_zero():
        click.echo(format_summary(summary))
        if out is not None:
            save_run(out, summary, run.model, config)
            click.echo(f"summary and model written to {out}")


def format_summary(summary: dict[str, Any]) -> str:
    """The final summary block printed after training."""
    prune = summary["prune_step"]
    pruner = summary.get("pruner") or {}
    lines = [
        f"method          {summary['method']}"
        + (f" ({summary['config']['forecaster']})" if summary["method"] == "forecast" else ""),
        f"test accuracy   {100 * summary['accuracy']:.2f} %",
        f"params          {summary['params']:,}",
        f"MACs / sample   {summary['macs']:,}",
        "prune step      "
        + (
            "—"
            if prune is None
            else f"{prune} of {summary['total_steps']} "
            f"({prune / summary['total_steps']:.0%}, "
            f"by {pruner.get('fired_by')})"
        ),
        f"train compute   {summary['train_macs']:.4g} MACs",
        f"wall time       {summary['wall_seconds']:.1f} s",
    ]
    decision = (pruner.get("prune") or {}).get("decision") or {}
    if prune is not None and decision.get("pruned") == 0:
        lines.append(
            f"warning         the prune removed no channel: min_keep "
            f"{summary['config'].get('min_keep')} keeps every layer whole (or the ratio "
            "selects none); lower min_keep or raise ratio"
        )
    return "\n".join(lines)
