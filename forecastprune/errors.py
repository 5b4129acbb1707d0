"""Exception hierarchy.

Every error a user can cause derives from :class:`ForecastPruneError`, so the CLI can turn it
into one line and exit code 2 without a traceback, while programming errors still surface.
Messages say what was received, what was expected and how to fix it.
"""

from __future__ import annotations


class ForecastPruneError(Exception):
    """Base class for every user-facing error of forecastprune."""


class StoreError(ForecastPruneError):
    """A trajectory store is missing, corrupt, of an unsupported version or misused."""


class LayoutError(ForecastPruneError):
    """Channel layouts disagree (layer names or channel counts) or are malformed."""


class ForecasterError(ForecastPruneError):
    """A forecaster was misconfigured, misused or fed bad data."""


class UnknownForecasterError(ForecasterError, KeyError):
    """A forecaster name is not registered."""

    def __str__(self) -> str:  # KeyError would wrap the message in quotes
        return str(self.args[0]) if self.args else ""


class PruningError(ForecastPruneError):
    """The engine cannot honour a pruning request (bad scores, policy or model)."""


class ConfigError(ForecastPruneError):
    """A configuration file or value is invalid."""


class OutputError(ForecastPruneError, OSError):
    """An output file or folder cannot be written (disk full, read-only, over the file-size
    limit). Also an :class:`OSError`, so code that handles those keeps working."""


class StoreWriteError(StoreError):
    """A store could not commit its buffered snapshots (they stay in memory).

    Attributes:
        cli_message: the same problem for a command-line user, who cannot call ``flush`` again.
    """

    def __init__(self, message: str, cli_message: str) -> None:
        super().__init__(message)
        self.cli_message = cli_message

    def __reduce__(self) -> tuple[type, tuple[str, str]]:  # picklable across worker processes
        return type(self), (str(self.args[0]), self.cli_message)
