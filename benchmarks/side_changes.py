"""Where is the signal? Channels that change side of the cut after a cutoff, and what predicts it.

For every run of the trajectory suite and every cutoff, the pruned set that the |γ| at the
cutoff gives (``naive``) is compared with the pruned set of the final |γ| — the same threshold
rule (``PruneSpec``, ratio 0.5, policy ``none``, min-keep 1) as ``compare`` and ``benchmark``.
The script reports

1. how many channels cross the cut after the cutoff, and naive's IoU;
2. where they sat at the cutoff: share of crossers per bin of rank distance from the cut;
3. for the channels near the cut, the AUC of single history features for "crosses the cut",
   each feature signed toward the cut (see :func:`_sides.toward_cut`),
   pooled over runs, for all runs and for the held-out runs of ``suite.json``;

prints the tables and writes ``docs/side-changes.md`` (and a PNG of crossers by distance).

Usage: ``python benchmarks/side_changes.py [--doc docs/side-changes.md] [--plot PNG]``
(a few seconds on one core).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the analysis helpers beside this

from _sides import (
    BIN_EDGES,
    BinCounts,
    SideChanges,
    auc,
    bin_changers,
    cut_distance,
    side_changes,
    tied_across_cut,
    toward_cut,
)

from forecastprune.compare.suite import SuiteRun, load_suite
from forecastprune.core import metrics
from forecastprune.core.layout import ChannelLayout
from forecastprune.engine.spec import PruneSpec
from forecastprune.engine.threshold import select_channels
from forecastprune.forecasters.candidates import Window
from forecastprune.forecasters.features import FEATURES, channel_features, run_scale
from forecastprune.predict import cutoff_step, store_clock
from forecastprune.store import GammaTrajectoryStore
from forecastprune.store.timeline import run_length

CUTOFFS = ("0.05", "0.1", "0.2", "0.3")
RATIO = 0.5
#: "near the cut": |rank distance| below this share of the channels
NEAR = 0.10
#: the cut's own drift is the median trend of the channels this close to it
CUT_BAND = 0.02
#: features scored, and whether each is signed toward the cut (False: used as it is)
SCORED = {
    "closeness": False,  # −|rank distance| (the reference: distance alone)
    "level_z": True,  # (|γ| − run mean) / run spread (below the cut high = close)
    "drop_since_start": True,  # |γ| / |γ| at the first snapshot − 1
    "trend_step_recent": True,  # slope over steps, last quarter, × horizon, minus the cut's
    "trend_lr_recent": True,  # the same over cumulative LR
    "trend_lr_all": True,  # the same over the whole history
    "ar1_lr": True,  # AR(1)-on-increments forecast − last, minus the cut's
    "off_ema": True,  # last − EMA(span 4): recent acceleration
    "volatility": False,  # std of recent increments × √horizon / scale
    "volatility_up": True,  # the same, read as "a lively channel rises"
    "layer_percentile": True,  # rank of |γ| within its layer
    "layer_mean": True,  # the layer's mean |γ| / run scale
    "shallowness": True,  # 1 − the layer's position in the layout / (layers − 1)
    "projected_lr": False,  # trend_lr_all toward the cut − |γ − cut| / scale
}
#: trends whose common drift (the cut's) is removed so runs pool on one scale
RELATIVE = ("trend_step_recent", "trend_lr_recent", "trend_lr_all", "ar1_lr")


@dataclass
class Cell:
    """One (run, cutoff): side changes, distance bins, and the near-cut channels' features."""

    run: SuiteRun
    cutoff: str
    changes: SideChanges
    bins: BinCounts
    features: dict[str, np.ndarray]  # (C,) each, signed as SCORED says
    crossed: np.ndarray  # (C,) True where the side changed
    below: np.ndarray  # (C,) True where pruned at the cutoff
    distance: np.ndarray  # (C,) signed rank distance from the cut at the cutoff
    rescued: int  # below the cut but kept by the per-layer floor (min-keep)
    spread: float  # interquartile range / median of |γ| at the cutoff
    tied: np.ndarray  # (C,) True where only the tie-break set the side
    tie_breaks: dict[str, float]  # naive's IoU under each tie-break of TIE_BREAKS


