"""Offline replay: had I pruned at step t with forecaster F, how close would I have been?

For a recorded store, every forecaster sees only the |γ| history up to each cutoff and predicts
|γ| at the store's final step. The oracle is the actual final |γ|. One threshold engine call
turns the prediction and the oracle into pruned sets under the same policy, and
:mod:`forecastprune.core.metrics` compares them. ``naive`` (the last value) always runs as the
control, and the Early-Bird point of the naive masks is reported for reference.

Each forecaster runs isolated (:mod:`forecastprune.compare.worker`): one that raises, times out or
returns garbage fails its cells with a message while the others complete.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from ..engine.spec import PruneSpec, check_coupling_policy
from ..errors import ConfigError, ForecastPruneError, StoreError
from ..forecasters import Forecaster, get_forecaster, list_forecasters
from ..predict import (
    attach_layout,
    cutoff_step,
    rows_to_read,
    run_length,
    store_clock,
)
from ..runpoint import RunPoint
from ..store.verify import check_finite
from .scoring import Cutoff, EarlyBird, Judge, OracleSummary, Row, eb_rows, eb_spacing
from .settings import ReplaySettings
from .worker import CellOutcome, run_forecaster

CONTROL = "naive"

#: called after every (forecaster, cutoff) cell: (forecaster label, cells done, cells in all)
Progress = Callable[[str, int, int], None]


@dataclass
class ReplayResult:
    """Everything a replay found; :mod:`forecastprune.compare.report` renders it.

    Attributes:
        store: the store's path.
        layout_layers: BN layer names in layout order.
        channels: recorded channels C; ``prunable``: those the policy may prune.
        final_step: the oracle's step; ``snapshots``: the store's length.
        settings: the settings used (ratios deduplicated).
        cutoffs: the resolved cutoffs, in order.
        forecasters: labels of every forecaster run, the control first; ``requested``: the
            ones the user asked for.
        rows: one :class:`~forecastprune.compare.scoring.Row` per (forecaster, cutoff, ratio).
        oracle: per ratio, the oracle's decision summary.
        early_bird: per ratio, the Early-Bird point of the naive masks.
        eps: the absolute collapsed-set threshold; ``collapsed_fraction``: the share of
            prunable channels below it.
        block_oracle: the residual blocks the final |γ| removes (when blocks are judged).
        warnings: notes for the reader (skipped forecasters, collapsed cuts, failures).
        seconds: the replay's wall time.
    """

    store: str
    layout_layers: tuple[str, ...]
    channels: int
    prunable: int
    final_step: int
    snapshots: int
    settings: ReplaySettings
    cutoffs: list[Cutoff]
    forecasters: list[str]
    requested: list[str]
    rows: list[Row]
    oracle: dict[float, OracleSummary]
    early_bird: dict[float, EarlyBird]
    eps: float
    collapsed_fraction: float
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0
    judge: Judge | None = field(default=None, repr=False)
    block_oracle: tuple[str, ...] | None = None

    def rows_for(self, ratio: float, cutoff: Cutoff | None = None) -> list[Row]:
        return [r for r in self.rows if r.ratio == ratio and (cutoff is None or r.cutoff == cutoff)]

    def best(self, cutoff: Cutoff, ratio: float) -> str | None:
        """The forecaster closest to the oracle at one cutoff and ratio (ties: lower MAE)."""
        if self.oracle[ratio].pruned == 0:  # two empty sets: every IoU is 1, nothing to rank
            return None
        key = self.oracle[ratio].rank_by
        rows = [r for r in self.rows_for(ratio, cutoff) if r.ok]
        if not rows:
            return None
        return max(rows, key=lambda r: (getattr(r, key), -r.mae)).forecaster

    def pruned_set(self, forecaster: str, cutoff_step: int, ratio: float) -> np.ndarray:
        """(C,) bool: the channels ``forecaster``'s prediction at a cutoff pruned."""
        if self.judge is None:
            raise ConfigError("this result carries no pruned sets (it was not made by replay)")
        return self.judge.pruned_set(forecaster, cutoff_step, ratio)

    def failure(self, forecaster: str) -> str | None:
        """The first error of a forecaster that failed at every cutoff, else None."""
        rows = [r for r in self.rows if r.forecaster == forecaster]
        return rows[0].error if rows and not any(r.ok for r in rows) else None

    @property
    def all_failed(self) -> bool:
        """True when every forecaster the user asked for failed everywhere."""
        return all(self.failure(name) is not None for name in self.requested)


