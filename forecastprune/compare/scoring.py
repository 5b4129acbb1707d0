"""Judging a replay's predictions: one policy, the oracle's decisions, and the metrics per cell.

A :class:`Judge` holds everything that does not depend on the forecaster — the channel plan
(which channels may be pruned, which move together), the oracle's pruned set per ratio, the
collapsed set — so each (forecaster, cutoff) cell costs one threshold call per ratio.

Channels outside the plan's prunable set are never pruned by anyone, so they carry no
information: Hamming distance, Spearman ρ and MAE are computed over the *prunable* channels
only (IoU, precision and recall ignore them by construction). Under ``grouped`` a coupled group
is one decision, scored by the max (or mean) of its members; the oracle's separation and the
collapsed set are therefore judged on these *effective* scores — each channel carrying its
group's score — so a cut is "inside the collapsed set" only if whole groups are ~0 there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..core import metrics
from ..engine.threshold import PruneDecision, select_channels, unit_scores
from .worker import CellOutcome

if TYPE_CHECKING:
    from .settings import ReplaySettings


@dataclass(frozen=True)
class Cutoff:
    """One replay cutoff: the fit sees the snapshots with ``step <= self.step``."""

    step: int
    fraction: float
    label: str


@dataclass(frozen=True)
class Row:
    """Metrics of one (forecaster, cutoff, ratio) cell; NaN everywhere when it failed."""

    forecaster: str
    cutoff: Cutoff
    ratio: float
    iou: float = math.nan
    tie_iou: float = math.nan
    precision: float = math.nan
    recall: float = math.nan
    hamming: float = math.nan
    spearman: float = math.nan
    mae: float = math.nan
    pruned: int = 0
    collapsed: tuple[str, ...] = ()
    seconds: float = math.nan
    error: str | None = None
    layer_pruned: tuple[int, ...] = ()
    note: str = ""
    block_iou: float = math.nan

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class OracleSummary:
    """The oracle's decision at one ratio and how trustworthy its order is there."""

    ratio: float
    pruned: int
    separation: metrics.Separation
    collapsed: tuple[str, ...]
    layer_pruned: tuple[int, ...]

    @property
    def rank_by(self) -> str:
        """The metric that ranks forecasters: tie-aware IoU when the cut is in the zeros."""
        return "tie_iou" if self.separation.inside_collapsed else "iou"


@dataclass(frozen=True)
class EarlyBird:
    """Early-Bird's point for one ratio on the naive (current |γ|) masks."""

    ratio: float
    spacing: int
    step: int | None
    fraction: float | None
    iou: float | None
    tie_iou: float | None


