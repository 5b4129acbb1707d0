"""``forecastprune list`` and ``forecastprune forecast``: browse forecasters, forecast a store."""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np

from ..errors import ForecasterError, StoreError
from ..forecasters import (
    Forecaster,
    ForecasterInfo,
    PluginWarning,
    get_forecaster,
    list_forecasters,
    load_plugins,
)
from ..forecasters.registry import describe_params
from ..store import GammaTrajectoryStore, bundled_store_path
from .._util import atomic_write_bytes

_plugins = click.option(
    "--plugins", "plugin_paths", multiple=True, type=click.Path(path_type=Path),
    help="A plugin .py file or a folder of them to load first (repeatable).",
)


def _load(paths: Sequence[Path]) -> None:
    for path in paths:
        load_plugins(path)


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
        _load(plugin_paths)
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
        (row.name, describe_params(row.params) if row.params else "-", row.source,
         row.description + (" [intervals]" if row.supports_interval else ""))
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]
    return "\n".join(
        "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        for line in [header, *cells]
    )


# -------------------------------------------------------------------- forecast
@click.command("forecast")
@click.option("--store", "store_path", type=click.Path(path_type=Path), default=None,
              help="γ trajectory store (default: the bundled store).")
@click.option("--forecaster", "spec", required=True,
              help="Forecaster name or spec, e.g. 'sma(window=5)' or 'linear(damped=0.9)'.")
@click.option("--at", "at_step", type=int, default=None,
              help="Fit on the snapshots up to and including this step.")
@click.option("--cutoff", type=float, default=None,
              help="Fit on the first FRACTION of training (of metadata total_steps, or of the "
                   "last recorded step).")
@click.option("--target", "target_step", type=int, default=None,
              help="Step to forecast (default: metadata total_steps, else the last recorded "
                   "step).")
@click.option("--out", "out_path", type=click.Path(path_type=Path), required=True,
              help="Output .npz file.")
@click.option("--time-axis", type=click.Choice(["step", "lr"]), default=None,
              help="Extrapolate over steps or cumulative learning rate (forecasters with a "
                   "time_axis parameter).")
