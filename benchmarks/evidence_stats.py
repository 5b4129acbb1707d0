"""Statistics of the evidence table: per-variant means with t-intervals, paired claim tests.

Run records are plain dicts (one per training run, as ``early_prune_table.py`` saves them):
``task``, ``ratio``, ``policy``, ``variant``, ``family``, ``seed``, ``accuracy`` (0–1),
``train_macs``, ``prune_step``, ``total_steps``, ``fired_by``. Runs that share a seed share
the model init, the data order and the sparse training up to their prune step, so every
comparison between two variants is *paired* by seed: the test runs on the per-seed
differences, which removes the seed-to-seed spread both variants share.

Tests (one-sided, on per-seed differences ``d``):

- **non-inferiority** of A to B with margin ``m`` points: H0 ``mean(d) ≤ −m`` against
  H1 ``mean(d) > −m``, paired t-test on ``d + m``;
- **earlier**: H0 ``mean(step_A − step_B) ≥ 0`` against H1 ``< 0``, paired t-test; when every
  difference is the same number (fixed cutoffs against a rule that fired at the same step in
  every seed) the t statistic is undefined and the exact sign-flip permutation p-value
  (``2^-n`` when all differences are negative) is used instead.
"""

from __future__ import annotations

import itertools
import math
import statistics
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

ACCURACY_MARGIN = 0.5  # points
COMPUTE_LIMIT = 0.60  # of slimming's training compute
ALPHA = 0.05

Run = dict[str, Any]


@dataclass(frozen=True)
class Interval:
    """A mean with its 95 % t-interval half-width over ``n`` seeds (0 when n = 1)."""

    mean: float
    half: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.2f} ± {self.half:.2f}"


def t_interval(values: list[float], level: float = 0.95) -> Interval:
    """Mean ± the two-sided ``level`` Student-t half-width."""
    n = len(values)
    if n == 0:
        return Interval(math.nan, math.nan, 0)
    mean = statistics.fmean(values)
    if n == 1:
        return Interval(mean, 0.0, 1)
    sem = statistics.stdev(values) / math.sqrt(n)
    return Interval(mean, float(stats.t.ppf(0.5 + level / 2, n - 1)) * sem, n)


def greater_p(diffs: list[float]) -> float:
    """One-sided p-value for ``mean(diffs) > 0`` (paired t-test; exact sign-flip when the
    differences have no spread)."""
    d = np.asarray(diffs, dtype=np.float64)
    if len(d) == 0:
        return math.nan
    if len(d) == 1 or np.allclose(d, d[0]):
        return sign_flip_p(list(d))
    return float(stats.ttest_1samp(d, 0.0, alternative="greater").pvalue)


def sign_flip_p(diffs: list[float]) -> float:
    """Exact one-sided sign-flip permutation p-value for ``mean(diffs) > 0``."""
    d = np.asarray(diffs, dtype=np.float64)
    observed = d.mean()
    flips = np.array(list(itertools.product((1.0, -1.0), repeat=len(d))))
    return float(np.mean((flips * d).mean(axis=1) >= observed - 1e-12))


def group_key(run: Run) -> tuple[str, float, str]:
    """The (task, ratio, policy) a run belongs to (``normal`` belongs to every group)."""
    return run["task"], float(run["ratio"]), run["policy"]


def runs_of(runs: list[Run], task: str, ratio: float, policy: str, variant: str) -> dict[int, Run]:
    """Seed → run of one variant in one group (``normal`` is shared by every group)."""
    if variant == "normal":
        return {r["seed"]: r for r in runs if r["task"] == task and r["variant"] == "normal"}
    return {
        r["seed"]: r
        for r in runs
        if (r["task"], r["ratio"], r["policy"], r["variant"]) == (task, ratio, policy, variant)
    }


@dataclass(frozen=True)
class Row:
    """One variant's aggregate in one (task, ratio, policy) group."""

    variant: str
    family: str
    accuracy: Interval  # points
    train_macs: Interval  # G MACs
    prune_fraction: Interval | None  # prune step / total steps
    macs: float  # per sample, after pruning
    fired_by: dict[str, int]
    runs: dict[int, Run]