@dataclass
class Judge:
    """Turns scores into decisions under one plan and compares them with the oracle's.

    Attributes:
        settings: the replay's settings (ratios, floors, ε).
        plan: the channel plan (a bare layout under policy ``none``).
        prunable: (C,) bool, the channels the plan lets go.
        oracle_scores: (C,) final |γ|.
        effective: (C,) final |γ| as the engine ranks it (each channel carrying its group's
            score).
        eps: the absolute collapsed-set threshold on the effective scores.
        collapsed: (C,) bool, effective final |γ| below ``eps``.
        oracle: per ratio, the oracle's decision summary; ``oracle_masks``: its pruned sets.
        masks: per (forecaster, cutoff step, ratio), the pruned set each cell was scored on
            (bit-packed), so callers can check it against what ``prune`` cuts.
        blocks: the block judge when block decisions are compared too (see
            :mod:`~forecastprune.compare.blocks`), else None.
    """

    settings: ReplaySettings
    plan: Any
    prunable: np.ndarray
    oracle_scores: np.ndarray
    effective: np.ndarray
    eps: float
    collapsed: np.ndarray
    oracle: dict[float, OracleSummary] = field(default_factory=dict)
    oracle_masks: dict[float, np.ndarray] = field(default_factory=dict)
    masks: dict[tuple[str, int, float], np.ndarray] = field(default_factory=dict)
    blocks: Any = None

    @classmethod
    def build(
        cls, plan: Any, oracle_scores: np.ndarray, settings: ReplaySettings, blocks: Any = None
    ) -> Judge:
        """Decide the oracle's sets for every ratio.

        Args:
            plan: a :class:`~forecastprune.engine.coupling.ChannelPlan`, or the store's
                layout when every channel is prunable on its own (policy ``none``).
            oracle_scores: (C,) final |γ|.
            settings: ratios, floors, ε.
            blocks: a :class:`~forecastprune.compare.blocks.BlockJudge` to score block
                decisions too.
        """
        layout = getattr(plan, "layout", plan)
        prunable = np.asarray(getattr(plan, "prunable", np.ones(layout.total, dtype=bool)))
        effective = unit_scores(oracle_scores, plan, settings.spec.group_reduce)
        collapsed = metrics.collapsed_set(effective, settings.eps)
        eps = settings.eps * float(effective.max(initial=0.0))
        judge = cls(
            settings, plan, prunable, oracle_scores, effective, eps, collapsed, blocks=blocks
        )
        for ratio in settings.ratios:
            decision = judge.decide(oracle_scores, ratio)
            judge.oracle_masks[ratio] = decision.pruned
            judge.oracle[ratio] = OracleSummary(
                ratio,
                decision.n_pruned,
                metrics.separation(effective, prunable, decision.requested, eps),
                decision.collapsed,
                tuple(r.pruned for r in decision.report),
            )
        return judge

    @property
    def collapsed_fraction(self) -> float:
        """Share of the prunable channels in the collapsed set."""
        return float(self.collapsed[self.prunable].mean()) if self.prunable.any() else 0.0

    def decide(self, scores: np.ndarray, ratio: float) -> PruneDecision:
        """The engine's decision at one ratio under the spec ``prune`` applies."""
        return select_channels(scores, self.plan, self.settings.spec_at(ratio))

    def pruned_set(self, forecaster: str, cutoff_step: int, ratio: float) -> np.ndarray:
        """(C,) bool: the channels a cell's prediction pruned."""
        packed = self.masks[(forecaster, cutoff_step, ratio)]
        return np.unpackbits(packed, count=self.prunable.size).astype(bool)

    def rows(self, label: str, cutoff: Cutoff, outcome: CellOutcome) -> list[Row]:
        """One :class:`Row` per ratio for one forecaster at one cutoff."""
        if outcome.prediction is None:
            return [
                Row(label, cutoff, r, seconds=outcome.seconds, error=outcome.error)
                for r in self.settings.ratios
            ]
        pred = outcome.prediction  # already clipped at 0 by the prediction path
        live = self.prunable
        rho = metrics.spearman(pred[live], self.oracle_scores[live])
        error = metrics.mae(pred[live], self.oracle_scores[live])
        blocks = self.blocks.iou(pred) if self.blocks is not None else math.nan
        rows = []
        for ratio in self.settings.ratios:
            decision, oracle = self.decide(pred, ratio), self.oracle_masks[ratio]
            self.masks[(label, cutoff.step, ratio)] = np.packbits(decision.pruned)
            precision, recall = metrics.precision_recall(decision.pruned, oracle)
            rows.append(
                Row(
                    label,
                    cutoff,
                    ratio,
                    iou=metrics.iou(decision.pruned, oracle),
                    tie_iou=metrics.tie_aware_iou(decision.pruned, oracle, self.collapsed),
                    precision=precision,
                    recall=recall,
                    hamming=metrics.mask_distance(decision.pruned[live], oracle[live]),
                    spearman=rho,
                    mae=error,
                    pruned=decision.n_pruned,
                    collapsed=decision.collapsed,
                    seconds=outcome.seconds,
                    layer_pruned=tuple(r.pruned for r in decision.report),
                    note=outcome.note or "",
                    block_iou=blocks,
                )
            )
        return rows

    def early_birds(
        self, steps: np.ndarray, gammas: np.ndarray, spacing: int
    ) -> dict[float, EarlyBird]:
        """Early-Bird's point per ratio on masks of the current |γ| every ``spacing`` steps.

        Args:
            steps: (T,) record steps.
            gammas: (T, C) signed γ (only the grid's rows are read).
            spacing: steps between masks (the latest snapshot at or before each grid step).
        """
        rows = eb_rows(steps, spacing)
        found = {}
        for ratio in self.settings.ratios:
            masks = np.array(
                [self.decide(np.abs(gammas[i].astype(np.float64)), ratio).pruned for i in rows]
            )
            step = metrics.early_bird_step(steps[rows], masks[:, self.prunable])
            if step is None:
                found[ratio] = EarlyBird(ratio, spacing, None, None, None, None)
                continue
            mask, oracle = masks[int(np.searchsorted(steps[rows], step))], self.oracle_masks[ratio]
            found[ratio] = EarlyBird(
                ratio,
                spacing,
                step,
                step / int(steps[-1]),
                metrics.iou(mask, oracle),
                metrics.tie_aware_iou(mask, oracle, self.collapsed),
            )
        return found


def eb_rows(steps: np.ndarray, spacing: int) -> np.ndarray:
    """The snapshots Early-Bird's masks are made from: the latest at or before each grid step."""
    grid = np.arange(int(steps[0]), int(steps[-1]) + 1, spacing)
    return np.unique(np.searchsorted(steps, grid, side="right") - 1)


def eb_spacing(spacing: int | None, metadata: dict[str, Any], steps: np.ndarray) -> int:
    """Steps between Early-Bird masks: the setting, one epoch, or 5 % of the run.

    Never finer than the record interval, or consecutive masks would be the same snapshot.
    """
    spacing = spacing or metadata.get("steps_per_epoch")
    if not spacing:
        spacing = round(0.05 * int(steps[-1]))
    record = int(np.min(np.diff(steps))) if len(steps) > 1 else 1
    return max(int(spacing), record, 1)
