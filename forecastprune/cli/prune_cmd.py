"""``forecastprune prune``: forecast final γ from a store, threshold, cut the model, save it.

The path is the library's, step by step: the forecaster is fitted on the store's |γ| history
up to the cutoff and predicts the final step (``forecast_store``); the coupling plan of the
chosen policy says which channels may go and which move together (``plan_channels``); the
threshold picks the channels (``select_channels``); the surgery cuts a copy of the model with
β compensation (``prune_model``); the result is saved with its channel plan (``save_pruned``)
and reloads with :func:`forecastprune.engine.load_pruned`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ..errors import ConfigError


def _shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) < 2 or min(shape) < 1:
        raise click.BadParameter(
            f"expected comma-separated positive sizes like 1,3,416,416; got {text!r}",
            param_hint="--input-shape",
        )
    return shape


@click.command("prune")
@click.option("--model", "model_name", default=None,
              help="Zoo model to build (default: the model named in the store's metadata).")
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None,
              help="State dict to load into the model first (e.g. a run's model.pt).")
@click.option("--store", "store_path", type=click.Path(path_type=Path), default=None,
              help="γ trajectory store recorded on this model (default: the bundled store).")
@click.option("--forecaster", "spec", required=True,
              help="Forecaster name or spec, e.g. 'sma(window=5)' or 'linear'.")
@click.option("--ratio", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
              help="Fraction of the prunable channels to prune (global ranking).")
@click.option("--policy", type=click.Choice(["seed", "grouped"]), default="seed",
              show_default=True,
              help="seed: only channels tied to no other layer; grouped: coupled channels "
                   "pruned together.")
@click.option("--cutoff", type=float, default=1.0, show_default=True,
              help="Fraction of training the forecaster sees (1.0: the whole recording).")
@click.option("--min-keep", type=click.IntRange(min=1), default=1, show_default=True,
              help="Channels every layer keeps at least.")
@click.option("--input-shape", default=None,
              help="Example input shape N,C,H,W for tracing (default: from the store's "
                   "metadata, else one 8x8 digits image).")
@click.option("--out", "out_path", type=click.Path(path_type=Path), required=True,
              help="Output file for the pruned model (.pt).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
@click.option("--plugins", "plugin_paths", multiple=True, type=click.Path(path_type=Path),
              help="A forecaster plugin .py file or folder to load first (repeatable).")
def prune(model_name: str | None, checkpoint: Path | None, store_path: Path | None, spec: str,
          ratio: float, policy: str, cutoff: float, min_keep: int, input_shape: str | None,
          out_path: Path, overwrite: bool, plugin_paths: Sequence[Path]) -> None:
    """Prune a model early from forecasts of its BN γ, and save the smaller model.

    Fits the forecaster on the |γ| history up to --cutoff, predicts every channel's final γ,
    prunes the lowest --ratio of the prunable channels and prints params/MACs before → after.
    The output reloads with forecastprune.engine.load_pruned(PATH).

    \b
    Example:
      forecastprune prune --store runs/dk/gammas.fpstore --checkpoint runs/dk/model.pt \\
          --forecaster sma --cutoff 0.3 --ratio 0.5 --policy grouped --out pruned.pt
    """
    if out_path.exists() and not overwrite:
        raise click.BadParameter(f"{out_path} exists; pass --overwrite to replace it",
                                 param_hint="--out")
    import torch  # heavy imports only once the command runs

    from ..engine.coupling import check_layout, plan_channels
    from ..engine.persist import save_pruned
    from ..engine.stats import compare_stats, model_stats
    from ..engine.surgery import prune_model
    from ..engine.threshold import select_channels
    from ..forecasters import get_forecaster, load_plugins
    from ..compare.replay import example_input_shape
    from ..store import GammaTrajectoryStore, bundled_store_path
    from .forecast_cmd import forecast_store

    for path in plugin_paths:
        load_plugins(path)
    forecaster = get_forecaster(spec)
    with GammaTrajectoryStore.open(store_path or bundled_store_path()) as store:
        name, kwargs = _model_spec(model_name, store.metadata)
        model = _build(name, kwargs, checkpoint)
        check_layout(model, store.layout)
        example = torch.zeros(_shape(input_shape) or example_input_shape(store.metadata))
        forecast = forecast_store(store, forecaster, cutoff=cutoff)
        layout = store.layout
    model.eval()
    plan = plan_channels(model, example, layout, policy)
    decision = select_channels(forecast["prediction"], layout, ratio=ratio,
                               prunable=plan.prunable, groups=plan.groups, min_keep=min_keep)
    pruned = prune_model(model, decision, example, plan)
    save_pruned(pruned, out_path, builder=name, kwargs=kwargs, overwrite=overwrite)
    click.echo(
        f"{name}: {forecast['forecaster']} fitted on {forecast['n_history']} snapshots up to "
        f"step {forecast['cutoff_step']}, predicting step {forecast['target_step']}; policy "
        f"{policy}: pruned {decision.n_pruned} of {plan.prunable_channels} prunable channels "
        f"({layout.total} recorded)"
    )
    if decision.collapsed:
        click.echo(f"kept by --min-keep (would have been emptied): {', '.join(decision.collapsed)}")
    click.echo(compare_stats(model_stats(model, example), model_stats(pruned, example)))
    click.echo(f"wrote {out_path}")


def _model_spec(model_name: str | None, metadata: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The zoo name and builder kwargs: --model, else the store's metadata."""
    recorded = metadata.get("model")
    name = model_name or recorded
    if not name:
        raise ConfigError(
            "the store's metadata names no model; pass --model NAME (one of the zoo's models, "
            "see forecastprune.zoo.list_models())"
        )
    kwargs = dict(metadata.get("model_kwargs") or {}) if name == recorded else {}
    return str(name), kwargs


def _build(name: str, kwargs: dict[str, Any], checkpoint: Path | None) -> Any:
    """Build the zoo model and load the checkpoint's weights into it."""
    from ..store.interchange import load_checkpoint
    from ..zoo import build_model

    model = build_model(name, **kwargs)
    if checkpoint is not None:
        state, _ = load_checkpoint(checkpoint)
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ConfigError(
                f"checkpoint {checkpoint} does not fit model {name!r} built with {kwargs}: "
                f"{str(exc).splitlines()[0]}; pass the --model (and store) it was trained as"
            ) from exc
    return model

