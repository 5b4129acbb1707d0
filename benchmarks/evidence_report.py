"""``docs/results.md`` and its plots from the saved run records of ``early_prune_table.py``.

Everything here is computed from the records (see ``evidence_stats.py`` for the statistics),
so ``--render-only`` reproduces the report without training.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import evidence_stats as es

TASK_TEXT = {
    "digits-hard": "digits-hard (359 training / 1,438 test images; one test image = 0.07 points)",
    "digits": "digits (1,437 training / 360 test images; one test image = 0.28 points)",
}
#: what the shipped ``auto`` does, for the tables whose runs used it (the digits table's runs
#: predate the gate and keep their own description)
GATED_AUTO = (
    "`auto` is `naive` unless `learned_gbr` beats naive in the run's own in-history backtest "
    "by its gate's margin (`forecastprune/data/gates.json`, docs/corpus.md). The bundled gate is "
    "closed — fitted family-out, no margin kept every corpus cell above naive − 0.01 — so these "
    "`auto` runs forecast exactly as `naive` does"
)


def runs_path(out: Path) -> Path:
    """Where a report's raw run records live: next to it, as ``<stem>-runs.json``."""
    return out.with_name(out.stem + "-runs.json")


def saved_runs(out: Path, wanted: bool = True) -> dict[str, Any] | None:
    """The run records saved next to report ``out``; None when not wanted (neither
    ``--resume`` nor ``--render-only``) or not there."""
    raw = runs_path(out)
    return json.loads(raw.read_text(encoding="utf-8")) if wanted and raw.exists() else None


def wall_time(meta: dict[str, Any]) -> str:
    """The records' cost in words: single-thread wall time summed over the kept runs, and the
    elapsed time of every chunk that made them (runs made again included)."""
    summed = sum(r.get("wall_seconds", 0.0) for r in meta["results"]) / 60
    return (
        f"{len(meta['results'])} training runs, {summed:.1f} min of single-thread wall time "
        f"summed over them ({meta['seconds'] / 60:.1f} min elapsed over every chunk, "
        f"`--jobs {meta.get('jobs', 1)}` in the last, runs made again included)"
    )


#: colour per method (forecasters share one per forecaster), marker per timing
COLOURS = {
    "slimming": "black",
    "slimming 2×": "dimgray",
    "early-bird": "tab:red",
    "normal": "tab:gray",
    "naive": "tab:blue",
    "sma": "tab:orange",
    "arima": "tab:green",
    "auto": "tab:purple",
    "learned": "tab:brown",
    "learned_gbr": "tab:olive",
}
MARKERS = {"0.1": "v", "0.3": "^", "stability": "*", "confidence": "P"}


def groups(meta: dict[str, Any]) -> list[tuple[str, float, str]]:
    """The (task, ratio, policy) groups of the saved grid that have runs, in grid order."""
    present = {es.group_key(r) for r in meta["results"] if r["ratio"] is not None}
    return [
        (g["task"], float(ratio), policy)
        for g in meta["grids"]
        for ratio in g["ratios"]
        for policy in g["policies"]
        if (g["task"], float(ratio), policy) in present
    ]


def variant_order(meta: dict[str, Any]) -> list[tuple[str, str]]:
    """(variant, family) in table order, as the records name them."""
    seen: dict[str, str] = {}
    for family in ("normal", "slimming", "early-bird", "forecast", "forecast-auto"):
        for r in meta["results"]:
            if r["family"] == family:
                seen.setdefault(r["variant"], family)
    return list(seen.items())


def _style(variant: str) -> tuple[str, str]:
    parts = variant.split()
    if parts[0] == "forecast":
        return COLOURS.get(parts[1], "tab:cyan"), MARKERS.get(parts[2].lstrip("@"), "o")
    return COLOURS.get(variant, "tab:cyan"), "s" if variant != "normal" else "o"


# ------------------------------------------------------------------------- tables
def _fraction(row: es.Row) -> str:
    if row.prune_fraction is None:
        return "—"
    return f"{100 * row.prune_fraction.mean:.0f} ± {100 * row.prune_fraction.half:.0f} %"


