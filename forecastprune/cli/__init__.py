"""The ``forecastprune`` command line.

Sub-commands live in their own modules and are imported only when invoked, so ``--help`` stays
fast and one command's heavy imports (sktime, torch-pruning) never slow another. Every
:class:`~forecastprune.errors.ForecastPruneError`, and every ``OSError`` of a system call (a
full disk, a read-only folder, the file-size limit), becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from .._util import os_error_message
from ..errors import ForecastPruneError, StoreWriteError

#: command name -> "module:attribute" of its click command, relative to this package.
COMMANDS: dict[str, str] = {
    "store": "store_cmd:store",
    "record": "record_cmd:record",
    "list": "forecast_cmd:list_cmd",
    "forecast": "forecast_cmd:forecast",
    "compare": "compare_cmd:compare",
    "prune": "prune_cmd:prune",
    "train": "train_cmd:train",
    "benchmark": "benchmark_cmd:benchmark",
    "fit-forecaster": "fit_forecaster_cmd:fit_forecaster",
}


class LazyGroup(click.Group):
    """A click group whose sub-commands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        module = importlib.import_module(f"{__name__}.{module_name}")
        return getattr(module, attribute)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StoreWriteError as exc:  # its library message says "flush again"
            raise UserError(exc.cli_message) from exc
        except ForecastPruneError as exc:
            raise UserError(str(exc) or type(exc).__name__) from exc
        except OSError as exc:
            if exc.errno is None:  # not a failed system call: a bug, keep its traceback
                raise
            # a file the command had to read or write (a full disk, a read-only folder, the
            # file-size limit): the environment, not the program, so one line, not a traceback
            raise UserError(os_error_message(exc)) from exc


class UserError(click.ClickException):
    """A user error shown as one ``Error: ...`` line with exit code 2, never a traceback."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(message.split()))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="forecastprune")
def cli() -> None:
    """Early channel pruning driven by forecasts of BatchNorm γ trajectories."""


def main() -> None:
    """Console-script entry point."""
    cli.main(prog_name="forecastprune")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
