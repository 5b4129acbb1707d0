"""``forecastprune store``: inspect, import and export γ trajectory stores."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import numpy as np

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
#: ``store info`` checks every value of a store this small (well under a second), else only
#: the final snapshot and points to ``store verify``
_INFO_VERIFY_VALUES = 50_000_000

_overwrite = click.option("--overwrite", is_flag=True, help="Replace an existing output.")
_dtype = click.option(
    "--dtype",
    type=click.Choice(["float32", "float16"]),
    default="float32",
    show_default=True,
    help="Value dtype of the new store (float16 halves the size; reads return float32).",
)


@click.group()
def store() -> None:
    """Inspect, import and export γ trajectory stores.

    \b
    Example:
      forecastprune store info
      forecastprune store verify runs/dk/gammas.fpstore
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
        summary["values_check"] = _values_check(opened)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        click.echo(format_info(summary))
    if summary["values_check"]["bad_values"]:
        click.echo(f"warning: {summary['values_check']['verdict']}", err=True)


@store.command("verify")
@click.argument("path", required=False, type=click.Path(path_type=Path))
def verify(path: Path | None) -> None:
    """Check every snapshot of the store at PATH (default: the bundled store).

    Every γ must be finite and every step a training step (≥ 0). Lists where NaN/Inf values
    sit (per layer, and the first few by step, layer and channel); exits 2 if any do.

    \b
    Example:
      forecastprune store verify runs/dk/gammas.fpstore
    """
    from ..store.verify import verify_store

    check = verify_store(path or bundled_store_path())
    if check.ok:
        click.echo(check.summary())
        return
    for layer, count in check.per_layer.items():
        click.echo(f"  {layer:<40} {count:>8} NaN/Inf")
    for bad in check.listed:
        click.echo(f"  {bad}")
    raise StoreError(check.summary())


@store.command("import")
@click.argument("npz", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--fingerprint", default=None, help="Model fingerprint to record.")
@click.option(
    "--metadata",
    "items",
    multiple=True,
    metavar="KEY=VALUE",
    help="Metadata to record (JSON values such as numbers are kept typed); repeatable.",
)
@click.option(
    "--lr-schedule",
    default=None,
    help="Planned LR schedule, e.g. 0:0.1,3000:0.01 or a JSON list / file, so "
    "time_axis=lr forecasters work without recorded LRs.",
)
@_dtype
@_overwrite
def import_cmd(
    npz: Path,
    out: Path,
    fingerprint: str | None,
    items: tuple[str, ...],
    lr_schedule: str | None,
    dtype: str,
    overwrite: bool,
) -> None:
    """Build a store at OUT from the trajectories in NPZ.

    NPZ holds steps (T,), gammas (T, C) raw signed γ, layer_names (L,), layer_sizes (L,) and
    optionally lrs (T,), metadata (a JSON string) and fingerprint. Other arrays are not kept
    and are listed.

    \b
    Example:
      forecastprune store import my_run.npz runs/mine.fpstore
      forecastprune store import run.npz runs/r.fpstore --lr-schedule 0:0.1,3000:0.01 \\
          --metadata total_steps=6000 --metadata model=resnet
    """
    from ..store.import_options import parse_lr_schedule, parse_metadata_items, unkept_arrays

    metadata = parse_metadata_items(items)
    if lr_schedule is not None:
        metadata["lr_schedule"] = parse_lr_schedule(lr_schedule)
    with import_npz(
        npz, out, metadata=metadata, fingerprint=fingerprint, dtype=dtype, overwrite=overwrite
    ) as made:
        click.echo(_written(made))
    dropped = unkept_arrays(npz)
    if dropped:
        click.echo(
            f"not kept (the store has no place for them): arrays {', '.join(dropped)}; "
            "pass values you need with --metadata KEY=VALUE",
            err=True,
        )


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
@click.option(
    "--every",
    type=click.IntRange(min=1),
    default=None,
    help="Keep every K-th snapshot (and the last).",
)
@click.option(
    "--count",
    type=click.IntRange(min=2),
    default=None,
    help="Keep N snapshots spread evenly (first and last included).",
)
@click.option(
    "--dtype",
    type=click.Choice(["float32", "float16"]),
    default=None,
    help="Value dtype of the copy (default: the source's; float16 halves the size).",
)
@_overwrite
def thin_cmd(
    source: Path,
    out: Path,
    every: int | None,
    count: int | None,
    dtype: str | None,
    overwrite: bool,
) -> None:
    """Copy SOURCE into a new store OUT with fewer snapshots and/or float16 values.

    \b
    Example:
      forecastprune store thin runs/yolo/gammas.fpstore runs/yolo/thin.fpstore \\
          --count 2000 --dtype float16
    """
    from ..store.thin import thin_store

    with thin_store(
        source, out, every=every, count=count, dtype=dtype, overwrite=overwrite
    ) as made:
        click.echo(_written(made))


@store.command("from-checkpoints")
@click.argument("out", type=click.Path(path_type=Path))
@click.argument("checkpoints", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--steps",
    default=None,
    help="Comma-separated step of each checkpoint, in order "
    "(default: the last integer in each file name).",
)
@click.option(
    "--step-pattern",
    default=r"(\d+)",
    show_default=True,
    help="Regex whose last match in the file name (without suffix) is the step.",
)
@click.option(
    "--layers",
    default=None,
    help="Comma-separated BN layer names to record (default: every BN layer).",
)
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
        checkpoints,
        out,
        steps=_int_list(steps, "--steps"),
        step_pattern=step_pattern,
        layers=_name_list(layers),
        dtype=dtype,
        overwrite=overwrite,
    )
    with made:
        click.echo(_written(made))


