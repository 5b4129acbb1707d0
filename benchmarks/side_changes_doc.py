"""The write-up of ``side_changes.py``: ``docs/side-changes.md``, every figure from the run.

The headline sentences are filled in from the analysed cells; the reading below them is prose
about what the tables show, and the tables are pasted as printed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import side_changes as sc

COMMAND = (
    "python benchmarks/side_changes.py --doc docs/side-changes.md --plot docs/side-changes.png"
)


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def _within(cells: list, band: float) -> float:
    """Share of all crossers that sat closer than ``band`` to the cut."""
    d = np.concatenate([np.abs(c.distance)[c.crossed] for c in cells])
    return float(np.mean(d < band))


def _near_rates(cells: list) -> tuple[float, float]:
    """Near the cut: share of above-cut channels that fall, of below-cut ones that rise."""
    pool = sc.Pooled.of(cells, sc.NEAR)
    return (float(pool.crossed[~pool.below].mean()), float(pool.crossed[pool.below].mean()))


def headline(cells: list) -> str:
    """The numbers a reader needs first, as sentences."""
    by = {c: sc.cells_at(cells, c) for c in sc.CUTOFFS}
    lines = []
    for cutoff in ("0.1", "0.2"):
        group = by[cutoff]
        changed = sum(c.changes.changed for c in group) / sum(c.changes.channels for c in group)
        down, up = _near_rates(group)
        lines.append(
            f"- **At the {float(cutoff):.0%} cutoff** {_pct(changed)} of all channels end on the "
            f"other side of the cut (naive IoU {np.mean([c.changes.iou for c in group]):.3f}). "
            f"Only {_pct(_within(group, 0.05))} of these crossers sat within 5 % of the "
            f"channels from the cut, {_pct(_within(group, sc.NEAR))} within 10 %; "
            f"{_pct(1 - _within(group, 0.20))} were more than 20 % away. Near the cut "
            f"(±10 %, ties across it aside), {_pct(down)} of the channels just above it fall "
            f"below, but only "
            f"{_pct(up)} of those just below it rise."
        )
    spread = {c: np.mean([x.spread for x in by[c]]) for c in sc.CUTOFFS}
    lines.append(
        f"- The |γ| distribution is still bunched early: its interquartile range is "
        f"{_pct(spread['0.05'])} of the median at 5 %, {_pct(spread['0.1'])} at 10 % and "
        f"{_pct(spread['0.3'])} at 30 % (every γ starts at 0.5), so a large rank distance "
        "early is a small distance in |γ|."
    )
    for cutoff in ("0.05", "0.1"):
        group = by[cutoff]
        tied = sum(int(c.tied.sum()) for c in group)
        now = sum(int(c.below[c.tied].sum()) for c in group)
        end = sum(int((c.below ^ c.crossed)[c.tied].sum()) for c in group)
        lines.append(
            f"- At {float(cutoff):.0%}, {tied} channels have exactly the |γ| of the cut (at the "
            f"store's float16 precision), so the engine's tie-break by index puts them on a "
            f"side: it prunes {now} of them; the end prunes {end}."
        )
    lines.append(
        "- Near the cut, the single features that best say *which* channels cross "
        "(AUC within run and side of the cut; all runs / held-out runs):"
    )
    pools = {
        (c, h): sc.Pooled.of(sc.cells_at(cells, c, h), sc.NEAR)
        for c in sc.CUTOFFS
        for h in (None, True)
    }
    mean_auc = {
        name: np.mean([pools[(c, None)].auc(name) for c in sc.CUTOFFS]) for name in sc.SCORED
    }
    for name in sorted(mean_auc, key=mean_auc.get, reverse=True)[:4] + ["closeness"]:
        cells_text = ", ".join(
            f"{float(c):.0%} {pools[(c, None)].auc(name):.2f} / {pools[(c, True)].auc(name):.2f}"
            for c in sc.CUTOFFS
        )
        lines.append(f"  - `{name}`: {cells_text}")
    return "\n".join(lines)


READING = """\
**Where the signal is not.** The issue's guess — crossers sit near the cut, so a forecaster
only has to settle the channels beside it — holds only late. Up to the 20 % cutoff most crossers
sat more than 10 % of the channels away from the cut, and at 5 % a quarter of the channels more
than 20 % below or above it still change side. The spread column says why: every γ starts at
0.5 and the distribution fans out slowly, so early ranks rest on small differences in |γ| that
later training overturns. Inside the ±10 % band, the position relative to the cut
(`closeness`, and `level` / `drop_since_start`, which order one run's channels the same way)
predicts almost nothing until 20 % and little after: near the cut, who crosses is close to a
coin flip by position. Early, part of the band is not even ordered: at 5 % and 10 % blocks of
channels (mostly in the two MobileNet runs' pointwise layers and stems) share the cut's exact
|γ| at the store's precision, and the tie-break by index decides their side. They are counted
as crossers above (naive does cut them that way) and left out of the AUCs.

**Where it is.** Three kinds of history say who crosses, at every cutoff and, somewhat weaker,
on the held-out runs (compare with the s.e. row; one channel's AUC is not an IoU gain, see
below):

1. *Liveliness* (`volatility_up`: the spread of recent increments, read as "a lively channel
   rises"). The per-direction table shows it plainly: below the cut, noisy channels are the
   ones that rise; above it, quiet channels are the ones that fall. Unsigned `volatility` sits
   near 0.5 only because the two sides pull opposite ways. A channel whose γ still jitters gets
   loss gradient that resists the L1 pull; a smooth one is decaying under L1 alone.
2. *The layer.* Channels of early layers (`shallowness`) rise from below the cut and stay
   above it (weaker on the held-out runs, near noise there at 30 %). From 20 % on, channels of
   layers with a high mean
   |γ| (`layer_mean`) rise and those of weak layers fall; at 5–10 % that effect is absent or
   reversed. `layer_percentile` is its mirror image: at a fixed global level, a channel high
   within its layer sits in a weak layer.
3. *Momentum.* `ar1_lr` (AR(1) on the increments, projected to the end, relative to the cut's
   own drift) is steadily above 0.5. Plain slopes depend on the cutoff: at 5–10 % the recent
   slope points the right way while the whole-history slope (and the linear projection
   `projected_lr`) is no help or points the wrong way; at 20–30 % the whole-history slope helps
   and the recent one is neutral to reversed (channels that just fell faster than the cut tend
   slightly to come back). A trend with one fixed window is right at some cutoffs and wrong at
   others, consistent with `linear` losing to naive at every cutoff in [suite.md](suite.md).
   Slopes over steps and over cumulative LR agree at these cutoffs: before the first LR drop
   (at 50 % of the step schedules) the two clocks differ by a constant factor, and under the
   cosine schedules nearly so, so the LR clock cannot help before a drop.

**What it means for the forecasters.** A per-channel forecaster that sees one channel's level
and trend (naive, sma, ema, linear, arima) cannot use the first two signals: both are relative
(lively compared with the others; which layer). The learned forecasters have `volatility`
among their features but unsigned — a linear model cannot turn it into a direction that
depends on the side of the cut — and no layer statistics (the forecaster interface sees
channels, not layers). Next steps this points to:

- give cross-channel forecasters the layout (layer id, depth, layer mean |γ|) and a *signed*
  liveliness feature (volatility × side of the cut, or the distance above the pure-L1 decay
  path that the quietest channels follow);
- use liveliness for the intervals the engine already honours: a quiet channel below the cut
  is safe to prune early, a lively one is not; an interval rule may gain more than a better
  point forecast;
- break exact ties at the cutoff by something other than the channel index (the history, or
  the layer: later layers first, as the `shallowness` signal suggests) — the tie-break table
  below shows what is at stake: little on average, more on the run with the largest tie block
  (the tied channels' recent histories are mostly identical too, so a slope breaks no ties);
- do not expect much from settling only the channels beside the cut at 5–10 %: most crossers
  are further away in rank (though close in |γ|).

AUC is per channel and rank-based: a feature with AUC 0.7 still mislabels many channels, and
IoU counts only the crossers a forecaster gets right *and* the non-crossers it leaves alone.
Read these tables as where to aim, not as the gain to expect.
"""


def render(cells: list, tables: dict[str, str], plot: Path | None) -> str:
    """The whole markdown document."""
    figure = f"\n![Crossers by distance from the cut]({plot.name})\n" if plot is not None else ""
    runs = len({cell.run.name for cell in cells})
    return f"""# Where is the signal? Channels that change side after the cutoff

`forecastprune benchmark` finds the best forecasters only modestly ahead of `naive` (prune by
the |γ| at the cutoff), and none ahead on every run. A forecaster can only win on the channels
that are on the other side of the cut at the end of training than at the cutoff, so this page
measures that set on the trajectory suite
(`forecastprune/data/suite`, {runs} runs, see [suite.md](suite.md)): how big it is, where its
channels sat at the cutoff, and which history features single them out.

Regenerate this page (a few seconds on one core):

```
{COMMAND}
```

**Protocol.** Same threshold rule as `benchmark`: ratio {sc.RATIO:g}, policy `none` (all
channels compete globally), min-keep 1 (the floor kept {sum(c.rescued for c in cells)} channel(s)
below the cut in all the
cells); the cutoff's history is every snapshot at or before
`round(fraction × run length)`. A channel *crosses* when the |γ| at the cutoff and the final
|γ| put it on different sides of the cut. Its *distance* from the cut is its rank distance in
the engine's order, as a share of the run's channels. Feature AUCs are for "crosses", scored
on the channels within ±{sc.NEAR:.0%} of the cut, comparing crossers only with non-crossers
of the same run and the same side of the cut (so neither a run's scale nor one side crossing
more often can pass for per-channel information). Features that should push a channel *up*
are signed toward the cut (kept below it, negated above it), so one AUC scores both
directions; 0.5 is no information, below 0.5 the opposite direction. The trend features are
the `learned` forecaster's (`forecastprune/forecasters/features.py`: slope × horizon / run
scale), less the median of the channels within ±{sc.CUT_BAND:.0%} of the cut (the cut drifts
too). Held-out runs are those of `suite.json`.

## Headline

{headline(cells)}

## Reading

{READING}
## How many cross, and where they sat

Pooled over the {runs} runs:

{tables["summary"]}

Share of each distance bin that crosses (and, in brackets, the bin's share of all crossers):

{tables["bins"]}
{figure}
Per run (naive IoU · share of channels that cross · channels tied across the cut):

{tables["runs"]}

## Which features predict crossing, near the cut (±{sc.NEAR:.0%})

All runs:

{tables["auc_near"]}

Held-out runs only:

{tables["auc_near_held"]}

Per direction (all runs; "down": above the cut at the cutoff, pruned at the end; "up": the
reverse), AUC within runs:

{tables["sides_near"]}

## Ties at the cutoff

Naive's mean IoU over the runs when channels of equal |γ| at the cutoff are ordered by the
engine's rule (lowest index pruned first), the other way round (later layers first), or by
their mean |γ| over the history (a plain cut at the ratio, no per-layer floor):

{tables["ties"]}

## The same over every channel

All runs, every channel (distance itself then carries most of the information late):

{tables["auc_every"]}

Feature key: `closeness` −|rank distance|; `level` |γ| / run scale; `drop_since_start` |γ| /
first |γ| − 1; `trend_step_recent`, `trend_lr_recent` slope over the last quarter of the history
on steps / cumulative LR; `trend_lr_all` the same over the whole history; `ar1_lr` AR(1) on
increments; `off_ema` last |γ| − EMA(span 4); `volatility` std of recent increments (unsigned;
`volatility_up` the same signed toward the cut); `layer_percentile` rank within the layer;
`layer_mean` the layer's mean |γ| / run scale; `shallowness` 1 − the layer's position in the
layout; `projected_lr` `trend_lr_all` toward the cut minus the |γ| gap to the cut.
"""