def analyse_run(run: SuiteRun, cutoffs: tuple[str, ...]) -> list[Cell]:
    """Every cutoff of one run."""
    with GammaTrajectoryStore.open(run.path) as store:
        steps, gammas = store.history()
        clock, length, layout = store_clock(store), run_length(store), store.layout
    values = np.abs(gammas.astype(np.float64))
    t = np.asarray(clock(steps), dtype=np.float64)
    spec = PruneSpec(ratio=RATIO, policy="none")
    pruned_end = select_channels(values[-1], layout, spec).pruned
    cells = []
    for cutoff in cutoffs:
        end = int(np.searchsorted(steps, cutoff_step(cutoff, length), side="right"))
        now = select_channels(values[end - 1], layout, spec)
        distance = cut_distance(values[end - 1], now.requested)
        changed = now.pruned != pruned_end
        window = Window(
            steps[:end].astype(np.float64), t[:end], values[:end], float(steps[-1]), float(t[-1])
        )
        features = channel_features_here(window, layout, distance, now.pruned)
        signed = {
            name: (toward_cut(f, now.pruned) if SCORED[name] else f) for name, f in features.items()
        }
        cells.append(
            Cell(
                run,
                cutoff,
                side_changes(now.pruned, pruned_end),
                bin_changers(distance, changed),
                signed,
                changed,
                now.pruned,
                distance,
                int(np.count_nonzero((distance < 0) & ~now.pruned)),
                _spread(values[end - 1]),
                tied_across_cut(values[end - 1], now.requested),
                tie_break_ious(values[:end], now.requested, pruned_end),
            )
        )
    return cells


#: ways to order channels of equal |γ| at the cutoff (the engine: lowest index first)
TIE_BREAKS = ("lowest index (engine)", "highest index", "lower history mean")


def tie_break_ious(history: np.ndarray, n_pruned: int, pruned_end: np.ndarray) -> dict[str, float]:
    """Naive's IoU with the end's pruned set when ties at the cutoff are broken each way."""
    last, index = history[-1], np.arange(history.shape[1])
    orders = (
        np.lexsort((index, last)),
        np.lexsort((-index, last)),
        np.lexsort((index, history.mean(axis=0), last)),
    )
    ious = {}
    for name, order in zip(TIE_BREAKS, orders):
        pruned = np.zeros(last.size, dtype=bool)
        pruned[order[:n_pruned]] = True
        ious[name] = metrics.iou(pruned, pruned_end)
    return ious


def _spread(x: np.ndarray) -> float:
    q1, q2, q3 = np.percentile(x, [25, 50, 75])
    return float((q3 - q1) / q2) if q2 > 0 else float("nan")


