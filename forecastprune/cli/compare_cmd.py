"""``forecastprune compare``: the forecaster ablation on a recorded store."""

from __future__ import annotations

import dataclasses
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from ..compare.settings import ReplaySettings
from ..config import load_config, split_list, with_overrides
from ..engine.spec import PruneKeys, PruneSpec
from ..errors import ConfigError, ForecastPruneError
from .spec_options import block_options, block_spec_from_flags, spec_options

#: prune settings a replay does not use: it scores at ratios, and without intervals
NOT_REPLAYED = ("threshold", "uncertainty", "coverage")

#: forecasters compared when neither a flag nor a config names any
DEFAULT_FORECASTERS = ("auto", "sma", "ema", "linear", "arima")


_REPLAY = ReplaySettings()


@dataclass(frozen=True)
class CompareConfig(PruneKeys):
    """Every key of ``compare``'s config file; each is also a flag of the same name.

    See configs/compare.yaml for a documented example,
    :class:`~forecastprune.engine.spec.PruneSpec` for the prune keys (their defaults are the
    spec's, so ``compare`` scores the set ``prune`` cuts) and
    :class:`~forecastprune.compare.settings.ReplaySettings` for the replay keys.
    """

    store: str | None = None
    forecasters: tuple[str, ...] = DEFAULT_FORECASTERS
    cutoffs: tuple[str, ...] = tuple(str(c) for c in _REPLAY.cutoffs)
    # several ratios, one block of metrics each; the prune keys (policy, ...) are inherited
    ratio: tuple[float, ...] = (PruneSpec().ratio,)  # type: ignore[assignment]
    eps: float = _REPLAY.eps
    timeout: float | None = _REPLAY.timeout
    eb_spacing: int | None = _REPLAY.eb_spacing
    blocks: int | None = None
    block_ratio: float | None = None
    block_reduce: str | None = None  # None: BlockSpec's default
    plugins: tuple[str, ...] = ()
    json: str | None = None
    csv: str | None = None
    out: str | None = None
    html: bool = False


EXAMPLE = """
\b
Example:
  forecastprune compare --forecasters sma,linear,'arima(p=2,d=1,q=1)' \\
      --cutoffs 0.05,0.1,0.2 --ratio 0.5 --ratio 0.7 --out report/ --html
"""


@click.command("compare", epilog=EXAMPLE)
@click.option(
    "--store",
    "store",
    type=click.Path(path_type=str),
    help="Trajectory store to replay (default: the bundled store).",
)
@click.option(
    "--forecasters",
    help="Comma-separated forecaster specs, or 'all'. naive is "
    "always added as the control. [default: auto,sma,ema,linear,arima]",
)
@click.option(
    "--cutoffs",
    help="Comma-separated cutoffs: fractions of the run in (0, 1) "
    "like 0.1, or steps like step:500. [default: 0.05,0.1,0.2,0.3,0.5]",
)
@spec_options(several_ratios=True, skip=NOT_REPLAYED)
@click.option(
    "--eps",
    type=float,
    help="Collapsed set: final |γ| below EPS × the largest final |γ|. [default: 1e-3]",
)
@click.option(
    "--timeout",
    type=float,
    help="Seconds per forecaster (all cutoffs together); "
    f"0: no limit. [default: {_REPLAY.timeout:g}]",
)
@click.option(
    "--eb-spacing",
    type=int,
    help="Steps between Early-Bird masks [default: one epoch, else 5% of the run].",
)
@block_options
@click.option(
    "--plugins",
    multiple=True,
    type=click.Path(path_type=str),
    help="Forecaster plugin file or folder; repeatable.",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=str),
    help="YAML file with any of these options (flags win), e.g. configs/compare.yaml.",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=str),
    help="Write JSON here ('-': to standard output, the table then to stderr).",
)
@click.option("--csv", "csv_path", type=click.Path(path_type=str), help="Write CSV here.")
@click.option("--out", type=click.Path(path_type=str), help="Folder for the PNG plots.")
@click.option("--html/--no-html", default=None, help="Also write OUT/report.html.")
def compare(
    config_path: str | None, json_path: str | None, csv_path: str | None, **flags: Any
) -> None:
    """Replay forecasters on a recorded γ store and compare their early pruning masks.

    For each cutoff, every forecaster sees only the |γ| history up to it and predicts |γ| at
    the final step; its pruned set is compared with the one the actual final |γ| gives (IoU,
    tie-aware IoU, precision, recall, Hamming distance, Spearman ρ, MAE, time). Exits 1 only
    when every requested forecaster fails.
    """
    started = time.perf_counter()
    config = _config(config_path, flags, json_path, csv_path)
    from ..compare.replay import replay  # heavy imports only once the arguments are sound
    from ..compare.report import format_table

    _load_plugins(config.plugins, config.timeout or None)
    to_stderr = config.json == "-"  # standard output carries the JSON alone then
    with _open_store(config.store) as store:
        with _Progress() as progress:
            result = replay(store, list(config.forecasters), _settings(config), progress)
        click.echo(format_table(result), err=to_stderr)
        _write_outputs(config, result, store)
    click.echo(
        f"\ncompared {len(result.forecasters)} forecasters × {len(result.cutoffs)} "
        f"cutoffs in {time.perf_counter() - started:.1f} s",
        err=to_stderr,
    )
    if result.all_failed:
        click.echo("Error: every requested forecaster failed; see the messages above", err=True)
        sys.exit(1)