# ------------------------------------------------------------------------------ inputs
def resolve_cutoffs(values: Sequence[float | str], length: int, final_step: int) -> list[Cutoff]:
    """Turn cutoffs into steps strictly before the oracle's step, sorted, deduplicated.

    Args:
        values: fractions of the run in (0, 1) or ``"step:N"`` (see :mod:`forecastprune.predict`).
        length: the run's length (:func:`forecastprune.predict.run_length`).
        final_step: the store's last snapshot, the oracle.

    Raises:
        ConfigError: on malformed cutoffs or cutoffs at/after the oracle's step.
    """
    if not values:
        raise ConfigError("give at least one cutoff (e.g. --cutoffs 0.1,0.3)")
    cutoffs: dict[int, Cutoff] = {}
    for value in values:
        step = cutoff_step(value, length)
        if step >= final_step:
            raise ConfigError(
                f"cutoff {value} (step {step}) is not before the store's final step "
                f"{final_step}; cutoffs must leave something to forecast"
            )
        point = RunPoint.parse(value, rules=False, what="cutoff")
        label = f"step {step}" if point.step is not None else f"{point.fraction * 100:g}%"
        cutoffs.setdefault(step, Cutoff(step, step / final_step, label))
    return [cutoffs[s] for s in sorted(cutoffs)]


def resolve_forecasters(
    specs: Sequence[str] | str,
) -> tuple[list[tuple[str, Forecaster]], list[str], list[str]]:
    """Build the forecasters, ``naive`` first; ``"all"`` means every registered one.

    Returns:
        ``(forecasters, requested, notes)``: ``(label, instance)`` pairs including the
        control, the labels the user asked for, and why entries of ``all`` were skipped.

    Raises:
        UnknownForecasterError: naming the valid forecasters.
        ForecasterError: on a malformed spec or bad parameters.
    """
    notes: list[str] = []
    specs = [specs] if isinstance(specs, str) else list(specs)
    if specs == ["all"]:
        specs, notes = _all_specs()
    requested = list(dict.fromkeys(" ".join(str(s).split()) for s in specs))
    if not requested:
        raise ConfigError("name at least one forecaster, e.g. --forecasters sma,linear")
    built = [(label, get_forecaster(label)) for label in requested]
    if CONTROL not in requested:
        built.insert(0, (CONTROL, get_forecaster(CONTROL)))
    return built, requested, notes


def _all_specs() -> tuple[list[str], list[str]]:
    specs, notes = [], []
    for info in list_forecasters():
        if info.broken:
            notes.append(f"plugin {info.name} failed to load: {info.error}")
        elif info.is_prefix:
            notes.append(f"{info.name} family skipped by 'all'; name members explicitly")
        elif any(v is inspect.Parameter.empty for v in info.params.values()):
            notes.append(f"{info.name} skipped by 'all': it has required parameters")
        else:
            specs.append(info.name)
    return specs, notes


def channel_plan(store: Any, policy: str) -> Any:
    """The store's channel plan under ``policy``; the bare layout under ``none``.

    Raises:
        ConfigError: on a store whose model is unknown or not in the zoo.
        PruningError: on an unknown policy.
    """
    if policy == "none":
        return store.layout
    check_coupling_policy(policy)
    import torch  # only policies that trace the model need torch

    from ..engine.coupling import plan_channels
    from ..zoo.from_store import example_input_shape, model_from_metadata

    model = model_from_metadata(store.metadata)
    example = torch.zeros(example_input_shape(store.metadata))
    return plan_channels(model, example, store.layout, policy)


def plan_like_prune(store: Any, spec: PruneSpec) -> tuple[Any, PruneSpec, str]:
    """The plan ``prune`` would cut with, or — when the store cannot rebuild its model — the
    bare layout under policy ``none``, with a note saying so and why.

    Returns:
        ``(plan, spec, note)``: the spec carries the policy actually used; the note is empty
        when it is the one asked for.
    """
    try:
        return channel_plan(store, spec.policy), spec, ""
    except ConfigError as exc:
        if spec.policy == "none":
            raise
        note = (
            f"scored under policy none, not {spec.policy}: the store cannot rebuild its "
            f"model to plan with ({exc}); prune on a model would cut a different set"
        )
        return store.layout, spec.replace(policy="none"), note


def _block_judge(store: Any, oracle_scores: np.ndarray, settings: ReplaySettings) -> Any:
    """The block judge when the settings ask for block decisions, else None."""
    if settings.blocks is None:
        return None
    from .blocks import BlockJudge, store_block_plan

    return BlockJudge.build(store_block_plan(store), store.layout, oracle_scores, settings.blocks)