def group_table(rows: list[es.Row]) -> list[str]:
    """Every variant of one group: accuracy, size, prune point, compute, firing reasons."""
    slim = next((r for r in rows if r.variant == "slimming"), None)
    lines = [
        "| method | accuracy (%) | MACs/sample | prune point | training compute (G) | "
        "vs slimming | fired by | wall (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = f"{r.train_macs.mean / slim.train_macs.mean:.2f}" if slim else "—"
        fired = ", ".join(f"{k} {v}" for k, v in sorted(r.fired_by.items()) if k != "—")
        wall = es.t_interval([run["wall_seconds"] for run in r.runs.values()])
        lines.append(
            f"| {r.variant} | {r.accuracy} | {r.macs / 1e3:.0f} k | {_fraction(r)} | "
            f"{r.train_macs} | {ratio} | {fired or '—'} | {wall.mean:.1f} |"
        )
    return lines


def _p(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.3f}"


def headline(meta: dict[str, Any]) -> list[str]:
    """The cheapest method within the margin of slimming, per group."""
    lines = [
        "| task | ratio | policy | normal (%) | slimming 2× (%) | slimming (%) | cheapest "
        "within 0.5 points | its accuracy (%) | compute vs slimming | paired gap (points, "
        "95 % CI) | p (non-inferior) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for task, ratio, policy in groups(meta):
        rows = es.aggregate(meta["results"], task, ratio, policy, variant_order(meta))
        found = es.cheapest_within(rows)
        slim = next((r for r in rows if r.variant == "slimming"), None)
        if found is None or slim is None:
            continue
        best, test = found
        named = {r.variant: str(r.accuracy) for r in rows}
        lines.append(
            f"| {task} | {ratio} | {policy} | {named.get('normal', '—')} | "
            f"{named.get('slimming 2×', '—')} | {slim.accuracy} | **{best.variant}** | "
            f"{best.accuracy} | {test.compute_ratio:.2f} | {test.accuracy_gap} | "
            f"{_p(test.noninferior_p) if best.variant != 'slimming' else '—'} |"
        )
    return lines


def verdicts(
    meta: dict[str, Any], reference: str, verdict: Any
) -> list[tuple[str, tuple[str, float, str], str]]:
    """(variant, group, verdict) of every forecast variant in every group against
    ``reference``."""
    out = []
    for variant, family in variant_order(meta):
        if not family.startswith("forecast"):
            continue
        for key in groups(meta):
            a = es.runs_of(meta["results"], *key, variant)
            b = es.runs_of(meta["results"], *key, reference)
            if a and b:
                out.append((variant, key, verdict(es.paired(a, b))))
    return out


def summary(meta: dict[str, Any]) -> list[str]:
    """Computed one-line answers: each claim, each timing rule."""
    lines = []
    for name, reference, verdict in (
        (
            "Claim 1 (within 0.5 points of slimming at ≤ 60 % of its compute)",
            "slimming",
            es.claim_one,
        ),
        ("Claim 2 (prunes earlier than Early-Bird at equal accuracy)", "early-bird", es.claim_two),
    ):
        cells = verdicts(meta, reference, verdict)
        held = [f"{v} ({t} {r} {p})" for v, (t, r, p), x in cells if x == "holds"]
        shown = sum(x == "not shown" for *_, x in cells)
        lines.append(
            f"- **{name}** holds, with significance, in {len(held)} of {len(cells)} "
            f"(forecast variant, task, ratio, policy) cells"
            + (f": {', '.join(held)}" if held else "")
            + f"; {shown} more meet it on the means without a significant test."
        )
    best = []
    for key in groups(meta):
        rows = es.aggregate(meta["results"], *key, variant_order(meta))
        pruned = [r for r in rows if r.family != "normal"]
        if pruned:
            best.append(max(pruned, key=lambda r: r.accuracy.mean).variant)
    for variant in dict.fromkeys(best):
        lines.append(
            f"- The most accurate pruned method is **{variant}** in "
            f"{best.count(variant)} of {len(best)} (task, ratio, policy) groups."
        )
    for rule in ("stability", "confidence"):
        runs = [r for r in meta["results"] if r["variant"] == f"forecast auto @{rule}"]
        if not runs:
            continue
        by_rule = [r for r in runs if r["fired_by"] not in (None, "deadline")]
        fraction = es.t_interval([r["prune_step"] / r["total_steps"] for r in runs])
        lines.append(
            f"- The **{rule}** rule fired by its own test in {len(by_rule)} of "
            f"{len(runs)} runs (the rest at the 60 % deadline), at "
            f"{100 * fraction.mean:.0f} % of the run on average."
        )
    return lines


def claims(meta: dict[str, Any], reference: str, verdict: Any, what: str) -> list[str]:
    """One row per forecast variant, one cell per group: verdict, gap, compute or step, p."""
    keys = groups(meta)
    head = ["variant"] + [f"{t} {r} {p}" for t, r, p in keys]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    counts = {"holds": 0, "not shown": 0, "fails": 0}
    for variant, family in variant_order(meta):
        if not family.startswith("forecast"):
            continue
        cells = [variant]
        for task, ratio, policy in keys:
            a = es.runs_of(meta["results"], task, ratio, policy, variant)
            b = es.runs_of(meta["results"], task, ratio, policy, reference)
            if not a or not b:
                cells.append("—")
                continue
            test = es.paired(a, b)
            v = verdict(test)
            counts[v] += 1
            second = (
                f"{100 * test.compute_ratio:.0f} % compute"
                if what == "compute"
                else f"{-100 * test.step_gap.mean:.0f} % of the run earlier "
                f"(p {_p(test.earlier_p)})"
                if test.step_gap
                else "—"
            )
            cells.append(
                f"**{v}**: {test.accuracy_gap.mean:+.2f} pts (p {_p(test.noninferior_p)}), {second}"
            )
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Verdicts over all cells: {counts['holds']} hold, {counts['not shown']} not "
        f"shown, {counts['fails']} fail.",
    ]
    return lines


def timing_rules(meta: dict[str, Any], measure: str = "accuracy") -> list[str]:
    """When each automatic rule fired and what it bought, against the fixed cutoffs
    (``measure``: what the records' ``accuracy`` holds, for the column's name)."""
    lines = [
        f"| task | ratio | policy | rule | fired by | prune point | {measure} (%) | vs auto "
        "@0.3 (points) | vs auto @0.1 (points) | vs @stability (points) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for task, ratio, policy in groups(meta):
        rows = {
            r.variant: r
            for r in es.aggregate(meta["results"], task, ratio, policy, variant_order(meta))
        }
        for name in ("forecast auto @stability", "forecast auto @confidence", "early-bird"):
            row = rows.get(name)
            if row is None:
                continue
            gaps = []
            for fixed in ("forecast auto @0.3", "forecast auto @0.1", "forecast auto @stability"):
                ref = rows.get(fixed)
                same = ref is None or fixed == name
                gaps.append("—" if same else str(es.paired(row.runs, ref.runs).accuracy_gap))
            fired = ", ".join(f"{k} {v}" for k, v in sorted(row.fired_by.items()))
            lines.append(
                f"| {task} | {ratio} | {policy} | {name.split()[-1].lstrip('@')} | "
                f"{fired} | {_fraction(row)} | {row.accuracy} | {' | '.join(gaps)} |"
            )
    return lines


# ------------------------------------------------------------------------- plots
def pareto(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The points no other point beats on both less compute and more accuracy, by compute."""
    front: list[tuple[float, float]] = []
    for x, y in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or y > front[-1][1]:
            front.append((x, y))
    return front


def plot_task(
    meta: dict[str, Any],
    task: str,
    x_of: str,
    path: Path,
    *,
    ylabel: str = "test accuracy (%)",
    measure: str = "accuracy",
) -> None:
    """One panel per (policy, ratio): mean accuracy ± CI against training compute
    (``x_of="compute"``, with the Pareto front) or against the prune point (``"prune"``).
    ``ylabel`` and ``measure`` name what the records' ``accuracy`` holds (e.g. mAP50-95)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from forecastprune._util import atomic_write

    keys = [k for k in groups(meta) if k[0] == task]
    ratios = sorted({r for _, r, _ in keys})
    policies = [p for p in ("seed", "grouped") if any(k[2] == p for k in keys)]
    fig, axes = plt.subplots(
        len(policies), len(ratios), squeeze=False, figsize=(4.6 * len(ratios), 3.8 * len(policies))
    )
    handles: dict[str, Any] = {}
    for i, policy in enumerate(policies):
        for j, ratio in enumerate(ratios):
            ax = axes[i][j]
            rows = es.aggregate(meta["results"], task, ratio, policy, variant_order(meta))
            points = []
            for r in rows:
                if r.family == "normal":
                    ax.axhline(r.accuracy.mean, color="tab:gray", ls="--", lw=1)
                    continue
                x = (
                    r.train_macs.mean
                    if x_of == "compute"
                    else 100 * r.prune_fraction.mean
                    if r.prune_fraction
                    else math.nan
                )
                xerr = (
                    r.train_macs.half
                    if x_of == "compute"
                    else 100 * r.prune_fraction.half
                    if r.prune_fraction
                    else 0.0
                )
                colour, marker = _style(r.variant)
                handles[r.variant] = ax.errorbar(
                    [x],
                    [r.accuracy.mean],
                    yerr=[r.accuracy.half],
                    xerr=[xerr],
                    fmt=marker,
                    color=colour,
                    ms=7,
                    capsize=2,
                    lw=0.8,
                )
                points.append((x, r.accuracy.mean))
            lows = [r.accuracy.mean - r.accuracy.half for r in rows]
            highs = [r.accuracy.mean + r.accuracy.half for r in rows]
            ax.set_ylim(max(0.0, min(lows) - 2.0), min(100.0, max(highs) + 2.0))
            if x_of == "compute" and points:
                xs, ys = zip(*pareto(points))
                ax.plot(xs, ys, color="k", lw=0.8, alpha=0.5, drawstyle="steps-post")
            ax.set_title(f"ratio {ratio}, {policy} policy", fontsize=9)
            ax.set_xlabel(
                "training compute (G MACs)" if x_of == "compute" else "prune point (% of the run)",
                fontsize=8,
            )
            ax.set_ylabel(ylabel, fontsize=8)
            ax.grid(alpha=0.3)
    fig.legend(
        handles.values(), handles.keys(), loc="lower center", ncol=6, fontsize=7, frameon=False
    )
    what = (
        "training compute (line: Pareto front; " if x_of == "compute" else "prune point ("
    ) + "dashed: normal), mean ± 95 % CI over seeds"
    fig.suptitle(f"{task}: {measure} vs {what}", fontsize=10)
    fig.tight_layout(rect=(0, 0.09, 1, 0.96))
    atomic_write(path, lambda handle: fig.savefig(handle, dpi=90, format="png"))
    plt.close(fig)


# ------------------------------------------------------------------------- the report
def _setup(meta: dict[str, Any]) -> list[str]:
    grids = "; ".join(
        f"**{g['task']}**: ratios {', '.join(map(str, g['ratios']))}, policies "
        f"{' and '.join(g['policies'])}, {g['epochs']} epochs at batch {g['batch_size']}"
        for g in meta["grids"]
    )
    return [
        "**Setup.** Darknet/YOLOv3-style demo model (CBL blocks, residual shortcuts, upsample "
        "+ route), γ initialised at 0.5, SGD lr 0.05, momentum 0.9, weight decay 0.0001, "
        "cosine schedule per iteration, L1 strength s = 0.005 while sparse-training; the same "
        f"epoch budget for every method except slimming 2×. Grid: {grids}; seeds "
        f"{', '.join(map(str, meta['seeds']))}.",
        "",
        "**Tasks.** "
        + "; ".join(TASK_TEXT.get(g["task"], g["task"]) for g in meta["grids"])
        + ". `digits` saturates (every method near 99 %), so it cannot tell methods apart; "
        "`digits-hard` trains on a fifth of the images with twice the shift and three times "
        "the noise of the augmentation, so the dense model sits near 91 % and the channels a "
        "method removes show in its accuracy. It is a fair proxy for the setting the method is "
        "for — a CNN with more channels than its data pins down, pruned by BN-γ — and favours "
        "no method: every method sees the same split, images, augmentation draws and budget.",
        "",
        "**Methods.** normal (dense, no L1); slimming (L1 for 75 % of the budget, prune on the "
        "current |γ|, fine-tune 25 %); slimming 2× (the original recipe: a full sparse run "
        "plus an equally long fine-tune, twice the budget); early-bird (prune when the "
        "current-|γ| mask is within Hamming 0.1 of each of the previous 4, checked every "
        "epoch); forecast F @c (L1 while recording γ; at fraction c of the run forecast every "
        "channel's final |γ| with F, prune once, train without L1); forecast auto @stability "
        "(prune when the forecast mask is within Hamming 0.1 of each of the previous 3; "
        "forced at 60 %); forecast auto @confidence (stability *and* the forecaster's own "
        "in-history backtest — IoU of its predicted pruned set at the real ratio, horizon "
        "matched, discounted where the backtest horizon falls short — at least 0.9; forced at "
        "60 %). `auto` is the forecaster that backtests candidates (naive, ema, trends, AR(1), "
        "learned) inside the history; `learned` is the bundled cross-channel regression and "
        "`learned_gbr` the bundled gradient-boosted ranking model over channel and layer "
        "features (the strongest on the trajectory suite, docs/suite.md).",
        "",
        "**Measures.** Test accuracy after the full budget (only the last epoch is evaluated); "
        "training compute = Σ over steps of "
        "3 × MACs/sample × batch, charged at the pruned model's MACs after the prune. Means "
        "± half-width of the 95 % Student-t interval over seeds. Runs with the same seed share "
        "init, data order and sparse training up to their prune, so claims are tested on "
        "per-seed differences: one-sided paired t-tests (non-inferiority with a 0.5-point "
        "margin; prune step earlier), with the exact sign-flip test when the differences have "
        "no spread. A claim **holds** when its conditions hold on the means and the tests are "
        "significant at 0.05, is **not shown** when the means satisfy it but a test is not "
        "significant, and **fails** otherwise. Wall times are per run with two runs sharing "
        "a CPU machine that other work also used: compare them only within a table.",
    ]


def write_report(meta: dict[str, Any], out: Path) -> None:
    """Render ``out`` (markdown) and its PNGs next to it from the saved records."""
    from forecastprune._util import atomic_write_bytes

    tasks = list(dict.fromkeys(t for t, _, _ in groups(meta)))
    pngs = []
    for task in tasks:
        for kind in ("compute", "prune"):
            png = out.with_name(f"{out.stem}-{task}-{kind}.png")
            plot_task(meta, task, kind, png)
            pngs.append((task, kind, png.name))
    runs = len(meta["results"])
    command = (
        "python benchmarks/early_prune_table.py "
        + ("--quick" if meta.get("quick") else f"--seeds {','.join(map(str, meta['seeds']))}")
        + f" --jobs {meta['jobs']}"
    )
    lines = [
        "# Early pruning: normal vs slimming vs Early-Bird vs forecast",
        "",
        f"Generated by `{command}`: {runs} training runs in {meta['seconds'] / 60:.1f} min of "
        "wall time on a shared 2-core CPU machine (one thread per run). Raw records: "
        f"`{out.stem}-runs.json` (re-render with `--render-only`). Do not edit by hand.",
        "",
        *_setup(meta),
        "",
        "## Summary",
        "",
        *summary(meta),
        "",
        "## Headline: the cheapest method within 0.5 points of slimming",
        "",
        *headline(meta),
        "",
        "Cheapest = least mean training compute among pruned methods whose mean accuracy is at "
        "most 0.5 points below slimming's; the paired gap and p-value test that it is truly "
        "within 0.5 points (p < 0.05: shown).",
        "",
        "## Claim 1: within 0.5 points of slimming at ≤ 60 % of its compute",
        "",
        *claims(meta, "slimming", es.claim_one, "compute"),
        "",
        "Each cell: verdict, mean paired accuracy gap to slimming (p-value of "
        "non-inferiority with a 0.5-point margin), training compute as a share of slimming's.",
        "",
        "## Claim 2: prunes earlier than Early-Bird at equal accuracy",
        "",
        *claims(meta, "early-bird", es.claim_two, "step"),
        "",
        "Each cell: verdict, mean paired accuracy gap to Early-Bird (p-value of "
        "non-inferiority with a 0.5-point margin), how much earlier it pruned on average as a "
        "share of the run (p-value of pruning earlier). A run in which Early-Bird never fired "
        "counts as pruned at the end.",
        "",
        "## Automatic timing: when each rule fires and what it buys",
        "",
        *timing_rules(meta),
        "",
        "Gaps: the row's accuracy minus the named variant's, paired by seed, mean ± 95 % CI "
        "(`auto @0.3` is the same forecaster pruning at a fixed 30 %). Early-Bird is listed "
        "for reference: it is the mask-stability rule on the current |γ|.",
        "",
        "## Plots",
        "",
        *(f"![{task}: accuracy vs {kind}]({name})\n" for task, kind, name in pngs),
        "## Every group",
        "",
    ]
    for task, ratio, policy in groups(meta):
        rows = es.aggregate(meta["results"], task, ratio, policy, variant_order(meta))
        lines += [f"### {task}, ratio {ratio}, {policy} policy", "", *group_table(rows), ""]
    atomic_write_bytes(out, "\n".join(lines).encode("utf-8"))