def _config(
    path: str | None, flags: dict[str, Any], json_path: str | None, csv_path: str | None
) -> CompareConfig:
    config = load_config(path, CompareConfig) if path else CompareConfig()
    flags = dict(flags, json=json_path, csv=csv_path)
    for name in ("forecasters", "cutoffs"):
        if flags[name] is not None:
            flags[name] = _items(flags[name], f"--{name}")
    for text in flags["cutoffs"] or ():
        _check_cutoff(text)
    config = with_overrides(config, **flags)
    _settings(config)  # every setting checked before any heavy import
    if config.html and not config.out:
        raise ConfigError("--html writes OUT/report.html next to the plots; pass --out DIR too")
    _check_outputs(config)
    return config


def _check_outputs(config: CompareConfig) -> None:
    """Refuse output paths that cannot work before the replay spends minutes on the work."""
    if config.out and Path(config.out).exists() and not Path(config.out).is_dir():
        raise ConfigError(
            f"--out {config.out} is a file; --out names a folder for the plots "
            "(it is created if missing)"
        )
    for flag, path in (("--json", config.json), ("--csv", config.csv)):
        if path and path != "-" and Path(path).is_dir():
            raise ConfigError(f"{flag} {path} is a folder; name the file to write")
    if config.csv == "-":
        raise ConfigError("--csv - is not supported; '-' (standard output) is for --json")


def _items(text: str, flag: str) -> tuple[str, ...]:
    """The comma-separated items of a list flag; an empty list is an error, not the default."""
    items = tuple(split_list(text))
    if not items:
        raise click.BadParameter(
            f"got {text!r}, which names nothing; give one or more "
            "comma-separated items, or leave the flag out for the default",
            param_hint=flag,
        )
    return items


def _check_cutoff(text: str) -> None:
    from ..runpoint import RunPoint  # light: validates the syntax before any heavy work

    try:
        RunPoint.parse(text, rules=False, what="cutoff")
    except ConfigError as exc:
        raise click.BadParameter(str(exc), param_hint="--cutoffs") from None


def _settings(config: CompareConfig) -> ReplaySettings:
    try:
        keys = dataclasses.replace(config, ratio=config.ratio[0] if config.ratio else None)
        spec = PruneKeys.prune_spec(keys)
        settings = ReplaySettings(
            cutoffs=config.cutoffs,
            spec=spec,
            ratios=config.ratio,
            eps=config.eps,
            timeout=config.timeout or None,  # 0 (or null in the config): no limit
            eb_spacing=config.eb_spacing,
            blocks=_block_spec(config),
        )
        settings.validate()
    except ForecastPruneError as exc:
        raise ConfigError(str(exc)) from None
    return settings


def _block_spec(config: CompareConfig) -> Any:
    """The block settings when --blocks or --block-ratio is given (judged with bIoU, needs the
    store's model in the zoo), else None."""
    return block_spec_from_flags(config.blocks, config.block_ratio, config.block_reduce)


def _load_plugins(paths: tuple[str, ...], timeout: float | None) -> None:
    from ..forecasters import load_plugins

    for path in paths:
        load_plugins(path, timeout=timeout)  # --timeout bounds importing each file too


def _open_store(path: str | None) -> Any:
    from ..store import GammaTrajectoryStore, bundled_store_path

    return GammaTrajectoryStore.open(path if path is not None else bundled_store_path())


class _Progress:
    """A tqdm bar over forecasters × cutoffs on stderr, created once the total is known."""

    def __enter__(self) -> Any:
        self.bar = None
        return self.update

    def update(self, label: str, done: int, total: int) -> None:
        if self.bar is None:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=total, desc="compare", unit="fit", file=sys.stderr, leave=False, disable=None
            )
        self.bar.set_postfix_str(label, refresh=False)
        self.bar.update(done - self.bar.n)

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.close()


def _write_outputs(config: CompareConfig, result: Any, store: Any) -> None:
    from ..compare.report import dumps_json, to_csv, to_html, write_file

    to_stderr = config.json == "-"
    if config.json == "-":
        click.echo(dumps_json(result))
    elif config.json:
        click.echo(f"wrote {write_file(config.json, dumps_json(result))}")
    if config.csv:
        click.echo(f"wrote {write_file(config.csv, to_csv(result))}", err=to_stderr)
    if config.out:
        import numpy as np

        from ..compare.plots import make_plots

        # the heat map needs no more columns than a figure has pixels: read ≤ 400 snapshots
        rows = np.unique(np.linspace(0, len(store) - 1, 400).astype(np.int64))
        images = make_plots(result, store.steps[rows], np.abs(store.view()[rows]))
        for name, data in images.items():
            write_file(Path(config.out) / name, data)
        click.echo(f"wrote {len(images)} plots to {config.out}", err=to_stderr)
        if config.html:
            page = write_file(Path(config.out) / "report.html", to_html(result, images))
            click.echo(f"wrote {page}", err=to_stderr)
