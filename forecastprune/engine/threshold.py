"""The threshold engine: per-channel scores → which channels to prune (pure numpy).

One function, :func:`select_channels`, serves every path (``compare``, ``prune``, the training
pipeline). It never knows where the scores came from — a forecaster's predicted |γ|, the
oracle's final |γ|, or the current |γ| — and it never touches torch modules.

How a decision is made:

1. **Units.** Every channel is its own unit, except channels listed together in ``groups``
   (coupled channels, e.g. tied by a residual add), which form one unit scored by the ``max``
   or ``mean`` of their members. A unit with any non-prunable member is not prunable: cutting
   part of a coupled group is exactly what coupling forbids.
2. **Candidates.** Units are ranked by ``(score, lowest member index)`` so ties break
   deterministically. With ``ratio`` the lowest-ranked units are taken until the number of
   pruned channels is as close as possible to ``round(ratio × prunable channels)`` (exact when
   there are no groups), as network slimming's global ratio. With ``threshold`` every unit whose
   score is strictly below it is taken.
3. **Uncertainty.** With ``upper`` (forecast upper bounds) a candidate is kept unless its upper
   bound, too, lies strictly below the cut: only channels that rank low even pessimistically go.
4. **Per-layer floors.** A layer keeps at least ``max(min_keep, ceil(min_fraction × n), 1)``
   channels (never more than it has), and with ``round_to > 1`` its kept count is rounded *up*
   to a multiple of ``round_to`` (or to the whole layer). Channels are given back highest score
   first. Layers the candidates would have emptied are reported in ``collapsed``.

The effective threshold (the *cut*) is the score of the lowest-ranked prunable unit that the
global rule kept (``threshold`` itself in absolute mode; ``inf`` when the rule took every unit).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core.layout import ChannelLayout
from ..errors import LayoutError, PruningError
from .spec import PruneSpec

if TYPE_CHECKING:  # coupling imports torch; the threshold stays numpy-only
    from .coupling import ChannelPlan


@dataclass(frozen=True)
class LayerReport:
    """What the decision does to one BN layer.

    Attributes:
        name: the BN module name.
        channels: the layer's channel count.
        kept: channels kept.
        pruned: channels pruned.
        rescued: channels the global rule wanted to prune but the per-layer floors
            (``min_keep``, ``min_fraction``, ``round_to``) gave back.
    """

    name: str
    channels: int
    kept: int
    pruned: int
    rescued: int


@dataclass(frozen=True)
class PruneDecision:
    """The outcome of :func:`select_channels`.

    Attributes:
        layout: the layout the masks refer to.
        pruned: (C,) bool, True for every channel to remove, in layout order.
        threshold: the effective cut (see the module docstring).
        requested: channels the global rule asked for before floors and uncertainty.
        collapsed: layers the global rule would have emptied (rescued by the floors).
        report: one :class:`LayerReport` per layer, in layout order.
    """

    layout: ChannelLayout
    pruned: np.ndarray
    threshold: float
    requested: int
    collapsed: tuple[str, ...]
    report: tuple[LayerReport, ...]

    @property
    def keep(self) -> dict[str, np.ndarray]:
        """Per-layer keep masks: layer name → (n,) bool, True for every channel kept."""
        return self.layout.split(~self.pruned)

    @property
    def n_pruned(self) -> int:
        """Total number of pruned channels."""
        return int(np.count_nonzero(self.pruned))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary (no per-channel masks; ``threshold`` is None when infinite)."""
        return {
            "threshold": self.threshold if math.isfinite(self.threshold) else None,
            "requested": self.requested,
            "pruned": self.n_pruned,
            "collapsed": list(self.collapsed),
            "layers": [vars(r) for r in self.report],
        }


def select_channels(
    scores: np.ndarray,
    plan: ChannelPlan | ChannelLayout,
    spec: PruneSpec | None = None,
    *,
    upper: np.ndarray | None = None,
) -> PruneDecision:
    """Decide which channels to prune from per-channel scores (lower = pruned first).

    Args:
        scores: (C,) finite scores in layout order (|γ| or a forecast of it).
        plan: the :class:`~forecastprune.engine.coupling.ChannelPlan` saying which channels
            may go and which go together; a bare :class:`ChannelLayout` means every channel
            is prunable on its own.
        spec: the ratio or threshold, the floors and the group score (default:
            ``PruneSpec()``); its ``policy`` is the plan's business, not this function's.
        upper: (C,) forecast upper bounds; with ``spec.uncertainty`` only units whose upper
            bound is below the cut too are pruned (ignored otherwise).

    Returns:
        The :class:`PruneDecision`.

    Raises:
        PruningError: on non-finite scores or a malformed plan.
    """
    spec = spec if spec is not None else PruneSpec()
    layout, prunable, groups = _constraints(plan)
    scores = _check_vector(scores, layout, "scores")
    units = _Units.build(groups, _check_prunable(prunable, layout), scores, spec.group_reduce)
    order = units.order[units.prunable[units.order]]
    if spec.ratio is not None:
        requested = _ratio_target(float(spec.ratio), int(units.sizes[units.prunable].sum()))
        n_take = _units_for_target(units.sizes[order], requested)
        chosen = np.zeros(units.count, dtype=bool)
        chosen[order[:n_take]] = True
        cut = float(units.score[order[n_take]]) if n_take < order.size else math.inf
    else:
        cut = float(spec.threshold)  # type: ignore[arg-type]
        chosen = units.prunable & (units.score < cut)
        requested = int(units.sizes[chosen].sum())
    if upper is not None and spec.uncertainty:
        upper = _check_vector(upper, layout, "upper")
        chosen &= _reduce(upper, units.of, units.count, spec.group_reduce) < cut
    candidate = chosen[units.of]
    final = _apply_floors(chosen, units, layout, spec)
    return _decision(layout, final[units.of], candidate, cut, requested)