@click.option("--coverage", type=float, default=0.9, show_default=True,
              help="Coverage of the prediction interval, for forecasters that give one.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@_plugins
def forecast(
    store_path: Path | None, spec: str, at_step: int | None, cutoff: float | None,
    target_step: int | None, out_path: Path, time_axis: str | None, coverage: float,
    overwrite: bool, plugin_paths: Sequence[Path],
) -> None:
    """Forecast every channel's |γ| at the target step from the history up to a cutoff.

    Writes an .npz with `prediction` (C,), `lower`/`upper` when the forecaster gives intervals,
    `layer_names`, `layer_sizes`, `target_step`, `cutoff_step` and the forecaster spec.

    \b
    Example:
      forecastprune forecast --store runs/dk/gammas.fpstore --forecaster "linear(window=8)" \\
          --cutoff 0.2 --time-axis lr --out pred.npz
    """
    if out_path.exists() and not overwrite:
        raise click.BadParameter(f"{out_path} exists; pass --overwrite to replace it",
                                 param_hint="--out")
    _load(plugin_paths)
    forecaster = _build(spec, time_axis)
    with GammaTrajectoryStore.open(store_path or bundled_store_path()) as store:
        result = forecast_store(store, forecaster, at_step=at_step, cutoff=cutoff,
                                target_step=target_step, coverage=coverage)
    atomic_write_bytes(out_path, _npz_bytes(result))
    click.echo(
        f"wrote {out_path}: {result['prediction'].size} channels, {result['forecaster']}, "
        f"{result['n_history']} snapshots up to step {result['cutoff_step']}, "
        f"target step {result['target_step']}"
        + (f"; clock: {result['clock_assumption']}" if result["clock_assumption"] else "")
    )


def _build(spec: str, time_axis: str | None) -> Forecaster:
    if time_axis is None:
        return get_forecaster(spec)
    forecaster = get_forecaster(spec)
    if not forecaster.get_tag("time_axis_param"):
        raise ForecasterError(
            f"--time-axis applies to forecasters that extrapolate over time (linear, arima, "
            f"...); {spec!r} has no time axis. Drop --time-axis"
        )
    return get_forecaster(spec, time_axis=time_axis)


def forecast_store(
    store: GammaTrajectoryStore,
    forecaster: Forecaster,
    *,
    at_step: int | None = None,
    cutoff: float | None = None,
    target_step: int | None = None,
    coverage: float = 0.9,
) -> dict[str, Any]:
    """Fit ``forecaster`` on a store's |γ| up to a cutoff and forecast the target step.

    Args:
        store: an open store.
        forecaster: an unfitted forecaster (fitted in place).
        at_step: last step of the history; exclusive with ``cutoff``.
        cutoff: fraction in (0, 1] of training (metadata ``total_steps`` or the last step).
        target_step: step to forecast (default: ``total_steps`` or the last recorded step).
        coverage: interval coverage, used when the forecaster supports intervals.

    Returns:
        The arrays and facts written by ``forecastprune forecast``.

    Raises:
        ForecasterError: bad cutoff/target, or too little history for the forecaster.
        StoreError: an empty store, or no LR information for ``time_axis="lr"``.
    """
    if len(store) == 0:
        raise StoreError(f"store {store.path} has no snapshots; record some first")
    total = _training_length(store)
    cutoff_step = _cutoff_step(at_step, cutoff, total)
    target = total if target_step is None else int(target_step)
    if target < cutoff_step:
        raise ForecasterError(
            f"the target step {target} lies before the cutoff step {cutoff_step}; "
            "forecast a later step"
        )
    steps, values = store.history(until_step=cutoff_step)
    clock = None
    if getattr(forecaster, "time_axis", "step") == "lr":
        from ..record.lr_clock import clock_for_store  # only the lr axis needs it

        clock = clock_for_store(store)
    forecaster.fit(steps, np.abs(values), clock=clock)
    result: dict[str, Any] = {
        "prediction": forecaster.predict(target),
        "layer_names": np.array(store.layout.names, dtype=str),
        "layer_sizes": np.array(store.layout.sizes, dtype=np.int64),
        "target_step": target,
        "cutoff_step": int(steps[-1]),
        "n_history": int(steps.size),
        "forecaster": repr(forecaster),
        "time_axis": getattr(forecaster, "time_axis", "step"),
        "clock_assumption": getattr(clock, "assumption", "") if clock is not None else "",
    }
    if forecaster.supports_interval():
        result["lower"], result["upper"] = forecaster.predict_interval(target, coverage)
        result["coverage"] = coverage
    return result


def _training_length(store: GammaTrajectoryStore) -> int:
    total = store.metadata.get("total_steps")
    if isinstance(total, int) and not isinstance(total, bool) and total > 0:
        return total
    return int(store.steps[-1])


def _cutoff_step(at_step: int | None, cutoff: float | None, total: int) -> int:
    if (at_step is None) == (cutoff is None):
        raise ForecasterError(
            "give exactly one of --at STEP or --cutoff FRACTION (e.g. --cutoff 0.2); got "
            f"{'both' if at_step is not None else 'neither'}"
        )
    if cutoff is None:
        return int(at_step)  # type: ignore[arg-type]  # exactly one of the two is set
    if not 0.0 < cutoff <= 1.0:
        raise ForecasterError(
            f"--cutoff is a fraction of training in (0, 1]; got {cutoff}. Use --at for a step"
        )
    return round(cutoff * total)


def _npz_bytes(result: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    arrays = {key: np.asarray(value) for key, value in result.items()}
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # numpy stubs mistype **kwds
    return buffer.getvalue()
