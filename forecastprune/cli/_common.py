"""Pieces several commands share: the forecaster time limit and its flag.

Kept apart from the commands so each one adds the same ``--timeout`` with the same meaning and
``compare``'s default, without restructuring their option lists.
"""

from __future__ import annotations

from typing import Any

import click

from ..isolation import DEFAULT_TIMEOUT, MAX_TIMEOUT

#: ``--timeout`` for commands that run one forecaster (and import plugins) in-line
timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(0.0, MAX_TIMEOUT),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds the forecaster may take (fit and predict, in a worker process that is "
    "stopped, with anything it started, at the limit); also bounds importing each "
    "--plugins file. 0: no limit.",
)


def limit(timeout: float) -> float | None:
    """``--timeout`` as the library takes it: 0 means no limit (None)."""
    return timeout or None


def announce_slow(forecaster: Any, channels: int, timeout: float) -> None:
    """Say up front when a forecaster fits one model per channel (statsforecast, sktime):
    such fits take seconds to minutes with nothing else to show meanwhile."""
    if forecaster.get_tag("vectorized"):
        return
    bound = f"--timeout stops it after {timeout:g} s" if timeout else "no --timeout is set"
    click.echo(
        f"{forecaster!r} fits one model per channel ({channels:,} here); this can take "
        f"minutes ({bound})",
        err=True,
    )
