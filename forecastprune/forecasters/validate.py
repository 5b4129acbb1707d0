"""Checks for forecaster hyper-parameters, shared by the built-ins and usable by plugins.

Forecasters validate in ``__init__`` so ``get_forecaster("sma(window=0)")`` fails at once, with
a message naming the parameter, the value received and the range expected.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

from ..errors import ForecasterError


def check_int(owner: str, name: str, value: Any, minimum: int) -> int:
    """Return ``value`` as an int if it is an integer ≥ ``minimum``.

    Raises:
        ForecasterError: for bools, non-integers and values below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        raise ForecasterError(f"{owner}: {name} must be an integer >= {minimum}; got {value!r}")
    return int(value)


def check_real(
    owner: str, name: str, value: Any, low: float, high: float, *, low_open: bool = True
) -> float:
    """Return ``value`` as a float if it lies in ``(low, high]`` (``[low, high]`` if closed).

    Raises:
        ForecasterError: for bools, non-numbers and values outside the range.
    """
    ok = isinstance(value, Real) and not isinstance(value, bool)
    if ok:
        above = value > low if low_open else value >= low
        ok = above and value <= high
    if not ok:
        bracket = "(" if low_open else "["
        raise ForecasterError(
            f"{owner}: {name} must be a number in {bracket}{low}, {high}]; got {value!r}"
        )
    return float(value)


def check_choice(owner: str, name: str, value: Any, choices: Sequence[Any]) -> Any:
    """Return ``value`` if it is one of ``choices``.

    Raises:
        ForecasterError: naming the valid choices.
    """
    if value not in choices:
        raise ForecasterError(f"{owner}: {name} must be one of {list(choices)}; got {value!r}")
    return value


def check_bool(owner: str, name: str, value: Any) -> bool:
    """Return ``value`` if it is a real bool (``1`` and ``"yes"`` are not).

    Raises:
        ForecasterError: for anything but ``True`` / ``False``.
    """
    if not isinstance(value, bool):
        raise ForecasterError(f"{owner}: {name} must be True or False; got {value!r}")
    return value


def check_model_header(data: Any, source: str, model_format: str, version: int) -> None:
    """Check a saved model's ``format`` and ``version`` fields (the learned forecasters' files).

    Raises:
        ForecasterError: naming the field that does not match and how to get a good file.
    """
    if not isinstance(data, dict) or data.get("format") != model_format:
        raise ForecasterError(f"{source} is not a {model_format} model file (format field)")
    if data.get("version") != version:
        raise ForecasterError(
            f"{source} has model version {data.get('version')!r}; this release reads version "
            f"{version}. Refit it with `forecastprune fit-forecaster`"
        )
