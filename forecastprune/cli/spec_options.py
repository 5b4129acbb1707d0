"""The prune settings as CLI flags, generated from :class:`~forecastprune.engine.spec.PruneSpec`.

Every command that chooses channels (``compare``, ``prune``, ``benchmark``) takes the same flags
— one per spec field, dashed (``min_fraction`` → ``--min-fraction``) — with the spec's own
defaults in their help. The flags default to None so that a config file or the spec fills what
the user did not pass; :func:`spec_from_flags` then builds the one validated spec, turning a
range error into one ``Error:`` line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import click

from ..engine.spec import GROUP_REDUCES, POLICIES, PruneSpec, field_names
from ..errors import ForecastPruneError

#: what each setting means, for ``--help`` (the default is appended from the spec)
HELP = {
    "ratio": "Fraction of the prunable channels to prune (one global ranking).",
    "threshold": "Prune every channel whose score is below this instead of a ratio.",
    "policy": "seed: only channels tied to no other layer; grouped: coupled channels pruned "
    "together; none: every recorded channel on its own, without the model "
    "(compare only).",
    "min_keep": "Channels every layer keeps at least.",
    "min_fraction": "Fraction of its channels every layer keeps at least.",
    "round_to": "Round every layer's kept count up to a multiple of this.",
    "group_reduce": "Score of a coupled group under --policy grouped: max or mean.",
    "uncertainty": "Prune only channels whose forecast upper bound is below the cut too.",
    "coverage": "Coverage of the forecast intervals used by --uncertainty.",
}

_TYPES: dict[str, Any] = {
    "ratio": float,
    "threshold": float,
    "policy": click.Choice(POLICIES),
    "min_keep": int,
    "min_fraction": float,
    "round_to": int,
    "group_reduce": click.Choice(GROUP_REDUCES),
    "coverage": float,
}


def spec_options(
    *, several_ratios: bool = False, skip: Iterable[str] = ()
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A decorator adding one flag per :class:`PruneSpec` field (defaults None).

    Args:
        several_ratios: ``--ratio`` may repeat (``compare`` scores several ratios).
        skip: fields this command does not take (each is then its spec default).
    """
    defaults = PruneSpec()

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        for name in reversed(field_names()):
            if name not in skip:
                command = _option(name, getattr(defaults, name), several_ratios)(command)
        return command

    return decorate


def _option(name: str, default: Any, several_ratios: bool) -> Callable[..., Any]:
    flag = "--" + name.replace("_", "-")
    shown = "none" if default is None else default
    help_text = f"{HELP[name]} [default: {shown}]"
    if name == "ratio" and several_ratios:
        help_text = f"{HELP[name]} Repeat for several. [default: {shown}]"
    if name == "uncertainty":
        return click.option(f"{flag}/--no-{flag[2:]}", name, default=None, help=help_text)
    return click.option(
        flag,
        name,
        type=_TYPES[name],
        default=None,
        multiple=name == "ratio" and several_ratios,
        help=help_text,
    )


def spec_from_flags(
    flags: dict[str, Any], base: PruneSpec | None = None, skip: Iterable[str] = ()
) -> PruneSpec:
    """Take the spec's flags out of ``flags`` and build the spec they describe.

    Args:
        flags: the command's keyword arguments; the spec's keys are removed from it.
        base: the settings the flags override (a config file's, else the defaults).
        skip: the fields the command has no flag for (as given to :func:`spec_options`).

    Raises:
        click.BadParameter: naming the flag when a setting is out of range.
    """
    base = base if base is not None else PruneSpec()
    given = {name: flags.pop(name) for name in field_names() if name in flags and name not in skip}
    changes = {name: value for name, value in given.items() if value not in (None, ())}
    try:
        return base.replace(**changes)
    except ForecastPruneError as exc:
        hint = ", ".join("--" + name.replace("_", "-") for name in changes) or None
        raise click.BadParameter(str(exc), param_hint=hint) from None


def block_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--blocks``, ``--block-ratio`` and ``--block-reduce`` (depth pruning, defaults None:
    no block goes; :func:`block_spec_from_flags` reads them)."""
    options = [
        click.option(
            "--blocks",
            "blocks",
            type=click.IntRange(0, None),
            default=None,
            help="Also remove this many residual blocks whole (depth pruning): those "
            "whose scoring BN has the lowest predicted |γ|.",
        ),
        click.option(
            "--block-ratio",
            type=click.FloatRange(0.0, 1.0),
            default=None,
            help="Like --blocks, as a fraction of the removable blocks.",
        ),
        click.option(
            "--block-reduce",
            type=click.Choice(["mean", "max"]),
            default=None,
            help="A block's score from its scoring BN's predicted |γ|. [default: mean]",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def block_spec_from_flags(count: int | None, ratio: float | None, reduce: str | None) -> Any:
    """The :class:`~forecastprune.engine.block_rule.BlockSpec` the block flags describe, or
    None when no block is to go.

    Raises:
        click.BadParameter: for both ``--blocks`` and ``--block-ratio``.
    """
    if count is not None and ratio is not None:
        raise click.BadParameter(
            "give --blocks N or --block-ratio R, not both", param_hint="--blocks"
        )
    if count is None and ratio is None:
        return None
    from ..engine.block_rule import BlockSpec

    return BlockSpec(count=count, ratio=ratio, **({"reduction": reduce} if reduce else {}))
