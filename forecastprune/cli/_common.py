"""Pieces several commands share: the forecaster time limit and its flag.

Kept apart from the commands so each one adds the same ``--timeout`` with the same meaning and
``compare``'s default, without restructuring their option lists.
"""

from __future__ import annotations

import click

from ..compare.settings import DEFAULT_TIMEOUT, MAX_TIMEOUT

#: ``--timeout`` for commands that run one forecaster (and import plugins) in-line
timeout_option = click.option(
    "--timeout", type=click.FloatRange(0.0, MAX_TIMEOUT), default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds the forecaster may take (fit and predict, in a worker process that is "
         "stopped, with anything it started, at the limit); also bounds importing each "
         "--plugins file. 0: no limit.",
)


def limit(timeout: float) -> float | None:
    """``--timeout`` as the library takes it: 0 means no limit (None)."""
    return timeout or None