def ambiguous_share(
    lower: np.ndarray | None, upper: np.ndarray | None, cut: float, prunable: np.ndarray
) -> float | None:
    """Share of prunable channels whose interval [lower, upper] contains the cut.

    None when there are no intervals or no finite cut.
    """
    if lower is None or upper is None or not math.isfinite(cut):
        return None
    straddle = np.asarray(prunable) & (lower <= cut) & (upper >= cut)
    return float(np.count_nonzero(straddle)) / max(1, int(np.count_nonzero(prunable)))


def unit_scores(
    scores: np.ndarray, plan: ChannelPlan | ChannelLayout, group_reduce: str = "max"
) -> np.ndarray:
    """Each channel's score as the engine ranks it: its group's max or mean, else its own."""
    layout, prunable, groups = _constraints(plan)
    values = _check_vector(scores, layout, "scores")
    reduce = PruneSpec(group_reduce=group_reduce).group_reduce  # validated by the one owner
    units = _Units.build(groups, _check_prunable(prunable, layout), values, reduce)
    return units.score[units.of]


def _constraints(
    plan: ChannelPlan | ChannelLayout,
) -> tuple[ChannelLayout, np.ndarray | None, Sequence[np.ndarray] | None]:
    """(layout, prunable, groups) of a plan; a bare layout constrains nothing."""
    if isinstance(plan, ChannelLayout):
        return plan, None, None
    try:
        return plan.layout, plan.prunable, plan.groups
    except AttributeError:
        raise PruningError(
            "select_channels needs a ChannelPlan (from plan_channels) or a ChannelLayout; got "
            f"{type(plan).__name__}"
        ) from None


@dataclass(frozen=True)
class _Units:
    """Pruning units (a coupled group or a lone channel) and their scores.

    Attributes:
        of: (C,) unit id of every channel.
        score: (U,) unit scores.
        prunable: (U,) False when any member is not prunable.
        sizes: (U,) member counts.
        order: (U,) unit ids in pruning order: lowest score first, ties by lowest member index.
        rank: (U,) position of every unit in ``order``.
    """

    of: np.ndarray
    score: np.ndarray
    prunable: np.ndarray
    sizes: np.ndarray
    order: np.ndarray
    rank: np.ndarray

    @property
    def count(self) -> int:
        return int(self.score.size)

    @classmethod
    def build(
        cls,
        groups: Sequence[np.ndarray] | None,
        prunable: np.ndarray,
        scores: np.ndarray,
        reduce: str,
    ) -> _Units:
        total = scores.size
        unit_of, n_units = _unit_ids(groups, total)
        score = _reduce(scores, unit_of, n_units, reduce)
        ok = np.ones(n_units, dtype=bool)
        np.logical_and.at(ok, unit_of, prunable)
        first_member = np.full(n_units, total, dtype=np.int64)
        np.minimum.at(first_member, unit_of, np.arange(total))
        order = np.lexsort((first_member, score))
        rank = np.empty(n_units, dtype=np.int64)
        rank[order] = np.arange(n_units)
        sizes = np.bincount(unit_of, minlength=n_units)
        return cls(unit_of, score, ok, sizes, order, rank)


