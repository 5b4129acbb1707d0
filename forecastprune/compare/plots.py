"""PNG figures of a replay, drawn with matplotlib's Agg canvas (no display, no global backend).

- :func:`iou_figure`: IoU vs cutoff, one line per forecaster (``naive`` black and dashed, the
  others each with their own colour, line style and hollow marker), one panel per ratio, one
  legend for all panels, the Early-Bird point marked. When a ratio cuts inside the collapsed set
  the panel shows
  tie-aware IoU, the metric that ranks forecasters there.
- :func:`gamma_figure`: how the |γ| distribution evolves over training — a heat map of
  per-snapshot histograms (like the write-up's figures), cutoffs and the oracle's cut marked.
- :func:`layer_figure`: per-layer pruned counts, the oracle vs the best forecaster at one cutoff.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from .replay import CONTROL, ReplayResult
from .scoring import Cutoff

PNG_NAMES = ("iou_vs_cutoff.png", "gamma_evolution.png", "layer_pruned.png")


def render_png(figure: Figure, dpi: int = 110) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    FigureCanvasAgg(figure)  # attaches the Agg canvas: no pyplot, no global backend switch
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def make_plots(result: ReplayResult, steps: np.ndarray, abs_values: np.ndarray) -> dict[str, bytes]:
    """All three figures as ``{file name: PNG bytes}``.

    Args:
        result: the replay.
        steps: (T,) the store's record steps.
        abs_values: (T, C) the store's |γ| history.
    """
    figures = (iou_figure(result), gamma_figure(result, steps, abs_values), layer_figure(result))
    return {name: render_png(fig) for name, fig in zip(PNG_NAMES, figures, strict=True)}


#: marker shapes and line styles cycled over forecasters: overlapping lines stay distinguishable
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h")
LINESTYLES = ("-", "-.", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)), (0, (1, 1)))


def forecaster_style(index: int, name: str) -> dict[str, object]:
    """Matplotlib line style of the ``index``-th forecaster; the naive control is black, dashed.

    Markers are hollow and shrink with ``index``, so forecasters with identical values draw
    concentric, differently shaped markers instead of hiding one another.
    """
    if name == CONTROL:
        return {"color": "black", "ls": "--", "marker": "x", "ms": 8, "lw": 1.6}
    return {
        "color": f"C{index % 10}",
        "ls": LINESTYLES[index % len(LINESTYLES)],
        "marker": MARKERS[index % len(MARKERS)],
        "ms": max(4.0, 10.0 - 1.0 * index),
        "mfc": "none",
        "mew": 1.3,
        "lw": 1.3,
    }


def iou_figure(result: ReplayResult) -> Figure:
    """IoU (or tie-aware IoU) vs cutoff per forecaster, one panel per ratio, one shared legend."""
    ratios = result.settings.ratios
    figure = Figure(figsize=(5.0 * len(ratios) + 2.2, 4.2), layout="constrained")
    axes = figure.subplots(1, len(ratios), squeeze=False)[0]
    for ax, ratio in zip(axes, ratios, strict=True):
        metric = result.oracle[ratio].rank_by
        low = 1.0
        for index, name in enumerate(result.forecasters):
            rows = [r for r in result.rows if r.forecaster == name and r.ratio == ratio and r.ok]
            if rows:
                values = [getattr(r, metric) for r in rows]
                low = min(low, *values)
                ax.plot(
                    [100 * r.cutoff.fraction for r in rows],
                    values,
                    label=name,
                    **forecaster_style(index, name),
                )
        bird = result.early_bird[ratio]
        if bird.step is not None:
            ax.axvline(100 * bird.fraction, color="grey", ls=":", lw=1)
            ax.plot(
                [100 * bird.fraction],
                [getattr(bird, metric)],
                "k*",
                ms=11,
                label="Early-Bird point (naive)",
            )
        # zoomed to the data (to the next 0.1 below it): close curves separate visibly
        bottom = max(0.0, np.floor(10 * low - 0.5) / 10) if np.isfinite(low) else 0.0
        ax.set(
            xlabel="cutoff (% of the run)",
            ylim=(bottom, 1.02),
            ylabel="tie-aware IoU" if metric == "tie_iou" else "IoU with the oracle's set",
            title=f"ratio {ratio:g}",
        )
        ax.grid(alpha=0.3)
    # one legend for every panel, outside them: it neither hides curves nor belongs to one ratio
    handles: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    figure.legend(list(handles.values()), list(handles), loc="outside right upper", fontsize=8)
    return figure


def gamma_figure(
    result: ReplayResult,
    steps: np.ndarray,
    abs_values: np.ndarray,
    max_columns: int = 300,
    bins: int = 60,
) -> Figure:
    """Heat map of |γ| histograms over training steps."""
    keep = np.unique(np.linspace(0, len(steps) - 1, min(len(steps), max_columns)).astype(int))
    top = float(np.percentile(abs_values[keep], 99.5)) or 1.0  # outliers would squash the map
    edges = np.linspace(0.0, top, bins + 1)
    counts = np.stack([np.histogram(np.minimum(abs_values[i], top), edges)[0] for i in keep], 1)
    figure = Figure(figsize=(8, 4.2), layout="constrained")
    ax = figure.subplots()
    centers = (edges[:-1] + edges[1:]) / 2
    image = ax.pcolormesh(
        steps[keep],
        centers,
        np.ma.masked_equal(counts, 0),
        norm=LogNorm(vmin=1, vmax=max(2, counts.max())),
        cmap="viridis",
        shading="nearest",
    )
    figure.colorbar(image, ax=ax, label="channels")
    for cutoff in result.cutoffs:
        ax.axvline(cutoff.step, color="white", ls=":", lw=0.8)
    ratio = result.settings.ratios[0]
    cut = result.oracle[ratio].separation.cut
    if np.isfinite(cut):
        ax.axhline(min(cut, top), color="red", lw=1, label=f"oracle cut at ratio {ratio:g}")
        ax.legend(fontsize=8, loc="upper right")
    ax.set(
        xlabel="step (dotted: cutoffs)",
        ylabel="|γ|",
        title=f"|γ| distribution over training ({abs_values.shape[1]} channels)",
    )
    return figure


def layer_figure(
    result: ReplayResult, cutoff: Cutoff | None = None, ratio: float | None = None
) -> Figure:
    """Pruned channels per layer: oracle vs the best forecaster at one cutoff.

    Args:
        result: the replay.
        cutoff: default the middle cutoff.
        ratio: default the first ratio.
    """
    ratio = result.settings.ratios[0] if ratio is None else ratio
    cutoff = result.cutoffs[len(result.cutoffs) // 2] if cutoff is None else cutoff
    best = result.best(cutoff, ratio)
    oracle = np.array(result.oracle[ratio].layer_pruned)
    x = np.arange(len(result.layout_layers))
    figure = Figure(figsize=(max(6.0, 0.28 * len(x) + 2), 4.2), layout="constrained")
    ax = figure.subplots()
    ax.bar(x - 0.2, oracle, width=0.4, label="oracle (final |γ|)")
    if best is not None:
        row = next(r for r in result.rows_for(ratio, cutoff) if r.forecaster == best)
        ax.bar(x + 0.2, row.layer_pruned, width=0.4, label=f"{best} at {cutoff.label}")
    ax.set_xticks(x, result.layout_layers, rotation=90, fontsize=6)
    ax.set(
        ylabel="pruned channels",
        title=f"pruned per layer at ratio {ratio:g}, cutoff {cutoff.label}",
    )
    ax.legend(fontsize=8)
    return figure
