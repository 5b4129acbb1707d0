"""``forecastprune list`` and ``forecastprune forecast``: browse forecasters, forecast a store."""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np

from .._util import write_output
from ..compare.replay import plan_like_prune
from ..engine.spec import PruneSpec
from ..engine.threshold import select_channels
from ..forecasters import (
    ForecasterInfo,
    PluginWarning,
    list_forecasters,
    load_plugins,
)
from ..forecasters.registry import describe_params
from ..isolation import DEFAULT_TIMEOUT, run_isolated
from ..predict import Prediction, build_forecaster, predict_store
from ..store import GammaTrajectoryStore, bundled_store_path
from ._common import announce_slow, limit, timeout_option
from .spec_options import spec_from_flags, spec_options

#: the largest step a store can hold (steps are int64)
INT64_MAX = 2**63 - 1

_plugins = click.option(
    "--plugins",
    "plugin_paths",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A plugin .py file or a folder of them to load first (repeatable).",
)


def _load(paths: Sequence[Path], timeout: float | None = None) -> None:
    for path in paths:
        load_plugins(path, timeout=timeout)


# -------------------------------------------------------------------- list
@click.command("list")
@click.argument("pattern", required=False)
@_plugins
def list_cmd(pattern: str | None, plugin_paths: Sequence[Path]) -> None:
    """List the forecasters: name, parameters with defaults, source and description.

    PATTERN keeps only names containing it. Installed plugins (entry points) are discovered
    automatically; plugins that fail to load are listed at the end with their error.

    \b
    Example:
      forecastprune list
      forecastprune list --plugins plugins/single_file_plugin.py
    """
    with warnings.catch_warnings():  # broken plugins are reported below, not as warnings
        warnings.simplefilter("ignore", PluginWarning)
        _load(plugin_paths, DEFAULT_TIMEOUT)
        working = list_forecasters(pattern, include_broken=False)
        broken = [row for row in list_forecasters() if row.broken]  # whatever the pattern
    if working:
        click.echo(format_table(working))
    else:
        click.echo(f"no forecaster matches {pattern!r}")
    if broken:
        click.echo("\nPlugins that failed to load:")
        for row in broken:
            click.echo(f"  {row.name} ({row.source}): {row.error}")


