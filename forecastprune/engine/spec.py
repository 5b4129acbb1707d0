"""How channels are chosen: the one settings type every entry point shares.

:class:`PruneSpec` is the single owner of the prune settings — the ratio or threshold, the
coupling policy, the per-layer floors, the group score, the uncertainty rule — with their
defaults defined once and checked by one validator. ``compare`` scores a forecaster with it,
``prune``, ``forecast``, ``train`` configs, :class:`~forecastprune.pipeline.EarlyPruner`, the
Lightning callback and the ultralytics integration cut with it, and the CLI flags are generated
from its fields (:mod:`forecastprune.cli.spec_options`), so a default can never differ between
two commands. Pure Python: importing it costs nothing.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import PruningError

#: coupling policies: which channels may go and which go together (see :mod:`.coupling`)
COUPLING_POLICIES = ("seed", "grouped")
#: every policy; ``none`` scores every recorded channel on its own, without the model, so only
#: a replay (``compare``) can use it — a cut needs the model's coupling
POLICIES = ("none", *COUPLING_POLICIES)
GROUP_REDUCES = ("max", "mean")
#: the ratio used when neither a ratio nor a threshold is given
DEFAULT_RATIO = 0.5
#: the largest min_keep accepted: more channels than any layer has, and an int32, so the
#: threshold engine's integer arrays never overflow
MAX_MIN_KEEP = 2**31 - 1


@dataclass(frozen=True)
class PruneKeys:
    """The prune settings as plain, unchecked keys — their one declaration and default.

    :class:`PruneSpec` adds the validation; config files (``train``, ``compare``) inherit these
    keys, so a YAML file writes ``ratio:``, ``policy:``, ``min_keep:`` ... at its top level
    with exactly the spec's names and defaults, and turns them into a spec with
    :meth:`prune_spec`.
    """

    ratio: float | None = None
    threshold: float | None = None
    policy: str = "seed"
    min_keep: int = 1
    min_fraction: float = 0.0
    round_to: int = 1
    group_reduce: str = "max"
    uncertainty: bool = False
    coverage: float = 0.9

    def prune_spec(self) -> PruneSpec:
        """These keys as a validated :class:`PruneSpec`.

        Raises:
            PruningError: naming every setting out of range.
        """
        return PruneSpec(**{name: getattr(self, name) for name in field_names()})


@dataclass(frozen=True)
class PruneSpec(PruneKeys):
    """How predicted scores become the set of channels to prune.

    Attributes:
        ratio: fraction in [0, 1] of the prunable channels to prune, by one global ranking
            (network slimming's ratio). Defaults to 0.5 when ``threshold`` is not given.
        threshold: prune every unit scoring strictly below this instead of a ratio.
        policy: ``seed`` (never prune channels tied to another layer: the YOLOv3 write-up's
            rule), ``grouped`` (coupled channels pruned together) or ``none`` (every recorded
            channel on its own, without the model: replays only).
        min_keep: channels every layer keeps at least (≥ 1: a layer is never emptied).
        min_fraction: fraction of its channels every layer keeps at least.
        round_to: round every layer's kept count up to a multiple of this (1: no rounding).
        group_reduce: a coupled group's score from its members' (``max`` or ``mean``).
        uncertainty: prune only channels whose forecast upper bound is below the cut too
            (forecasters with intervals; ignored for the others).
        coverage: central coverage of the forecast intervals.
    """

    def __post_init__(self) -> None:
        if self.ratio is None and self.threshold is None:
            object.__setattr__(self, "ratio", DEFAULT_RATIO)
        problems = _problems(self)
        if problems:
            raise PruningError("; ".join(problems))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], source: str = "prune settings") -> PruneSpec:
        """A spec from a plain mapping (a YAML section, keyword arguments).

        Raises:
            PruningError: on an unknown key (listing the valid ones) or a bad value.
        """
        names = field_names()
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise PruningError(
                f"{source}: unknown prune setting(s) {', '.join(unknown)}; "
                f"valid: {', '.join(names)}"
            )
        return cls(**dict(data))

    def replace(self, **changes: Any) -> PruneSpec:
        """A validated copy with ``changes``; giving ``ratio`` drops a threshold and back."""
        if changes.get("ratio") is not None:
            changes.setdefault("threshold", None)
        if changes.get("threshold") is not None:
            changes.setdefault("ratio", None)
        return dataclasses.replace(self, **changes)

    def coupling_policy(self) -> str:
        """The policy a cut on a real model follows.

        Raises:
            PruningError: for ``none``, which ignores the model's coupling and so cannot cut.
        """
        return check_coupling_policy(self.policy)

    def to_json(self) -> dict[str, Any]:
        """Every setting, JSON-ready."""
        return dataclasses.asdict(self)


def field_names() -> tuple[str, ...]:
    """The settings' names, in declaration order (the YAML keys and, dashed, the CLI flags)."""
    return tuple(f.name for f in dataclasses.fields(PruneKeys))


def check_coupling_policy(policy: str) -> str:
    """Return ``policy`` if it is one of :data:`COUPLING_POLICIES`.

    Raises:
        PruningError: naming the value received and the valid ones.
    """
    if policy not in COUPLING_POLICIES:
        hint = (
            " ('none' scores channels without the model and serves replays only)"
            if policy == "none"
            else ""
        )
        raise PruningError(
            f"a cut needs policy {' or '.join(COUPLING_POLICIES)}; got {policy!r}{hint}"
        )
    return policy


def _problems(spec: PruneSpec) -> list[str]:
    """Every out-of-range setting of ``spec``, each as one readable sentence."""
    problems = []
    if spec.ratio is not None and spec.threshold is not None:
        problems.append(
            f"give a ratio or a threshold, not both; got ratio={spec.ratio}, "
            f"threshold={spec.threshold}"
        )
    if spec.ratio is not None and not _number_in(spec.ratio, 0.0, 1.0):
        problems.append(
            f"ratio is the fraction of prunable channels to prune and must lie in "
            f"[0, 1]; got {spec.ratio!r}"
        )
    if spec.threshold is not None and not _number_in(spec.threshold, -math.inf, math.inf):
        problems.append(f"threshold must be a finite number; got {spec.threshold!r}")
    if spec.policy not in POLICIES:
        problems.append(f"policy must be one of {', '.join(POLICIES)}; got {spec.policy!r}")
    if not _whole_in(spec.min_keep, 1, MAX_MIN_KEEP):
        problems.append(
            f"min_keep must be a whole number from 1 (a layer is never emptied) to "
            f"{MAX_MIN_KEEP}; got {spec.min_keep!r}"
        )
    if not _number_in(spec.min_fraction, 0.0, 1.0):
        problems.append(f"min_fraction must lie in [0, 1]; got {spec.min_fraction!r}")
    if not _whole_in(spec.round_to, 1, MAX_MIN_KEEP):
        problems.append(
            f"round_to must be a whole number ≥ 1 (1: no rounding); got {spec.round_to!r}"
        )
    if spec.group_reduce not in GROUP_REDUCES:
        problems.append(
            f"group_reduce must be one of {', '.join(GROUP_REDUCES)}; got {spec.group_reduce!r}"
        )
    if not isinstance(spec.uncertainty, bool):
        problems.append(f"uncertainty must be true or false; got {spec.uncertainty!r}")
    if not (_number_in(spec.coverage, 0.0, 1.0) and 0.0 < spec.coverage < 1.0):
        problems.append(f"coverage must lie strictly between 0 and 1; got {spec.coverage!r}")
    return problems


def _number_in(value: Any, low: float, high: float) -> bool:
    """A finite real number (not a bool) within [low, high]."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        and not hasattr(value, "__float__")
    ):
        return False
    number = float(value)
    return math.isfinite(number) and low <= number <= high


def _whole_in(value: Any, low: int, high: int) -> bool:
    return (
        not isinstance(value, bool) and _number_in(value, low, high) and float(value).is_integer()
    )
