"""Public conformance suite for forecasters: :func:`check_forecaster`.

Plugin authors run it in their own tests::

    from forecastprune.testing import check_forecaster
    check_forecaster(MyForecaster)                    # every get_test_params() set
    check_forecaster(MyForecaster(window=3))          # one configuration
    check_forecaster(MyForecaster, checks=["tags"])   # selected checks

The checks themselves live in :mod:`forecastprune.forecasters.conformance`; :data:`CHECKS`
names them. A failed check raises :class:`ConformanceError` (an ``AssertionError``, so pytest
shows it as a test failure) naming the forecaster, its parameters and the check.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from .errors import ForecasterError
from .forecasters import registry
from .forecasters.base import Forecaster, TimeMap
from .forecasters.conformance import (
    CHECKS,
    SMALL_WIDE,
    Checker,
    ConformanceError,
    StepDecayClock,
    synthetic_history,
)

__all__ = [
    "CHECKS",
    "PASSED",
    "SMALL_WIDE",
    "ConformanceError",
    "StepDecayClock",
    "check_forecaster",
    "isolated_registry",
    "synthetic_history",
]

#: the result of a check that passed
PASSED = "passed"


def check_forecaster(
    forecaster: type[Forecaster] | Forecaster,
    checks: Iterable[str] | None = None,
    raise_on_failure: bool = True,
    *,
    clock: TimeMap | None = None,
    n_large: int = 100_000,
) -> dict[str, str]:
    """Run conformance checks on a forecaster class (every test-parameter set) or instance.

    Args:
        forecaster: a :class:`Forecaster` subclass or an instance (used as a template; it is
            cloned with ``type(f)(**f.get_params())`` and never fitted itself).
        checks: names from :data:`CHECKS` to run (default: all, in that order).
        raise_on_failure: raise at the first failed check; otherwise record its message and
            go on.
        clock: the clock for configurations whose ``needs_clock`` tag is true; defaults to
            :class:`StepDecayClock`.
        n_large: channels in the wide check for vectorized forecasters (the others use
            :data:`SMALL_WIDE`).

    Returns:
        ``{"<check>[<forecaster repr>]": "passed" or the failure message}``, one entry per
        check and configuration, in the order run.

    Raises:
        ConformanceError: a check failed and ``raise_on_failure`` is true.
        ForecasterError: a name in ``checks`` is not a check (lists the valid names).
        TypeError: ``forecaster`` is neither a Forecaster class nor an instance.
    """
    names = _select(checks)
    results: dict[str, str] = {}
    for template in _templates(forecaster):
        checker = Checker(template, clock or StepDecayClock(), n_large)
        for name in names:
            try:
                checker.run(name)
            except ConformanceError as exc:
                if raise_on_failure:
                    raise ConformanceError(f"{checker.label} failed '{name}': {exc}") from exc
                results[f"{name}[{checker.label}]"] = str(exc)
            else:
                results[f"{name}[{checker.label}]"] = PASSED
    return results


@contextlib.contextmanager
def isolated_registry(rediscover: bool = False) -> Iterator[None]:
    """Registrations, plugin loads and entry-point discovery inside the block are undone after.

    Use it in tests that register forecasters, so they do not leak into other tests.

    Args:
        rediscover: scan the ``forecastprune.forecasters`` entry points again on the first
            lookup inside the block (after putting a distribution on ``sys.path``).
    """
    with registry.isolated_state(rediscover):
        yield


def _select(checks: Iterable[str] | None) -> tuple[str, ...]:
    if checks is None:
        return CHECKS
    if isinstance(checks, str):  # one name, not its characters
        checks = [checks]
    names = tuple(checks)
    unknown = [name for name in names if name not in CHECKS]
    if unknown:
        raise ForecasterError(
            f"unknown conformance check(s) {unknown}; valid checks: {list(CHECKS)}"
        )
    return names


def _templates(forecaster: type[Forecaster] | Forecaster) -> list[Forecaster]:
    if isinstance(forecaster, Forecaster):
        return [forecaster]
    if isinstance(forecaster, type) and issubclass(forecaster, Forecaster):
        return [forecaster(**params) for params in forecaster.get_test_params()]
    raise TypeError(f"check_forecaster takes a Forecaster class or instance; got {forecaster!r}")