# ------------------------------------------------------------------------------ validation
def _check_vector(values: Any, layout: ChannelLayout, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise PruningError(f"{what} must be a 1-D array of per-channel values; got {array.shape}")
    try:
        layout.check_width(array, what=what)
    except LayoutError as exc:  # one error type for callers of the engine to catch
        raise PruningError(str(exc)) from exc
    if not np.all(np.isfinite(array)):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise PruningError(f"{what} contain {bad} NaN/Inf entries; pass finite values")
    return array


def _check_prunable(prunable: Any, layout: ChannelLayout) -> np.ndarray:
    if prunable is None:
        return np.ones(layout.total, dtype=bool)
    mask = np.asarray(prunable)
    if mask.shape != (layout.total,) or mask.dtype != bool:
        raise PruningError(
            f"prunable must be a ({layout.total},) bool array; got {mask.dtype} {mask.shape}"
        )
    return mask


def _unit_ids(groups: Sequence[np.ndarray] | None, total: int) -> tuple[np.ndarray, int]:
    """Map every channel to a unit id: groups first, then one unit per ungrouped channel."""
    unit_of = np.full(total, -1, dtype=np.int64)
    for g, members in enumerate(groups or ()):
        idx = np.asarray(members)
        if idx.ndim != 1 or idx.size == 0 or not np.issubdtype(idx.dtype, np.integer):
            raise PruningError(f"group {g} must be a non-empty 1-D integer array; got {idx!r:.80}")
        if idx.min() < 0 or idx.max() >= total:
            raise PruningError(f"group {g} has channel indices outside [0, {total}); got {idx}")
        if np.any(unit_of[idx] >= 0) or np.unique(idx).size != idx.size:
            raise PruningError(
                f"group {g} repeats a channel of an earlier group; groups must "
                "be disjoint — merge overlapping groups first"
            )
        unit_of[idx] = g
    free = unit_of < 0
    n_groups = len(groups or ())
    unit_of[free] = n_groups + np.arange(int(free.sum()))
    return unit_of, n_groups + int(free.sum())


def _reduce(values: np.ndarray, unit_of: np.ndarray, n_units: int, how: str) -> np.ndarray:
    if how == "max":
        out = np.full(n_units, -np.inf)
        np.maximum.at(out, unit_of, values)
        return out
    return np.bincount(unit_of, weights=values, minlength=n_units) / np.bincount(
        unit_of, minlength=n_units
    )


# ------------------------------------------------------------------------------ the rule
def _ratio_target(ratio: float, n_prunable: int) -> int:
    """Channels a ratio asks for: ratio × prunable channels, rounded half up."""
    return min(n_prunable, int(math.floor(ratio * n_prunable + 0.5)))


def _units_for_target(sorted_sizes: np.ndarray, target: int) -> int:
    """How many leading units bring the pruned channel count closest to ``target``.

    Ties between undershooting and overshooting favour pruning less.
    """
    cumulative = np.cumsum(sorted_sizes)
    n = int(np.searchsorted(cumulative, target, side="right"))
    if n < cumulative.size:
        below = int(cumulative[n - 1]) if n else 0
        if int(cumulative[n]) - target < target - below:
            n += 1
    return n


def _floors(layout: ChannelLayout, spec: PruneSpec) -> np.ndarray:
    sizes = np.asarray(layout.sizes)
    need = np.maximum(
        int(spec.min_keep), np.ceil(spec.min_fraction * sizes - 1e-9).astype(np.int64)
    )
    return np.minimum(np.maximum(need, 1), sizes)


def _apply_floors(
    chosen: np.ndarray,
    units: _Units,
    layout: ChannelLayout,
    spec: PruneSpec,
) -> np.ndarray:
    """Give units back, highest-ranked first, until every layer meets its floor and rounding.

    Giving back only ever raises kept counts, so repeating passes until nothing changes ends;
    a unit spanning several layers (a coupled group) may lift another layer past its floor.
    """
    chosen = chosen.copy()
    floors = _floors(layout, spec)
    round_to = int(spec.round_to)
    changed = True
    while changed:
        changed = False
        for i, (name, size) in enumerate(layout.layers):
            members = units.of[layout.slice(name)]
            gone = members[chosen[members]]
            kept = size - gone.size
            want = max(kept, int(floors[i]))
            want = min(size, -(-want // round_to) * round_to)
            if want > kept:
                _give_back(chosen, gone, units.rank, want - kept)
                changed = True
    return chosen


def _give_back(chosen: np.ndarray, gone: np.ndarray, rank: np.ndarray, deficit: int) -> None:
    """Un-prune the highest-ranked units among ``gone`` until ``deficit`` channels return."""
    units, counts = np.unique(gone, return_counts=True)
    by_rank = np.argsort(-rank[units], kind="stable")
    returned = np.cumsum(counts[by_rank])
    n = int(np.searchsorted(returned, deficit, side="left")) + 1
    chosen[units[by_rank[:n]]] = False


def _decision(
    layout: ChannelLayout, pruned: np.ndarray, candidate: np.ndarray, cut: float, requested: int
) -> PruneDecision:
    reports, collapsed = [], []
    for name, size in layout.layers:
        sl = layout.slice(name)
        n_pruned = int(np.count_nonzero(pruned[sl]))
        n_wanted = int(np.count_nonzero(candidate[sl]))
        if n_wanted == size:
            collapsed.append(name)
        reports.append(LayerReport(name, size, size - n_pruned, n_pruned, n_wanted - n_pruned))
    return PruneDecision(layout, pruned, cut, requested, tuple(collapsed), tuple(reports))