def aggregate(
    runs: list[Run], task: str, ratio: float, policy: str, variants: list[tuple[str, str]]
) -> list[Row]:
    """One :class:`Row` per ``(variant, family)`` with runs in the group, in the given order."""
    rows = []
    for variant, family in variants:
        seeds = runs_of(runs, task, ratio, policy, variant)
        if not seeds:
            continue
        group = list(seeds.values())
        pruned = [r for r in group if r["prune_step"] is not None]
        fired: dict[str, int] = {}
        for r in group:
            key = r.get("fired_by") or ("—" if r["family"] == "normal" else "never")
            fired[key] = fired.get(key, 0) + 1
        rows.append(
            Row(
                variant=variant,
                family=family,
                accuracy=t_interval([100 * r["accuracy"] for r in group]),
                train_macs=t_interval([r["train_macs"] / 1e9 for r in group]),
                prune_fraction=t_interval([r["prune_step"] / r["total_steps"] for r in pruned])
                if pruned
                else None,
                macs=statistics.fmean(r["macs"] for r in group),
                fired_by=fired,
                runs=seeds,
            )
        )
    return rows


@dataclass(frozen=True)
class Paired:
    """A paired comparison of variant A against reference B over their common seeds."""

    seeds: tuple[int, ...]
    accuracy_gap: Interval  # A − B, points
    noninferior_p: float  # H1: A is less than ACCURACY_MARGIN points worse than B
    compute_ratio: float  # mean over seeds of A's / B's training compute
    step_gap: Interval | None  # A − B prune step as a fraction of the run
    earlier_p: float  # H1: A prunes earlier than B


def paired(a: dict[int, Run], b: dict[int, Run], margin: float = ACCURACY_MARGIN) -> Paired:
    """Compare two variants seed by seed (only seeds both ran)."""
    seeds = tuple(sorted(set(a) & set(b)))
    gaps = [100 * (a[s]["accuracy"] - b[s]["accuracy"]) for s in seeds]
    ratios = [a[s]["train_macs"] / b[s]["train_macs"] for s in seeds]
    steps = [(_pruned_at(a[s]) - _pruned_at(b[s])) / a[s]["total_steps"] for s in seeds]
    return Paired(
        seeds=seeds,
        accuracy_gap=t_interval(gaps),
        noninferior_p=greater_p([g + margin for g in gaps]),
        compute_ratio=statistics.fmean(ratios) if ratios else math.nan,
        step_gap=t_interval(steps) if steps else None,
        earlier_p=greater_p([-s for s in steps]),
    )


def _pruned_at(run: Run) -> int:
    """The prune step; a run that never pruned counts as pruned at its end."""
    return run["total_steps"] if run["prune_step"] is None else run["prune_step"]


def claim_one(test: Paired) -> str:
    """Verdict on "within 0.5 points of slimming at ≤ 60 % of its compute".

    ``holds`` needs compute ≤ 60 % and significant non-inferiority; ``not shown`` when the
    compute fits and the mean gap is within the margin but the test is not significant;
    ``fails`` otherwise.
    """
    if test.compute_ratio > COMPUTE_LIMIT or test.accuracy_gap.mean < -ACCURACY_MARGIN:
        return "fails"
    return "holds" if test.noninferior_p < ALPHA else "not shown"


def claim_two(test: Paired) -> str:
    """Verdict on "prunes earlier than Early-Bird at equal accuracy" (both significant)."""
    if (
        test.step_gap is None
        or test.step_gap.mean >= 0
        or (test.accuracy_gap.mean < -ACCURACY_MARGIN)
    ):
        return "fails"
    return "holds" if max(test.noninferior_p, test.earlier_p) < ALPHA else "not shown"


def cheapest_within(
    rows: list[Row], reference: str = "slimming", margin: float = ACCURACY_MARGIN
) -> tuple[Row, Paired] | None:
    """The pruned variant with the least mean training compute whose mean accuracy is within
    ``margin`` points of ``reference`` (the reference itself qualifies), with its paired test."""
    ref = next((r for r in rows if r.variant == reference), None)
    if ref is None:
        return None
    fits = [
        r for r in rows if r.family != "normal" and r.accuracy.mean >= ref.accuracy.mean - margin
    ]
    best = min(fits, key=lambda r: r.train_macs.mean)
    return best, paired(best.runs, ref.runs, margin)
