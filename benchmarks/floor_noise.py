"""How fine issue 20's floor (never below naive − 0.01 IoU) is, in channels and in snapshots.

Two measures per (run, cutoff, ratio) cell, scored as ``compare`` scores them (policy none,
cutoffs 10/20 %, ratios 0.5/0.7; ``benchmarks/auto_gate.py``'s scorer):

- **one channel**: how much IoU one channel pruned by mistake costs there, i.e. the IoU of
  naive's cut with one of its correct channels swapped for a wrong one, minus naive's IoU;
- **k snapshots later**: naive's IoU had the cut been taken k recorded snapshots later (one
  snapshot is 0.5–0.8 % of the run), minus naive's IoU: what a forecaster that knew the |γ|
  exactly that far ahead would score. The later cut knows strictly more, so where it falls
  below the floor the floor lies inside what the metric does by chance.

The first table is by run size (one channel's cost, one snapshot later, and the cells where
``learned_gbr``'s family-out forecasts — ``auto_gate.py --dump``'s fold forecasts, ungated —
break the floor, with how many of those are ≤ 2 wrong channels beyond naive's); the second
is per k over every cell.

Usage::

    python benchmarks/floor_noise.py --corpus DIR --cache DIR
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
from auto_gate import FLOOR, RATIOS, SCORED, CellJudge, _manifest, corpus_parser, window_at

from forecastprune.store import GammaTrajectoryStore

#: run sizes (channels) the table is split by: the zoo nets, the mid-size, the detectors' size
BANDS = ((0, 500), (500, 3000), (3000, 10_000), (10_000, 10**9))
#: how many snapshots later the perfectly informed cuts are taken
LATER = (1, 2, 4, 8, 16)


def one_swap(judge: CellJudge, pruned: np.ndarray, ratio: float) -> np.ndarray:
    """``pruned`` with one correctly pruned channel kept and one wrongly kept channel pruned."""
    oracle = judge.judge.oracle_masks[ratio]
    right, missed = np.flatnonzero(pruned & oracle), np.flatnonzero(~pruned & ~oracle)
    out = pruned.copy()
    if len(right) and len(missed):
        out[right[0]], out[missed[0]] = False, True
    return out


def run_cells(corpus: Path, cache: Path, run: str) -> list[dict[str, float]]:
    """Every (cutoff, ratio) cell of one run: its size, the share of the run one snapshot
    spans, the two measures, and ``learned_gbr``'s gain and wrong channels beyond naive's."""
    data = np.load(cache / "gate" / f"{run}.npz")
    out = []
    with GammaTrajectoryStore.open(corpus / f"{run}.fpstore") as store:
        values = np.abs(np.asarray(store.view(), dtype=np.float64))
        judge = CellJudge(store.layout, data["final"])
        for cutoff in SCORED:
            rows = len(window_at(store, cutoff).values)
            for ratio in RATIOS:
                cut = judge.cut(values[rows - 1], ratio)
                base = judge.iou(cut, ratio)
                gbr = judge.cut(data[f"gbr|{cutoff}"], ratio)
                cell = {
                    "channels": values.shape[1],
                    "snapshot": 1 / (len(values) - 1),
                    "one_channel": judge.iou(one_swap(judge, cut, ratio), ratio) - base,
                    "gbr": judge.iou(gbr, ratio) - base,
                    "gbr_wrong": judge.correct(cut, ratio) - judge.correct(gbr, ratio),
                }
                for k in LATER:  # never the final snapshot itself: that is the oracle
                    later = values[min(rows - 1 + k, len(values) - 2)]
                    cell[f"later{k}"] = judge.iou(judge.cut(later, ratio), ratio) - base
                out.append(cell)
    return out


def by_size(cells: list[dict[str, float]]) -> str:
    """Markdown: per run-size band, the two measures and ``learned_gbr``'s floor breaks."""
    bands: dict[tuple[int, int], list[dict[str, float]]] = defaultdict(list)
    for cell in cells:
        bands[next(b for b in BANDS if b[0] <= cell["channels"] < b[1])].append(cell)
    lines = [
        "| channels | cells | one channel costs (median IoU) | one snapshot later: mean gain "
        "· cells < −0.01 | `learned_gbr` < −0.01 | of which ≤ 2 channels beyond naive |",
        "|---|---|---|---|---|---|",
    ]
    for (lo, hi), group in [*sorted(bands.items()), ((0, 0), cells)]:
        one = np.median([c["one_channel"] for c in group])
        later = np.array([c["later1"] for c in group])
        broken = [c for c in group if c["gbr"] < FLOOR]
        near = sum(c["gbr_wrong"] <= 2 for c in broken)
        label = "all" if hi == 0 else f"{lo:,}–{hi:,}" if hi < 10**9 else f"≥ {lo:,}"
        below = int(np.sum(later < FLOOR))
        lines.append(
            f"| {label} | {len(group)} | {one:+.4f} | {later.mean():+.4f} · {below} "
            f"({below / len(group):.0%}) | {len(broken)} | {near} |"
        )
    return "\n".join(lines)


def by_lead(cells: list[dict[str, float]]) -> str:
    """Markdown: per k, how far ahead the cut k snapshots later is and what it scores."""
    lines = [
        "| cut taken | that is (median share of the run) | mean gain over naive "
        "| cells < −0.01 | worst cell |",
        "|---|---|---|---|---|",
    ]
    for k in LATER:
        gain = np.array([c[f"later{k}"] for c in cells])
        ahead = np.median([k * c["snapshot"] for c in cells])
        lines.append(
            f"| {k} snapshot{'s' if k > 1 else ''} later | {ahead:.1%} | {gain.mean():+.4f} "
            f"| {int(np.sum(gain < FLOOR))}/{gain.size} | {gain.min():+.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    args = corpus_parser(__doc__).parse_args()
    family, _ = _manifest(args.corpus)
    cells = [cell for run in sorted(family) for cell in run_cells(args.corpus, args.cache, run)]
    print(by_size(cells), by_lead(cells), sep="\n\n")


if __name__ == "__main__":
    main()