def format_table(rows: Sequence[ForecasterInfo]) -> str:
    """A plain-text table of forecasters, one line each (long lines are left to the pager)."""
    header = ("NAME", "PARAMS", "SOURCE", "DESCRIPTION")
    cells = [
        (
            row.name,
            describe_params(row.params) if row.params else "-",
            row.source,
            row.description + (" [intervals]" if row.supports_interval else ""),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in [header, *cells]
    )


# -------------------------------------------------------------------- forecast
def _check_out(path: Path, overwrite: bool) -> None:
    if path.is_dir():
        raise click.BadParameter(
            f"{path} is a folder; name the .npz file to write", param_hint="--out"
        )
    if path.exists() and not overwrite:
        raise click.BadParameter(
            f"{path} exists; pass --overwrite to replace it", param_hint="--out"
        )


def _write(path: Path, data: bytes) -> None:
    """Write atomically, creating missing folders as ``compare`` and ``prune`` do."""
    write_output(path, data)


@click.command("forecast")
@click.option(
    "--store",
    "store_path",
    type=click.Path(path_type=Path),
    default=None,
    help="γ trajectory store (default: the bundled store).",
)
@click.option(
    "--forecaster",
    "spec",
    required=True,
    help="Forecaster name or spec, e.g. 'sma(window=5)' or 'linear(damped=0.9)'.",
)
@click.option(
    "--cutoff",
    default=None,
    help="History the forecaster sees: a fraction of the run in (0, 1] (of metadata "
    "total_steps, else the last recorded step) or step:N. [default: 1.0]",
)
@click.option(
    "--at",
    "at_step",
    type=click.IntRange(min=0),
    default=None,
    help="Shorthand for --cutoff step:AT.",
)
@click.option(
    "--target",
    "target_step",
    type=click.IntRange(0, INT64_MAX),
    default=None,
    help="Step to forecast (default: metadata total_steps, else the last recorded step).",
)
@click.option(
    "--out", "out_path", type=click.Path(path_type=Path), required=True, help="Output .npz file."
)
@click.option(
    "--time-axis",
    type=click.Choice(["step", "lr"]),
    default=None,
    help="Extrapolate over steps or cumulative learning rate (forecasters with a "
    "time_axis parameter).",
)
@spec_options()
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@_plugins
@timeout_option
def forecast(
    store_path: Path | None,
    spec: str,
    cutoff: str | None,
    at_step: int | None,
    target_step: int | None,
    out_path: Path,
    time_axis: str | None,
    overwrite: bool,
    plugin_paths: Sequence[Path],
    timeout: float,
    **settings: Any,
) -> None:
    """Forecast every channel's |γ| at the target step from the history up to a cutoff.

    Writes an .npz with `prediction` (C,), `lower`/`upper` when the forecaster gives intervals
    (of --coverage), `pruned` (C,): the channels `prune` would cut with the same settings (and
    `policy`, the policy they were chosen under), `layer_names`, `layer_sizes`, `target_step`,
    `cutoff_step` and the forecaster spec.

    \b
    Example:
      forecastprune forecast --store runs/dk/gammas.fpstore --forecaster "linear(window=8)" \\
          --cutoff 0.2 --time-axis lr --out pred.npz
    """
    prune_spec = spec_from_flags(settings)
    _check_out(out_path, overwrite)
    if cutoff is not None and at_step is not None:
        raise click.BadParameter(
            "got both --cutoff and --at; give one (--at N is --cutoff step:N)", param_hint="--at"
        )
    cutoff = f"step:{at_step}" if at_step is not None else (cutoff or "1.0")
    _load(plugin_paths, limit(timeout))
    forecaster = build_forecaster(spec, time_axis)
    with GammaTrajectoryStore.open(store_path or bundled_store_path()) as store:
        announce_slow(forecaster, store.layout.total, timeout)
        prediction = run_isolated(
            lambda: predict_store(
                store, forecaster, cutoff, target_step=target_step, coverage=prune_spec.coverage
            ),
            timeout=limit(timeout),
            what=f"forecaster {spec!r}",
        )
        layout = store.layout
        plan, used, note = plan_like_prune(store, prune_spec)
    decision = select_channels(prediction.scores, plan, used, upper=prediction.upper)
    _write(out_path, _npz_bytes(prediction, layout, used, decision.pruned))
    click.echo(
        f"wrote {out_path}: {prediction.scores.size} channels, {prediction.forecaster}, "
        f"{prediction.n_history} snapshots up to step {prediction.cutoff_step}, "
        f"target step {prediction.target_step}"
        + (f"; clock: {prediction.clock_assumption}" if prediction.clock_assumption else "")
    )
    prunable = getattr(plan, "prunable", None)  # a bare layout: every channel may go
    n_prunable = layout.total if prunable is None else int(np.count_nonzero(prunable))
    click.echo(
        f"policy {used.policy}: prune would cut {decision.n_pruned} of {n_prunable} "
        "prunable channels" + (f" ({note})" if note else "")
    )


def _npz_bytes(prediction: Prediction, layout: Any, spec: PruneSpec, pruned: np.ndarray) -> bytes:
    arrays: dict[str, Any] = {
        "prediction": prediction.scores,
        "layer_names": np.array(layout.names, dtype=str),
        "layer_sizes": np.array(layout.sizes, dtype=np.int64),
        "target_step": prediction.target_step,
        "cutoff_step": prediction.cutoff_step,
        "n_history": prediction.n_history,
        "forecaster": prediction.forecaster,
        "clock_assumption": prediction.clock_assumption,
        "pruned": pruned,
        "policy": spec.policy,
    }
    if prediction.upper is not None:
        arrays.update(lower=prediction.lower, upper=prediction.upper, coverage=spec.coverage)
    buffer = io.BytesIO()
    np.savez(buffer, **{key: np.asarray(value) for key, value in arrays.items()})
    return buffer.getvalue()