# ------------------------------------------------------------------------------ replay
def replay(
    store: Any,
    specs: Sequence[str] | str,
    settings: ReplaySettings | None = None,
    progress: Progress | None = None,
) -> ReplayResult:
    """Replay every forecaster at every cutoff and score it against the finished run.

    Args:
        store: an open :class:`~forecastprune.store.GammaTrajectoryStore`.
        specs: forecaster specs, or ``"all"``; ``naive`` is added as the control.
        settings: cutoffs, ratios, policy and judging options.
        progress: called after every (forecaster, cutoff) cell.

    Returns:
        The :class:`ReplayResult`.

    Raises:
        ForecastPruneError: on bad settings, unknown forecasters or an unusable store; a
            forecaster's own failures are reported in the result instead.
    """
    start = time.perf_counter()
    settings = settings if settings is not None else ReplaySettings()
    settings.validate()
    settings = replace(settings, ratios=settings.scored_ratios)
    forecasters, requested, notes = resolve_forecasters(specs)
    # a lazy view: each forecaster reads only the rows its window or grid needs, per cutoff
    steps, gammas = store.steps, store.view()
    if len(steps) < 2:
        raise StoreError(f"store {store.path} has {len(steps)} snapshot(s); replay needs ≥ 2")
    final_step = int(steps[-1])
    cutoffs = resolve_cutoffs(settings.cutoffs, run_length(store), final_step)
    clock, clock_note = _clock(store, forecasters)
    # name the step and layer of a NaN here rather than fail inside a fit: check the rows the
    # forecasts (and the oracle) will read, not the whole run
    spacing = eb_spacing(settings.eb_spacing, store.metadata, steps)
    read = _rows_read(forecasters, steps, cutoffs, clock)
    check_finite(store.path, steps, gammas, store.layout, np.union1d(read, eb_rows(steps, spacing)))
    oracle_scores = np.abs(np.asarray(gammas[-1], dtype=np.float64))
    plan, spec, policy_note = plan_like_prune(store, settings.spec)
    settings = replace(settings, spec=spec)
    judge = Judge.build(
        plan, oracle_scores, settings, blocks=_block_judge(store, oracle_scores, settings)
    )
    _check_oracle_prunes(judge)
    rows = _run_all(forecasters, steps, gammas, cutoffs, judge, clock, progress)
    result = ReplayResult(
        store=str(store.path),
        layout_layers=store.layout.names,
        channels=store.layout.total,
        prunable=int(judge.prunable.sum()),
        final_step=final_step,
        snapshots=len(steps),
        settings=settings,
        cutoffs=cutoffs,
        forecasters=[label for label, _ in forecasters],
        requested=requested,
        rows=rows,
        oracle=judge.oracle,
        early_bird=judge.early_birds(steps, gammas, spacing),
        eps=judge.eps,
        collapsed_fraction=judge.collapsed_fraction,
        judge=judge,
        block_oracle=judge.blocks.oracle if judge.blocks is not None else None,
    )
    result.warnings = (
        notes + [n for n in (policy_note, clock_note) if n] + _warnings(result, store.metadata)
    )
    result.seconds = time.perf_counter() - start
    return result


def _check_oracle_prunes(judge: Judge) -> None:
    """Refuse a replay in which the oracle prunes nothing at any ratio.

    Two empty pruned sets agree perfectly, so every forecaster would score IoU 1 and the table
    would crown a winner of a contest that never took place. Failing before any forecaster runs
    is cheaper and clearer than a table of meaningless perfect scores.

    Raises:
        ConfigError: naming why nothing is pruned and how to change that.
    """
    if any(oracle.pruned for oracle in judge.oracle.values()):
        return
    ratio = max(judge.oracle)
    raise ConfigError(
        f"nothing to compare: at ratio {ratio:g} the oracle prunes 0 of "
        f"{int(judge.prunable.sum())} prunable channels, so every forecaster would score a "
        f"meaningless IoU of 1: {empty_cut_reason(judge, ratio)}"
    )


def empty_cut_reason(judge: Judge, ratio: float) -> str:
    """Why the oracle prunes no channel at ``ratio``, with the setting to change."""
    layout = getattr(judge.plan, "layout", judge.plan)
    widest = max(layout.sizes)
    prunable = int(judge.prunable.sum())
    min_keep = judge.settings.spec.min_keep
    if prunable == 0:
        return (
            f"policy {judge.settings.spec.policy!r} leaves no channel prunable; try "
            "--policy grouped"
        )
    if min_keep >= widest:
        return (
            f"min-keep {min_keep} keeps every channel of every layer (the widest has "
            f"{widest}); give --min-keep below {widest}"
        )
    if judge.decide(judge.oracle_scores, ratio).requested == 0:
        return f"ratio {ratio:g} of {prunable} channels asks for none; give a larger --ratio"
    return (
        f"min-keep {min_keep} keeps every channel the ratio asks for; lower --min-keep or "
        "raise --ratio"
    )


