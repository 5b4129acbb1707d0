"""``forecastprune fit-forecaster``: fit ``learned`` or ``learned_gbr`` on recorded runs."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import split_list
from ..forecasters.training import DEFAULT_WEIGHTING, WEIGHTINGS

#: a penalty this large already shrinks every coefficient to zero
MAX_ALPHA = 1e12


def _finite_alpha(value: float) -> float:
    if value != value:  # NaN passes every range comparison
        raise click.BadParameter(
            f"expected a penalty from 0 to {MAX_ALPHA:g}; got nan", param_hint="--alpha"
        )
    return value


@click.command("fit-forecaster")
@click.option(
    "--stores",
    "stores",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path, exists=True),
    help="A recorded store to learn from; repeatable.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Where to write the model (JSON for ridge, a skops file for gbr).",
)
@click.option(
    "--kind",
    type=click.Choice(["ridge", "gbr"]),
    default="ridge",
    show_default=True,
    help="ridge: the `learned` regression; gbr: the `learned_gbr` ranking model "
    "(gradient boosting over channel and layer features).",
)
@click.option(
    "--cutoffs",
    default="0.05,0.1,0.2,0.3",
    show_default=True,
    help="Comma-separated cutoffs at which training examples are taken.",
)
@click.option(
    "--alpha",
    type=click.FloatRange(0.0, MAX_ALPHA),
    default=0.01,
    show_default=True,
    callback=lambda ctx, param, value: _finite_alpha(value),
    help="Ridge penalty (per example, standardized features).",
)
@click.option(
    "--weighting",
    type=click.Choice(WEIGHTINGS),
    default=DEFAULT_WEIGHTING,
    show_default=True,
    help="gbr only: weigh every channel example alike (channel), or every run alike (run), so "
    "that a run with many channels does not outvote the others.",
)
@click.option(
    "--use-clock/--no-clock",
    default=True,
    show_default=True,
    help="Measure slopes and horizons in cumulative LR where the store has LRs.",
)
def fit_forecaster(
    stores: tuple[Path, ...],
    out: Path,
    kind: str,
    cutoffs: str,
    alpha: float,
    weighting: str,
    use_clock: bool,
) -> None:
    """Fit a cross-channel forecaster's model on other recorded runs.

    ``--kind ridge`` writes plain JSON (coefficients and standardization) for
    ``--forecaster "learned(model='MODEL.json')"``; ``--kind gbr`` writes a skops file (loaded
    without pickle, trusting only the fitted trees' type) for
    ``--forecaster "learned_gbr(model='MODEL.skops')"``. Use them in forecast, prune, compare,
    benchmark or train.

    \b
    Example:
      forecastprune fit-forecaster --stores runs/a/gammas.fpstore --stores runs/b/gammas.fpstore \\
          --out model.json
      forecastprune compare --store runs/c/gammas.fpstore \\
          --forecasters "learned(model='model.json')"
    """
    from ..forecasters.training import fit_learned, fit_learned_gbr

    items = split_list(cutoffs)
    if not items:
        raise click.BadParameter(f"got {cutoffs!r}, which names no cutoff", param_hint="--cutoffs")
    progress = lambda p: click.echo(f"reading {p}", err=True)  # noqa: E731 - one-line callback
    if kind == "gbr":
        booster = fit_learned_gbr(list(stores), items, use_clock, progress, weighting)
        written = booster.save(out)
        click.echo(
            f"fitted on {booster.info['examples']} channel examples from {len(stores)} "
            f"runs; wrote {written}"
        )
        return
    model = fit_learned(list(stores), items, alpha, use_clock, progress=progress)
    path = model.save(out)
    click.echo(
        f"fitted on {model.info['examples']} channel examples from {len(stores)} runs; wrote {path}"
    )
    for name, coef in zip(model.features, model.coef):
        click.echo(f"  {name:18s} {coef:+.4f}")
