"""``forecastprune prune``: forecast final γ from a store, threshold, cut the model, save it.

The work is :func:`forecastprune.pipeline.offline.prune_from_store` (the library's prediction
path, threshold rule and surgery); this command resolves the model and its weights, calls it,
and saves the result with its channel plan (it reloads with
:func:`forecastprune.engine.load_pruned`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..errors import ConfigError, ForecastPruneError
from ._common import announce_slow, limit, timeout_option
from .spec_options import block_options, block_spec_from_flags, spec_from_flags, spec_options

#: the largest example input accepted for tracing (elements): 1×3×2048×2048
MAX_INPUT_ELEMENTS = 3 * 2048 * 2048


def _shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        shape = tuple(int(part) for part in text.split(",") if len(part.strip()) < 10)
    except ValueError:
        shape = ()
    if len(shape) < 2 or len(shape) != len(text.split(",")) or min(shape) < 1:
        raise click.BadParameter(
            f"expected comma-separated positive sizes like 1,3,416,416; got {text!r}",
            param_hint="--input-shape",
        )
    if math.prod(shape) > MAX_INPUT_ELEMENTS:
        raise click.BadParameter(
            f"{text} is {math.prod(shape):,} elements; tracing needs one small batch (at most "
            f"{MAX_INPUT_ELEMENTS:,} elements, e.g. 1,3,640,640) since the structure does not "
            "depend on the input size",
            param_hint="--input-shape",
        )
    return shape


@click.command("prune")
@click.option(
    "--model",
    "model_name",
    default=None,
    help="Zoo model to build (default: the model named in the store's metadata).",
)
@click.option(
    "--checkpoint",
    type=click.Path(path_type=Path),
    default=None,
    help="State dict to load into the model (default: the model.pt `forecastprune "
    "record` left beside the store).",
)
@click.option(
    "--random-init",
    is_flag=True,
    help="Prune a freshly initialised model when there is no checkpoint (a dry run "
    "of the channel plan: the weights are untrained).",
)
@click.option(
    "--store",
    "store_path",
    type=click.Path(path_type=Path),
    default=None,
    help="γ trajectory store recorded on this model (default: the bundled store).",
)
@click.option(
    "--forecaster",
    "spec",
    default="auto",
    show_default=True,
    help="Forecaster name or spec, e.g. 'auto', 'sma(window=5)' or 'linear'.",
)
@spec_options()
@click.option(
    "--cutoff",
    default="1.0",
    show_default=True,
    help="History the forecaster sees: a fraction of the run in (0, 1] (1.0: the "
    "whole recording) or step:N.",
)
@block_options
@click.option(
    "--input-shape",
    default=None,
    help="Example input shape N,C,H,W for tracing (default: from the store's "
    "metadata, else one 8x8 digits image).",
)
@click.option(
    "--ultralytics",
    "ultralytics_ckpt",
    type=click.Path(path_type=Path),
    default=None,
    help="Prune this ultralytics checkpoint (e.g. runs/detect/train/weights/best.pt) "
    "instead of a zoo model; --out is then an ultralytics checkpoint too "
    "(needs the ultralytics extra).",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(path_type=Path),
    required=True,
    help="Output file for the pruned model (.pt).",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
@click.option(
    "--plugins",
    "plugin_paths",
    multiple=True,
    type=click.Path(path_type=Path),
    help="A forecaster plugin .py file or folder to load first (repeatable).",
)
@timeout_option
def prune(
    model_name: str | None,
    checkpoint: Path | None,
    random_init: bool,
    store_path: Path | None,
    spec: str,
    cutoff: str,
    input_shape: str | None,
    ultralytics_ckpt: Path | None,
    out_path: Path,
    overwrite: bool,
    plugin_paths: Sequence[Path],
    timeout: float,
    blocks: int | None,
    block_ratio: float | None,
    block_reduce: str | None,
    **settings: Any,
) -> None:
    """Prune a model early from forecasts of its BN γ, and save the smaller model.

    Fits the forecaster on the |γ| history up to --cutoff, predicts every channel's final γ,
    prunes the lowest --ratio of the prunable channels and prints params/MACs before → after.
    With --blocks N or --block-ratio R the same forecast also removes whole residual blocks
    (depth pruning; --ratio 0 for blocks only). The output reloads with
    forecastprune.engine.load_pruned(PATH).

    \b
    Example:
      forecastprune prune --store runs/dk/gammas.fpstore --checkpoint runs/dk/model.pt \\
          --forecaster sma --cutoff 0.3 --ratio 0.5 --policy grouped --out pruned.pt
      forecastprune prune --store runs/dk/gammas.fpstore --checkpoint runs/dk/model.pt \\
          --cutoff 0.3 --ratio 0 --blocks 2 --out shallower.pt
      forecastprune prune --ultralytics runs/detect/train/weights/best.pt \\
          --store runs/yolo-gammas.fpstore --cutoff 0.3 --policy grouped --out best-pruned.pt
    """
    prune_spec = spec_from_flags(settings)
    _check_cutoff(cutoff)
    try:
        prune_spec.coupling_policy()
    except ForecastPruneError as exc:
        raise click.BadParameter(str(exc), param_hint="--policy") from None
    if out_path.exists() and not overwrite:
        raise click.BadParameter(
            f"{out_path} exists; pass --overwrite to replace it", param_hint="--out"
        )
    block_spec = block_spec_from_flags(blocks, block_ratio, block_reduce)
    if ultralytics_ckpt is not None:
        _refuse_zoo_options(model_name, checkpoint, random_init, input_shape)
        _prune_ultralytics(
            ultralytics_ckpt,
            store_path,
            spec,
            prune_spec,
            cutoff,
            out_path,
            overwrite,
            plugin_paths,
            limit(timeout),
            block_spec,
        )
        return
    shape = _shape(input_shape)
    import torch  # heavy imports only once the arguments are sound

    from ..engine.persist import save_pruned
    from ..engine.stats import compare_stats, model_stats
    from ..forecasters import load_plugins
    from ..pipeline.offline import prune_from_store
    from ..predict import build_forecaster
    from ..store import GammaTrajectoryStore, bundled_store_path
    from ..zoo.from_store import example_input_shape, model_spec

    for path in plugin_paths:
        load_plugins(path, timeout=limit(timeout))
    forecaster = build_forecaster(spec)
    with GammaTrajectoryStore.open(store_path or bundled_store_path()) as store:
        name, kwargs = model_spec(store.metadata, model_name)
        model = _model(
            name, kwargs, store.layout, lambda: _weights(checkpoint, store.path, random_init)
        )
        example = torch.zeros(shape or example_input_shape(store.metadata))
        announce_slow(forecaster, store.layout.total, timeout)
        done = prune_from_store(
            model,
            store,
            forecaster,
            cutoff=cutoff,
            spec=prune_spec,
            example_inputs=example,
            isolate=True,
            timeout=limit(timeout),
            blocks=block_spec,
        )
        total = store.layout.total
    save_pruned(done.model, out_path, builder=name, kwargs=kwargs, overwrite=overwrite)
    _report(name, done, prune_spec.policy, total)
    if done.blocks is not None:
        removed = ", ".join(done.blocks.removed) or "none"
        click.echo(
            f"removed {done.blocks.n_removed} of {len(done.blocks.scores)} removable "
            f"residual blocks ({block_spec.reduction} predicted |γ|): {removed}"
        )
    click.echo(compare_stats(model_stats(model, example), model_stats(done.model, example)))
    click.echo(f"wrote {out_path}")


def _check_cutoff(cutoff: str) -> None:
    from ..runpoint import RunPoint

    try:
        RunPoint.parse(cutoff, rules=False, what="cutoff")
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--cutoff") from None


def _refuse_zoo_options(
    model_name: str | None, checkpoint: Path | None, random_init: bool, input_shape: str | None
) -> None:
    """--ultralytics names the model and its weights itself; zoo options would be ignored."""
    given = [
        flag
        for flag, value in (
            ("--model", model_name),
            ("--checkpoint", checkpoint),
            ("--random-init", random_init),
            ("--input-shape", input_shape),
        )
        if value
    ]
    if given:
        raise click.BadParameter(
            f"{', '.join(given)} apply to zoo models; the ultralytics "
            "checkpoint brings its own model and weights — drop them",
            param_hint="--ultralytics",
        )


def _prune_ultralytics(
    checkpoint: Path,
    store_path: Path | None,
    spec: str,
    prune_spec: Any,
    cutoff: str,
    out_path: Path,
    overwrite: bool,
    plugin_paths: Sequence[Path],
    timeout: float | None,
    blocks: Any = None,
) -> None:
    """The same prune on an ultralytics checkpoint, written as an ultralytics checkpoint."""
    from ..forecasters import load_plugins
    from ..integrations.ultralytics import prune_ultralytics_checkpoint

    if store_path is None:
        raise click.BadParameter(
            "an ultralytics checkpoint needs the store recorded while training it; pass --store",
            param_hint="--store",
        )
    _check_ultralytics_file(checkpoint)
    for path in plugin_paths:
        load_plugins(path, timeout=timeout)
    done = prune_ultralytics_checkpoint(
        checkpoint,
        store_path,
        out_path,
        forecaster=spec,
        cutoff=cutoff,
        spec=prune_spec,
        overwrite=overwrite,
        blocks=blocks,
    )
    click.echo(
        f"{checkpoint}: fitted on the history up to step {done.cutoff_step}, predicting "
        f"step {done.target_step}; policy {prune_spec.policy}: params "
        f"{done.params_before:,} → "
        f"{done.params_after:,}"
    )
    if blocks is not None:
        click.echo(f"removed residual blocks: {', '.join(done.blocks) or 'none'}")
    click.echo(f"wrote {done.path}")


def _check_ultralytics_file(path: Path) -> None:
    """Refuse what cannot be an ultralytics checkpoint before the loader trips over it.

    Looked at without unpickling anything: a ``torch.save`` archive (a zip holding
    ``<name>/data.pkl``) whose pickle is a dict with a ``model`` or ``ema`` entry.
    """
    import pickletools
    import zipfile

    hint = "pass the weights file ultralytics wrote, e.g. runs/detect/train/weights/best.pt"
    if not path.is_file():
        raise click.BadParameter(f"{path} is not a file; {hint}", param_hint="--ultralytics")
    try:
        with zipfile.ZipFile(path) as archive:
            records = [
                n for n in archive.namelist() if n.count("/") == 1 and n.endswith("/data.pkl")
            ]
            opcodes = list(pickletools.genops(archive.read(records[0]))) if records else []
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise click.BadParameter(
            f"{path} is not a torch checkpoint ({exc}); {hint}", param_hint="--ultralytics"
        ) from None
    if not records:
        raise click.BadParameter(
            f"{path} is a zip archive without a torch record (<name>/data.pkl); {hint}",
            param_hint="--ultralytics",
        )
    first = next((op.name for op, _, _ in opcodes if op.name not in ("PROTO", "FRAME")), "")
    keys = {arg for _, arg, _ in opcodes if isinstance(arg, str)}
    if first != "EMPTY_DICT" or not keys & {"model", "ema"}:
        raise click.BadParameter(
            f"{path} is a torch file but not an ultralytics checkpoint "
            f"(no dict with a 'model' or 'ema' entry); {hint}",
            param_hint="--ultralytics",
        )


def _weights(checkpoint: Path | None, store_path: Path, random_init: bool) -> Path | None:
    """The checkpoint to load: --checkpoint, else the run's model.pt, else none if allowed."""
    from ..zoo.from_store import run_checkpoint

    if checkpoint is not None:
        return checkpoint
    found = run_checkpoint(store_path)
    if found is not None:
        click.echo(f"using the run's weights {found} (pass --checkpoint to choose others)")
        return found
    if random_init:
        click.echo("no checkpoint: pruning a freshly initialised model (--random-init)")
        return None
    raise ConfigError(
        f"no weights to prune: no --checkpoint was given and there is no model.pt beside "
        f"{store_path}; pass --checkpoint PATH (e.g. runs/NAME/model.pt), or --random-init to "
        "prune an untrained model"
    )


def _model(name: str, kwargs: dict[str, Any], layout: Any, weights: Any) -> Any:
    """The zoo model, checked against the store's layout before any weights are looked for."""
    from ..engine.coupling import check_layout
    from ..zoo import build_model
    from ..zoo.from_store import load_weights

    model = build_model(name, **kwargs)
    check_layout(model, layout)
    checkpoint = weights()
    if checkpoint is not None:
        load_weights(model, checkpoint)
    return model.eval()


def _report(name: str, done: Any, policy: str, total: int) -> None:
    prediction, decision = done.prediction, done.decision
    click.echo(
        f"{name}: {prediction.forecaster} fitted on {prediction.n_history} snapshots up to "
        f"step {prediction.cutoff_step}, predicting step {prediction.target_step}; policy "
        f"{policy}: pruned {decision.n_pruned} of {done.plan.prunable_channels} prunable "
        f"channels ({total} recorded)"
    )
    if decision.collapsed:
        click.echo(f"kept by --min-keep (would have been emptied): {', '.join(decision.collapsed)}")