def _run_all(
    forecasters: list[tuple[str, Forecaster]],
    steps: np.ndarray,
    gammas: np.ndarray,
    cutoffs: list[Cutoff],
    judge: Judge,
    clock: Any,
    progress: Progress | None,
) -> list[Row]:
    """Run each forecaster (isolated) over all cutoffs and judge every cell."""
    rows: list[Row] = []
    total, done = len(forecasters) * len(cutoffs), 0
    for label, forecaster in forecasters:

        def tick(_: CellOutcome, label: str = label) -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(label, done, total)

        outcomes = run_forecaster(
            attach_layout(forecaster, judge.plan),
            steps,
            gammas,
            [c.step for c in cutoffs],
            int(steps[-1]),
            clock=clock,
            timeout=judge.settings.timeout,
            isolation=judge.settings.isolation,
            on_cell=tick,
        )
        for cutoff, outcome in zip(cutoffs, outcomes, strict=True):
            rows += judge.rows(label, cutoff, outcome)
    return rows


def _rows_read(
    forecasters: list[tuple[str, Forecaster]], steps: np.ndarray, cutoffs: list[Cutoff], clock: Any
) -> np.ndarray:
    """Every row some forecaster reads at some cutoff, and the oracle's (sorted, unique)."""
    parts = [np.array([len(steps) - 1])]
    for _, forecaster in forecasters:
        for cutoff in cutoffs:
            end = int(np.searchsorted(steps, cutoff.step, side="right"))
            parts.append(rows_to_read(forecaster, steps[:end], clock))
    return np.unique(np.concatenate(parts))


def _clock(store: Any, forecasters: list[tuple[str, Forecaster]]) -> tuple[Any, str | None]:
    """The store's cumulative-LR clock when some forecaster uses it, else None."""
    if not any(f.get_tag("needs_clock") or f.get_tag("uses_clock") for _, f in forecasters):
        return None, None
    try:
        return store_clock(store), None
    except ForecastPruneError as exc:
        if not any(f.get_tag("needs_clock") for _, f in forecasters):
            return None, None  # the optional users (auto) forecast over steps instead
        return None, f"no cumulative-LR clock for time_axis=lr forecasters: {exc}"


def _warnings(result: ReplayResult, metadata: dict[str, Any]) -> list[str]:
    notes = []
    planned = metadata.get("total_steps")
    if isinstance(planned, int) and planned > result.final_step + int(
        metadata.get("record_every") or 1
    ):
        notes.append(
            f"the store ends at step {result.final_step} but the run planned {planned} steps; "
            "the oracle is the last snapshot, not the end of training"
        )
    for ratio, oracle in result.oracle.items():
        if oracle.pruned == 0 and result.judge is not None:
            notes.append(
                f"RATIO {ratio:g} PRUNES NOTHING ({empty_cut_reason(result.judge, ratio)}): "
                "its IoUs of 1 are meaningless and no best is marked"
            )
        elif oracle.separation.inside_collapsed:
            notes.append(
                f"ratio {ratio:g} cuts inside the collapsed set: {result.collapsed_fraction:.0%} "
                f"of prunable channels end below ε = {result.eps:.3g}, where the oracle's order "
                "is noise; forecasters are ranked by tie-aware IoU (tIoU) there"
            )
        elif result.judge is not None:
            notes += _tied_cut(result.judge, ratio)
    for name in result.forecasters:
        message = result.failure(name)
        if message:
            notes.append(f"{name} failed: {message}")
    return notes


def _tied_cut(judge: Judge, ratio: float) -> list[str]:
    """A note when the final |γ| ties across the oracle's cut: which of the tied channels it
    prunes is then arbitrary (e.g. every γ equal), and an IoU of 1 says nothing."""
    pruned = np.asarray(judge.oracle_masks[ratio], dtype=bool) & judge.prunable
    kept = ~np.asarray(judge.oracle_masks[ratio], dtype=bool) & judge.prunable
    if not pruned.any() or not kept.any():
        return []
    edge = float(judge.effective[pruned].max())
    if not np.any(judge.effective[kept] == edge):  # exact ties only: floors keep lower ones
        return []
    tied = int(np.count_nonzero(judge.effective[judge.prunable] == edge))
    return [
        f"ratio {ratio:g} cuts through {tied} prunable channels whose final |γ| are all "
        f"{edge:.4g}: the oracle picks among them arbitrarily, so IoU there measures "
        "tie-breaking, not forecasting"
    ]
