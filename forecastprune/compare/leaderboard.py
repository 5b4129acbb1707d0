"""How a :class:`~forecastprune.compare.suite.SuiteResult` is shown: a table, JSON, a PNG."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .plots import render_png
from .suite import SuiteResult, Summary

GROUPS = {"all runs": None, "tuning runs": False, "held-out runs": True}


def _cell(summary: Summary) -> str:
    if not summary.runs:
        return "failed"
    return f"{summary.mean:+.3f} [{summary.low:+.3f}, {summary.high:+.3f}] min {summary.worst:+.3f}"


def format_suite(result: SuiteResult) -> str:
    """Tables of mean gain over naive [bootstrap interval] and worst run, per group of runs."""
    held = [r.name for r in result.runs if r.held_out]
    lines = [
        f"{len(result.runs)} runs; IoU gain over naive at ratio {result.ratio:g}: mean "
        f"[{result.coverage:.0%} bootstrap interval over runs] and the worst run",
        f"held out of tuning: {', '.join(held) if held else 'none'}",
    ]
    naive = "  ".join(f"{c}: {np.mean(list(result.naive[c].values())):.3f}" for c in result.cutoffs)
    lines.append(f"naive's mean IoU — {naive}")
    for title, flag in GROUPS.items():
        if flag is not None and not any(r.held_out == flag for r in result.runs):
            continue
        table = [["forecaster", *result.cutoffs]]
        for label in result.forecasters:
            table.append([label] + [_cell(result.summary(label, c, flag)) for c in result.cutoffs])
        lines += ["", f"{title}:", _align(table)]
    choices = _choices(result)
    if choices:
        lines += ["", "chosen per run:"] + [f"  {line}" for line in choices]
    return "\n".join(lines)


def _choices(result: SuiteResult) -> list[str]:
    out = []
    for label, by_cutoff in result.notes.items():
        for cutoff in result.cutoffs:
            for run, note in by_cutoff.get(cutoff, {}).items():
                out.append(f"{label} on {run} at {cutoff}: {note}")
    return out


def _align(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows
    )


def suite_json(result: SuiteResult) -> dict[str, Any]:
    """Per-run gains, per-group summaries and choices as JSON-ready data (NaN → null)."""

    def clean(value: float) -> float | None:
        return None if not np.isfinite(value) else float(value)

    summaries = {
        title: {
            label: {
                c: {
                    k: (clean(v) if isinstance(v, float) else v)
                    for k, v in vars(result.summary(label, c, flag)).items()
                }
                for c in result.cutoffs
            }
            for label in result.forecasters
        }
        for title, flag in GROUPS.items()
    }
    return {
        "ratio": result.ratio,
        "runs": [{"name": r.name, "held_out": r.held_out} for r in result.runs],
        "cutoffs": result.cutoffs,
        "naive_iou": result.naive,
        "gains": {
            f: {c: {n: clean(v) for n, v in runs.items()} for c, runs in cuts.items()}
            for f, cuts in result.gains.items()
        },
        "summary": summaries,
        "notes": result.notes,
    }


def leaderboard_png(result: SuiteResult) -> bytes:
    """Mean gain over naive with bootstrap intervals: one panel per cutoff, best on top."""
    figure = Figure(figsize=(3.2 * len(result.cutoffs), 0.45 * len(result.forecasters) + 1.6))
    axes = figure.subplots(1, len(result.cutoffs), sharey=False, squeeze=False)[0]
    for ax, cutoff in zip(axes, result.cutoffs):
        stats = [(label, result.summary(label, cutoff)) for label in result.forecasters]
        stats.sort(key=lambda item: -np.nan_to_num(item[1].mean, nan=-np.inf))
        y = np.arange(len(stats))[::-1]
        means = np.array([s.mean for _, s in stats])
        errors = np.array([[s.mean - s.low, s.high - s.mean] for _, s in stats]).T
        colors = ["tab:green" if m > 0 else "tab:red" for m in np.nan_to_num(means)]
        ax.barh(y, np.nan_to_num(means), xerr=np.nan_to_num(errors), color=colors, alpha=0.8)
        ax.scatter([s.worst for _, s in stats], y, marker="|", color="k", s=80, label="worst run")
        ax.axvline(0.0, color="k", lw=0.8)
        ax.set_yticks(y, [label for label, _ in stats], fontsize=8)
        ax.set_title(f"cutoff {cutoff}", fontsize=10)
        ax.set_xlabel("IoU gain over naive")
    axes[0].legend(fontsize=7, loc="lower left")
    figure.suptitle(
        f"{len(result.runs)} suite runs, ratio {result.ratio:g}: mean gain, "
        f"{result.coverage:.0%} bootstrap interval, worst run",
        fontsize=10,
    )
    figure.tight_layout()
    return render_png(figure)
