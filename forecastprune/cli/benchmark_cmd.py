"""``forecastprune benchmark``: every forecaster on every run of the trajectory suite."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from ..config import split_list
from ..errors import ConfigError
from .compare_cmd import NOT_REPLAYED
from .spec_options import spec_from_flags, spec_options

#: forecasters benchmarked when --forecasters is not given
DEFAULT_FORECASTERS = ("auto", "sma", "ema", "linear", "linear(time_axis=lr)", "arima")
DEFAULT_CUTOFFS = ("0.05", "0.1", "0.2", "0.3")

EXAMPLE = """
\b
Example:
  forecastprune benchmark --forecasters auto,arima --cutoffs 0.1,0.2 --plot leaderboard.png
  forecastprune benchmark --suite runs/ --run vgg-s3e-3-step --json suite.json
  forecastprune benchmark --corpus torchvision,shapes --jobs 2   # makes and caches the runs
"""


@click.command("benchmark", epilog=EXAMPLE)
@click.option(
    "--suite",
    "suite",
    type=click.Path(path_type=str, file_okay=False),
    help="Folder of *.fpstore runs (+ optional suite.json). [default: the bundled suite]",
)
@click.option(
    "--corpus",
    "corpus",
    metavar="FAMILIES",
    help="Benchmark on the trajectory corpus instead, making the runs the cache lacks first: "
    "'all', a group (zoo-digits, torchvision, shapes, ultralytics, smoke), families "
    "('tv-resnet18/adamw-warm-cos-g1') or patterns ('tv-*/*'), comma-separated; 'list' "
    "lists them.",
)
@click.option(
    "--cache",
    type=click.Path(path_type=str, file_okay=False),
    help="The corpus folder for --corpus. [default: $FORECASTPRUNE_CACHE/corpus, else "
    "$XDG_CACHE_HOME/forecastprune/corpus, else ~/.cache/forecastprune/corpus]",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Corpus runs made at once (each on one CPU thread).",
)
@click.option("--run", "only", multiple=True, help="Benchmark only this run; repeatable.")
@click.option(
    "--forecasters",
    default=",".join(DEFAULT_FORECASTERS),
    show_default=True,
    help="Comma-separated forecaster specs; naive always runs as the control.",
)
@click.option(
    "--cutoffs",
    default=",".join(DEFAULT_CUTOFFS),
    show_default=True,
    help="Comma-separated cutoffs: fractions of the run, or step:N.",
)
@spec_options(skip=NOT_REPLAYED)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.0, min_open=True),
    default=None,
    help="Seconds per forecaster and run (all cutoffs together).",
)
@click.option(
    "--bootstrap-coverage",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=0.9,
    show_default=True,
    help="Coverage of the bootstrap intervals.",
)
@click.option(
    "--plugins",
    multiple=True,
    type=click.Path(path_type=str),
    help="Forecaster plugin file or folder; repeatable.",
)
@click.option(
    "--plot", type=click.Path(path_type=str, dir_okay=False), help="Write the leaderboard PNG here."
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=str, dir_okay=False),
    help="Write per-run gains and summaries as JSON here.",
)
def benchmark(**options: Any) -> None:
    """Replay forecasters on every run of the trajectory suite; report the mean IoU gain over
    naive per cutoff with bootstrap intervals over runs, and each forecaster's worst run.

    With --corpus, the runs are those of the trajectory corpus's chosen families: the ones not
    in the cache yet are recorded first (real training, seconds to a minute a run; resumable:
    a run made once is never made again).
    """
    started = time.perf_counter()
    specs = _items(options["forecasters"], "--forecasters")
    cutoffs = _items(options["cutoffs"], "--cutoffs")
    from ..compare.leaderboard import format_suite, leaderboard_png, suite_json
    from ..compare.report import write_file
    from ..compare.settings import ReplaySettings
    from ..compare.suite import load_suite, run_suite
    from ..forecasters import load_plugins
    from ..isolation import DEFAULT_TIMEOUT

    for path in options["plugins"]:
        load_plugins(path, timeout=options["timeout"] or DEFAULT_TIMEOUT)
    spec = spec_from_flags(options, skip=NOT_REPLAYED)
    settings = ReplaySettings(cutoffs=cutoffs, spec=spec, timeout=options["timeout"])
    settings.validate()  # before any corpus run is made: a typo costs no training
    folder, only = options["suite"], options["only"]
    if options["corpus"] is not None:
        folder, only = _corpus(options)
        if folder is None:
            return
    elif options["cache"] is not None or options["jobs"] != 1:
        raise ConfigError("--cache and --jobs go with --corpus FAMILIES; add it or drop them")
    runs = load_suite(folder, only)
    result = run_suite(
        runs, specs, settings, progress=lambda name: click.echo(f"replaying {name}", err=True)
    )
    result.coverage = options["bootstrap_coverage"]
    click.echo(format_suite(result))
    if options["json_path"]:
        text = json.dumps(suite_json(result), indent=2, allow_nan=False) + "\n"
        click.echo(f"wrote {write_file(options['json_path'], text)}")
    if options["plot"]:
        click.echo(f"wrote {write_file(options['plot'], leaderboard_png(result))}")
    click.echo(
        f"benchmarked {len(result.forecasters)} forecasters on {len(runs)} runs in "
        f"{time.perf_counter() - started:.1f} s"
    )


def _corpus(options: dict[str, Any]) -> tuple[str | None, tuple[str, ...]]:
    """Make the chosen corpus families' missing runs; their folder and run names to replay
    (``(None, ())`` after ``--corpus list``)."""
    from ..corpus import build_corpus, corpus_runs, default_cache, families, select_families

    if options["suite"] is not None:
        raise ConfigError("pass --suite DIR or --corpus FAMILIES, not both")
    if options["corpus"] == "list":
        for family, group in families().items():
            count = sum(r.family == family for r in corpus_runs())
            click.echo(f"{group:12s} {family} ({count} runs)")
        return None, ()
    chosen = select_families(options["corpus"])
    cache = options["cache"] or str(default_cache())
    click.echo(f"corpus: {len(chosen)} families in {cache}", err=True)
    report = build_corpus(
        cache, chosen, jobs=options["jobs"], echo=lambda line: click.echo(line, err=True)
    )
    if report.made:
        click.echo(f"made {len(report.made)} runs, {len(report.cached)} were cached", err=True)
    if not report.available:
        raise ConfigError(
            f"none of the runs of --corpus {options['corpus']} could be made here (see above)"
        )
    only = tuple(options["only"])
    unknown = sorted(set(only) - set(report.available))
    if unknown:
        raise ConfigError(
            f"--run: {unknown} are not runs of the chosen --corpus families; they are "
            f"{report.available}"
        )
    return cache, only or tuple(report.available)


def _items(text: str, flag: str) -> list[str]:
    items = split_list(text)
    if not items:
        raise click.BadParameter(f"got {text!r}, which names nothing", param_hint=flag)
    return items
