"""``forecastprune store``: inspect, import and export γ trajectory stores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..errors import StoreError
from ..store import (
    GammaTrajectoryStore,
    bundled_store_path,
    export_npz,
    import_npz,
    store_from_checkpoints,
)

#: at most this many layers are listed one per line by ``store info``
_MAX_LAYERS_SHOWN = 12

_overwrite = click.option("--overwrite", is_flag=True, help="Replace an existing output.")
_dtype = click.option(
    "--dtype", type=click.Choice(["float32", "float16"]), default="float32", show_default=True,
    help="Value dtype of the new store (float16 halves the size; reads return float32).",
)


@click.group()
def store() -> None:
    """Inspect, import and export γ trajectory stores.

    \b
    Example:
      forecastprune store info
      forecastprune store export runs/dk/gammas.fpstore gammas.npz
    """


@store.command("info")
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info(path: Path | None, as_json: bool) -> None:
    """Summarize the store at PATH (default: the bundled store).

    Prints the layout, the number of snapshots and their step range, the size on disk, the
    metadata and the percentiles of |γ| at the final step.

    \b
    Example:
      forecastprune store info runs/dk/gammas.fpstore
    """
    with GammaTrajectoryStore.open(path or bundled_store_path()) as opened:
        summary = opened.info()
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(format_info(summary))


@store.command("import")
@click.argument("npz", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--fingerprint", default=None, help="Model fingerprint to record.")
@_dtype
@_overwrite
def import_cmd(npz: Path, out: Path, fingerprint: str | None, dtype: str, overwrite: bool) -> None:
    """Build a store at OUT from the trajectories in NPZ.

    NPZ holds steps (T,), gammas (T, C) raw signed γ, layer_names (L,), layer_sizes (L,) and
    optionally lrs (T,), metadata (a JSON string) and fingerprint.

    \b
    Example:
      forecastprune store import my_run.npz runs/mine.fpstore
    """
    with import_npz(npz, out, fingerprint=fingerprint, dtype=dtype, overwrite=overwrite) as made:
        click.echo(_written(made))


@store.command("export")
@click.argument("store_path", metavar="STORE", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@_overwrite
def export_cmd(store_path: Path, out: Path, overwrite: bool) -> None:
    """Write the store at STORE to the NPZ file OUT.

    \b
    Example:
      forecastprune store export runs/dk/gammas.fpstore gammas.npz
    """
    written = export_npz(store_path, out, overwrite=overwrite)
    click.echo(f"wrote {written}")


@store.command("thin")
@click.argument("source", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--every", type=click.IntRange(min=1), default=None,
              help="Keep every K-th snapshot (and the last).")
@click.option("--count", type=click.IntRange(min=2), default=None,
              help="Keep N snapshots spread evenly (first and last included).")
@click.option("--dtype", type=click.Choice(["float32", "float16"]), default=None,
              help="Value dtype of the copy (default: the source's; float16 halves the size).")
@_overwrite
def thin_cmd(source: Path, out: Path, every: int | None, count: int | None, dtype: str | None,
             overwrite: bool) -> None:
    """Copy SOURCE into a new store OUT with fewer snapshots and/or float16 values.

    \b
    Example:
      forecastprune store thin runs/yolo/gammas.fpstore runs/yolo/thin.fpstore \\
          --count 2000 --dtype float16
    """
    from ..store.thin import thin_store

    with thin_store(source, out, every=every, count=count, dtype=dtype,
                    overwrite=overwrite) as made:
        click.echo(_written(made))


@store.command("from-checkpoints")
@click.argument("out", type=click.Path(path_type=Path))
@click.argument("checkpoints", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--steps", default=None, help="Comma-separated step of each checkpoint, in order "
              "(default: the last integer in each file name).")
@click.option("--step-pattern", default=r"(\d+)", show_default=True,
              help="Regex whose last match in the file name (without suffix) is the step.")
@click.option("--layers", default=None, help="Comma-separated BN layer names to record "
              "(default: every BN layer).")
@_dtype
@_overwrite
def from_checkpoints(
    out: Path,
    checkpoints: tuple[Path, ...],
    steps: str | None,
    step_pattern: str,
    layers: str | None,
    dtype: str,
    overwrite: bool,
) -> None:
    """Build a store at OUT from state-dict checkpoints CKPT..., one snapshot each.

    \b
    Example:
      forecastprune store from-checkpoints runs/ck.fpstore ckpt/epoch_*.pt
    """
    made = store_from_checkpoints(
        checkpoints, out, steps=_int_list(steps, "--steps"), step_pattern=step_pattern,
        layers=_name_list(layers), dtype=dtype, overwrite=overwrite,
    )
    with made:
        click.echo(_written(made))


def format_info(summary: dict[str, Any]) -> str:
    """Render :meth:`GammaTrajectoryStore.info` as readable lines."""
    layout = summary["layout"]
    steps = (f"steps {summary['first_step']}..{summary['last_step']}"
             if summary["snapshots"] else "no snapshots yet")
    lines = [
        f"store      {summary['path']}",
        f"format     v{summary['format_version']}, {summary['dtype']}, "
        f"{_human_bytes(summary['size_bytes'])} on disk",
        f"snapshots  {summary['snapshots']} ({steps}; LR known at {summary['lr_recorded']})",
        f"layout     {summary['layers']} BN layers, {summary['channels']} channels",
    ]
    shown = layout if len(layout) <= _MAX_LAYERS_SHOWN else layout[: _MAX_LAYERS_SHOWN - 1]
    lines += [f"  {item['name']:<40} {item['channels']:>6}" for item in shown]
    if len(shown) < len(layout):
        lines.append(f"  ... and {len(layout) - len(shown)} more (use --json for all)")
    if summary["fingerprint"]:
        lines.append(f"fingerprint {summary['fingerprint']}")
    for key, value in sorted(summary["metadata"].items()):
        lines.append(f"meta       {key} = {json.dumps(value)[:100]}")
    percentiles = summary["final_abs_gamma_percentiles"]
    if percentiles:
        cells = ", ".join(f"{k} {v:.4g}" for k, v in percentiles.items())
        lines.append(f"final |γ|  {cells}")
    return "\n".join(lines)


def _written(made: GammaTrajectoryStore) -> str:
    return (f"wrote {made.path}: {len(made)} snapshots x {made.layout.total} channels "
            f"in {len(made.layout)} BN layers")


def _human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def _int_list(text: str | None, option: str) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise StoreError(
            f"{option} must be comma-separated integers like 100,200,300; got {text!r}"
        ) from None


def _name_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [item.strip() for item in text.split(",") if item.strip()]