def channel_features_here(
    w: Window, layout: ChannelLayout, distance: np.ndarray, pruned: np.ndarray
) -> dict[str, np.ndarray]:
    """The learned forecaster's features plus layer statistics and distance, unsigned (but
    ``projected_lr``, which is signed toward the side ``pruned`` puts each channel on)."""
    learned = dict(zip(FEATURES, channel_features(w).T))
    last, scale = w.values[-1], run_scale(w.values)
    cut_band = np.abs(distance) < CUT_BAND
    for name in RELATIVE:  # every channel drifts; only moving relative to the cut crosses it
        learned[name] = learned[name] - np.median(learned[name][cut_band])
    first = np.where(w.values[0] > 0, w.values[0], np.nan)
    per_layer_pct, per_layer_mean = np.empty_like(last), np.empty_like(last)
    for name in layout.names:
        part = layout.slice(name)
        x = last[part]
        per_layer_pct[part] = np.argsort(np.argsort(x, kind="stable"), kind="stable") / max(
            x.size - 1, 1
        )
        per_layer_mean[part] = x.mean() / scale
    below = distance < 0  # the value cut, before any per-layer floor gives channels back
    cut_level = 0.5 * (last[below].max(initial=0.0) + last[~below].min(initial=np.inf))
    return {
        "closeness": -np.abs(distance),
        "level_z": learned["level_z"],
        "drop_since_start": np.nan_to_num(last / first - 1.0),
        "trend_step_recent": learned["trend_step_recent"],
        "trend_lr_recent": learned["trend_lr_recent"],
        "trend_lr_all": learned["trend_lr_all"],
        "ar1_lr": learned["ar1_lr"],
        "off_ema": learned["off_ema"],
        "volatility": learned["volatility"],
        "volatility_up": learned["volatility"],
        "layer_percentile": per_layer_pct,
        "layer_mean": per_layer_mean,
        "shallowness": 1.0
        - np.repeat(np.arange(len(layout.sizes)), layout.sizes) / max(len(layout.sizes) - 1, 1),
        "projected_lr": toward_cut(learned["trend_lr_all"], pruned)
        - np.abs(last - cut_level) / scale,
    }


