"""Where in a run: one type and one parser for cutoffs and prune points.

Every "where in the run" setting — ``compare --cutoffs``, ``forecast``/``prune --cutoff``,
``prune_at`` in :class:`~forecastprune.pipeline.EarlyPruner`, ``train`` configs, the Lightning
callback and ultralytics ``attach`` — is parsed by :meth:`RunPoint.parse` and means the same
thing everywhere:

- a number is a **fraction of the planned run** in (0, 1]: ``0.3`` is 30 % of it, ``1.0`` (or
  ``1``) its end. Any other whole number is refused rather than read as a step, because
  ``prune_at=1`` and ``cutoff=1.0`` once meant different things;
- ``"step:N"`` is **step N** (optimizer updates completed);
- ``"stability"``, ``"confidence"`` and ``"early-bird"`` are **timing rules** that decide the
  prune point while the run goes (prune points only; see :mod:`forecastprune.pipeline.timing`).
  ``"auto"`` is read as ``"stability"``, the name the rule had before ``auto`` also named a
  forecaster.

Pure Python, so the CLI checks its arguments before importing anything heavy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

STEP_PREFIX = "step:"
#: timing rules a prune point may name (a cutoff may not: a replay needs a place in the run)
RULES = ("stability", "confidence", "early-bird")
#: older names still read
RULE_ALIASES = {"auto": "stability"}
#: the most digits a step may have (int64)
_MAX_STEP_DIGITS = 18


@dataclass(frozen=True)
class RunPoint:
    """A place in a run: a fraction of the planned run, a step, or a timing rule.

    Exactly one attribute is set. Build it with :meth:`parse`.

    Attributes:
        fraction: a fraction in (0, 1] of the planned run.
        step: an explicit step ≥ 0.
        rule: a timing rule from :data:`RULES`.
    """

    fraction: float | None = None
    step: int | None = None
    rule: str | None = None

    @classmethod
    def parse(cls, value: Any, *, rules: bool = True, what: str = "prune_at") -> RunPoint:
        """Read a run point from a number, a string or a :class:`RunPoint`.

        Args:
            value: ``0.3``, ``"0.3"``, ``1.0``, ``"step:120"``, or (with ``rules``) a rule name.
            rules: whether a timing rule is accepted here.
            what: the setting's name, for the error message.

        Raises:
            ConfigError: saying what was received and which forms are accepted.
        """
        if isinstance(value, RunPoint):
            point = value
        elif isinstance(value, str):
            point = _from_text(value.strip(), what, rules)
        else:
            point = cls(fraction=_fraction(value, what, rules))
        if point.rule is not None and not rules:
            raise ConfigError(
                f"{what} {point.rule!r} is a timing rule; here give a place in "
                f"the run: {_forms(False)}"
            )
        return point

    @property
    def is_rule(self) -> bool:
        """Whether this point is a timing rule (decided while the run goes)."""
        return self.rule is not None

    def resolve(self, length: int, what: str = "prune_at") -> int:
        """The step this point names in a run of ``length`` steps.

        A fraction becomes ``round(fraction × length)`` (at least step 1), a step stays.

        Raises:
            ConfigError: for a timing rule, which has no step until the run decides it.
        """
        if self.step is not None:
            return self.step
        if self.fraction is None:
            raise ConfigError(f"{what} {self.rule!r} is a timing rule and names no fixed step")
        return max(1, int(round(self.fraction * int(length))))

    def __str__(self) -> str:
        if self.step is not None:
            return f"{STEP_PREFIX}{self.step}"
        return str(self.rule) if self.rule is not None else f"{self.fraction:g}"


def _from_text(text: str, what: str, rules: bool) -> RunPoint:
    lowered = text.lower()
    if lowered.startswith(STEP_PREFIX):
        number = lowered[len(STEP_PREFIX) :].strip()
        if not number.isdigit() or len(number) > _MAX_STEP_DIGITS:
            raise ConfigError(
                f"{what} {text!r}: after 'step:' comes a whole step number ≥ 0, e.g. step:1000"
            )
        return RunPoint(step=int(number))
    name = RULE_ALIASES.get(lowered, lowered)
    if name in RULES:
        return RunPoint(rule=name)
    try:
        number = float(text)
    except ValueError:
        raise ConfigError(f"{what}: got {text!r}; expected {_forms(rules)}") from None
    return RunPoint(fraction=_fraction(number, what, rules))


def _fraction(value: Any, what: str, rules: bool) -> float:
    """A fraction in (0, 1]; a whole number above 1 is refused with the step form to use."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        and not hasattr(value, "__float__")
    ):
        raise ConfigError(f"{what}: got {value!r}; expected {_forms(rules)}")
    number = float(value)
    if math.isfinite(number) and number > 1.0 and number.is_integer():
        raise ConfigError(
            f"{what}: got {value!r}; a number is a fraction of the run in (0, 1] "
            f"— for step {int(number)} write 'step:{int(number)}'"
        )
    if not (math.isfinite(number) and 0.0 < number <= 1.0):
        raise ConfigError(f"{what}: got {value!r}; expected {_forms(rules)}")
    return number


def _forms(rules: bool) -> str:
    forms = "a fraction of the run in (0, 1] such as 0.3 (1.0: the end), or step:N"
    return forms + (f", or a timing rule ({', '.join(RULES)})" if rules else "")