def format_info(summary: dict[str, Any]) -> str:
    """Render :meth:`GammaTrajectoryStore.info` as readable lines."""
    layout = summary["layout"]
    steps = (
        f"steps {summary['first_step']}..{summary['last_step']}"
        if summary["snapshots"]
        else "no snapshots yet"
    )
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
    check = summary["values_check"]
    if check["scope"] == "all" and not check["bad_values"]:
        lines.append(f"values     all {summary['snapshots']} snapshots finite")
    elif check["scope"] != "none":
        lines.append(f"values     {'DAMAGED: ' if check['bad_values'] else ''}{check['verdict']}")
    percentiles = summary["final_abs_gamma_percentiles"]
    if percentiles:
        cells = ", ".join(f"{k} {v:.4g}" for k, v in percentiles.items())
        lines.append(f"final |γ|  {cells}")
    return "\n".join(lines)


def _values_check(store: GammaTrajectoryStore) -> dict[str, Any]:
    """NaN/Inf in the store: every snapshot of a small store, the final one of a large one."""
    from ..store.verify import check_finite, verify_store

    if len(store) == 0:
        return {"scope": "none", "bad_values": 0, "verdict": "no snapshots to check"}
    if len(store) * store.layout.total <= _INFO_VERIFY_VALUES:
        check = verify_store(store.path)
        return {
            "scope": "all",
            "bad_values": check.bad_values + len(check.problems),
            "verdict": check.summary(),
        }
    step, row = store.final()
    try:
        check_finite(store.path, np.array([step]), row[None, :], store.layout)
    except StoreError as exc:
        return {"scope": "final", "bad_values": int((~np.isfinite(row)).sum()), "verdict": str(exc)}
    return {
        "scope": "final",
        "bad_values": 0,
        "verdict": f"final snapshot finite; `forecastprune store verify {store.path}` "
        "checks all of them",
    }


def _written(made: GammaTrajectoryStore) -> str:
    return (
        f"wrote {made.path}: {len(made)} snapshots x {made.layout.total} channels "
        f"in {len(made.layout)} BN layers"
    )


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
        values = [int(item) for item in text.split(",") if item.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 0:
        raise StoreError(
            f"{option} must be comma-separated training steps (whole numbers ≥ 0) "
            f"like 100,200,300; got {text!r}"
        )
    return values


def _name_list(text: str | None) -> list[str] | None:
    if text is None:
        return None
    return [item.strip() for item in text.split(",") if item.strip()]