# ------------------------------------------------------------------------------ tables
def _pct(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{100 * x:.1f} %"


def cells_at(cells: list[Cell], cutoff: str, held_out: bool | None = None) -> list[Cell]:
    """The cells of one cutoff (``held_out=True``: of the held-out runs only)."""
    return [c for c in cells if c.cutoff == cutoff and (held_out is None or c.run.held_out)]


def pooled_bins(cells: list[Cell]) -> BinCounts:
    """The distance bins of several cells, added."""
    total = cells[0].bins
    for c in cells[1:]:
        total = total + c.bins
    return total


def _bin_label(i: int) -> str:
    lo, hi = BIN_EDGES[i], BIN_EDGES[i + 1]
    return f"> {100 * lo:g} %" if not np.isfinite(hi) else f"{100 * lo:g}–{100 * hi:g} %"


def summary_table(cells: list[Cell], cutoffs: tuple[str, ...]) -> str:
    """Per cutoff, pooled over runs: crossers and where they sat."""
    near = [i for i in range(len(BIN_EDGES) - 1) if BIN_EDGES[i + 1] <= NEAR]
    lines = [
        "| cutoff | naive IoU (mean) | |γ| IQR / median (mean) | channels tied across "
        "the cut | crossers / channels | end-pruned missed by naive | crossers within "
        "2 % / 5 % / 10 % of the cut |",
        "|---|---|---|---|---|---|---|",
    ]
    for cutoff in cutoffs:
        group = cells_at(cells, cutoff)
        changed = sum(c.changes.changed for c in group)
        channels = sum(c.changes.channels for c in group)
        missed = sum(c.changes.down for c in group) / sum(c.changes.pruned_end for c in group)
        shares = np.cumsum(pooled_bins(group).share_of_changers)
        within = " / ".join(_pct(shares[i]) for i in near)
        lines.append(
            f"| {float(cutoff):.0%} | {np.mean([c.changes.iou for c in group]):.3f} | "
            f"{np.mean([c.spread for c in group]):.3f} | "
            f"{sum(int(c.tied.sum()) for c in group)} | {_pct(changed / channels)} | "
            f"{_pct(missed)} | {within} |"
        )
    return "\n".join(lines)


def run_table(cells: list[Cell], cutoffs: tuple[str, ...]) -> str:
    """Per run: naive IoU and the crossers' share of the channels at each cutoff."""
    head = " | ".join(f"{float(c):.0%}" for c in cutoffs)
    lines = [
        f"| run (naive IoU · crossers · tied across the cut) | {head} |",
        "|---" * (len(cutoffs) + 1) + "|",
    ]
    for run in dict.fromkeys(c.run for c in cells):
        row = []
        for cutoff in cutoffs:
            cell = next(c for c in cells if c.run == run and c.cutoff == cutoff)
            row.append(
                f"{cell.changes.iou:.2f} · {_pct(cell.changes.share_of_channels)} · "
                f"{int(cell.tied.sum())}"
            )
        label = f"{run.name} (held out)" if run.held_out else run.name
        lines.append(f"| {label} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def bin_table(cells: list[Cell], cutoffs: tuple[str, ...]) -> str:
    """Per cutoff and distance bin: crossers' share of the bin (and the bin's share of them)."""
    n = len(BIN_EDGES) - 1
    lines = [
        "| cutoff | " + " | ".join(_bin_label(i) for i in range(n)) + " |",
        "|---" * (n + 1) + "|",
    ]
    for cutoff in cutoffs:
        b = pooled_bins(cells_at(cells, cutoff))
        lines.append(
            f"| {float(cutoff):.0%} | "
            + " | ".join(
                f"{_pct(b.share_changed[i])} ({_pct(b.share_of_changers[i])})" for i in range(n)
            )
            + " |"
        )
    return "\n".join(lines)


@dataclass
class Pooled:
    """Channels of several cells within a distance band, with their strata (run × side)."""

    features: dict[str, np.ndarray]
    crossed: np.ndarray
    below: np.ndarray
    strata: np.ndarray

    @classmethod
    def of(cls, cells: list[Cell], band: float) -> Pooled:
        """The channels within ``band`` of the cut, less those the tie-break put on a side."""
        keeps = [(np.abs(c.distance) < band) & ~c.tied for c in cells]

        def kept(arrays: list[np.ndarray]) -> np.ndarray:
            return np.concatenate([a[k] for a, k in zip(arrays, keeps)])

        below = kept([c.below for c in cells])
        run = np.concatenate([np.full(int(k.sum()), i) for i, k in enumerate(keeps)])
        return cls(
            {name: kept([c.features[name] for c in cells]) for name in SCORED},
            kept([c.crossed for c in cells]),
            below,
            2 * run + below,
        )

    def null_se(self) -> float:
        """Standard error of a stratified AUC when the feature carries no information: the
        U statistic's null variance, stratum by stratum, over the pairs compared."""
        variance = pairs = 0.0
        for label in np.unique(self.strata):
            y = self.crossed[self.strata == label]
            n1, n0 = int(y.sum()), int((~y).sum())
            variance += n1 * n0 * (n1 + n0 + 1) / 12.0
            pairs += n1 * n0
        return float(np.sqrt(variance) / pairs) if pairs else float("nan")

    def auc(self, name: str, side: bool | None = None) -> float:
        """AUC within (run, side) strata; ``side``: only below (True) or above (False)."""
        keep = np.ones(self.crossed.shape, bool) if side is None else self.below == side
        return auc(self.features[name][keep], self.crossed[keep], self.strata[keep])


def auc_table(
    cells: list[Cell], cutoffs: tuple[str, ...], held_out: bool | None, band: float
) -> str:
    """Per feature and cutoff: AUC for "crosses the cut", within (run, side) strata."""
    head = " | ".join(f"{float(c):.0%}" for c in cutoffs)
    pools = [Pooled.of(cells_at(cells, c, held_out), band) for c in cutoffs]
    lines = [
        f"| feature | {head} |",
        "|---" * (len(cutoffs) + 1) + "|",
        "| *crossers / channels (above → down, below → up)* | "
        + " | ".join(
            f"{int(p.crossed[~p.below].sum())}/{int((~p.below).sum())}, "
            f"{int(p.crossed[p.below].sum())}/{int(p.below.sum())}"
            for p in pools
        )
        + " |",
    ]
    lines.append(
        "| *s.e. of an uninformative AUC (Mann–Whitney null)* | "
        + " | ".join(f"{p.null_se():.3f}" for p in pools)
        + " |"
    )
    for name in SCORED:
        lines.append(f"| {name} | " + " | ".join(f"{p.auc(name):.2f}" for p in pools) + " |")
    return "\n".join(lines)


def side_table(cells: list[Cell], cutoffs: tuple[str, ...], band: float) -> str:
    """AUC per direction: above the cut → ends pruned (down), below → ends kept (up)."""
    head = " | ".join(f"{float(c):.0%} down / up" for c in cutoffs)
    pools = [Pooled.of(cells_at(cells, c), band) for c in cutoffs]
    lines = [f"| feature | {head} |", "|---" * (len(cutoffs) + 1) + "|"]
    for name in SCORED:
        lines.append(
            f"| {name} | "
            + " | ".join(f"{p.auc(name, False):.2f} / {p.auc(name, True):.2f}" for p in pools)
            + " |"
        )
    return "\n".join(lines)


def tie_table(cells: list[Cell], cutoffs: tuple[str, ...]) -> str:
    """Naive's mean IoU under each tie-break (a plain cut, no floors), and the largest change
    of any run from the engine's."""
    lines = [
        "| cutoff | " + " | ".join(TIE_BREAKS) + " | largest change in one run |",
        "|---" * (len(TIE_BREAKS) + 2) + "|",
    ]
    for cutoff in cutoffs:
        group = cells_at(cells, cutoff)
        means = [np.mean([c.tie_breaks[name] for c in group]) for name in TIE_BREAKS]
        change = max(
            (
                c.tie_breaks[name] - c.tie_breaks[TIE_BREAKS[0]]
                for c in group
                for name in TIE_BREAKS[1:]
            ),
            key=abs,
        )
        worst = next(
            c.run.name
            for c in group
            for name in TIE_BREAKS[1:]
            if c.tie_breaks[name] - c.tie_breaks[TIE_BREAKS[0]] == change
        )
        lines.append(
            f"| {float(cutoff):.0%} | "
            + " | ".join(f"{m:.3f}" for m in means)
            + f" | {change:+.3f} ({worst}) |"
        )
    return "\n".join(lines)


def plot(cells: list[Cell], cutoffs: tuple[str, ...], path: Path) -> None:
    """Crossers' share of each distance bin, one line per cutoff."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(BIN_EDGES) - 1
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for cutoff in cutoffs:
        ax.plot(
            range(n),
            100 * pooled_bins(cells_at(cells, cutoff)).share_changed,
            marker="o",
            label=f"cutoff {float(cutoff):.0%}",
        )
    ax.set_xticks(range(n), [_bin_label(i) for i in range(n)])
    ax.set_xlabel("|rank distance from the cut| at the cutoff (share of channels)")
    ax.set_ylabel("channels that cross (%)")
    ax.set_title(f"Suite, ratio {RATIO:g}: who changes side after the cutoff")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--suite", default=None, help="suite folder (default: bundled)")
    parser.add_argument("--doc", type=Path, default=None, help="write the markdown report here")
    parser.add_argument("--plot", type=Path, default=None, help="write the PNG here")
    args = parser.parse_args()
    cells = [cell for run in load_suite(args.suite) for cell in analyse_run(run, CUTOFFS)]
    tables = {
        "summary": summary_table(cells, CUTOFFS),
        "runs": run_table(cells, CUTOFFS),
        "bins": bin_table(cells, CUTOFFS),
        "auc_near": auc_table(cells, CUTOFFS, None, NEAR),
        "auc_near_held": auc_table(cells, CUTOFFS, True, NEAR),
        "auc_every": auc_table(cells, CUTOFFS, None, np.inf),
        "sides_near": side_table(cells, CUTOFFS, NEAR),
        "ties": tie_table(cells, CUTOFFS),
    }
    for name, table in tables.items():
        print(f"\n## {name}\n\n{table}")
    print(
        f"\nchannels below the cut that a per-layer floor kept: "
        f"{sum(c.rescued for c in cells)} in all cells"
    )
    if args.plot is not None:
        plot(cells, CUTOFFS, args.plot)
    if args.doc is not None:
        from side_changes_doc import render  # the prose lives beside this script

        args.doc.write_text(render(cells, tables, args.plot), encoding="utf-8")


if __name__ == "__main__":
    main()
