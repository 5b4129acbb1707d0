"""Render a :class:`~forecastprune.compare.replay.ReplayResult`: terminal table, JSON, CSV and HTML.

The terminal table has one block per ratio: a header line with the oracle's cut and how clearly
it separates pruned from kept channels, the Early-Bird point, then one line per (cutoff,
forecaster). The best forecaster per cutoff is marked ``*`` on the metric that ranks them (IoU,
or tie-aware IoU when the ratio cuts inside the collapsed set). Failed cells say so; their
messages follow the table once each. The report ends with one verdict line per ratio: which
forecaster reaches IoU ≥ 0.9 earliest and by how much it beats naive, or that none does.

Every file is written atomically: a reader sees the old file or the new one, never half.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._util import write_output
from .replay import CONTROL, ReplayResult
from .scoring import Cutoff, Row

#: (header, Row attribute, format) of the metric columns, in table order
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("IoU", "iou", ".3f"),
    ("tIoU", "tie_iou", ".3f"),
    ("prec", "precision", ".3f"),
    ("recall", "recall", ".3f"),
    ("Hamming", "hamming", ".3f"),
    ("rho", "spearman", ".3f"),
    ("MAE", "mae", ".4f"),
)

#: the column added when block decisions are judged (``ReplaySettings.blocks``)
BLOCK_COLUMN = ("bIoU", "block_iou", ".3f")

LEGEND = (
    "IoU: pruned set vs the oracle's; tIoU: the same with final |γ| < {eps:.3g} counted either "
    "way;\nprec/recall: of the predicted pruned set; Hamming: share of channels whose mask "
    "differs;\nrho: Spearman of predicted vs final |γ|; MAE: of |γ|; collapse: layers the "
    "prediction would empty\n(kept alive by min-keep); seconds: fit + predict"
)

#: the IoU a forecaster must reach for the verdict to call a cutoff early enough (Early-Bird
#: declares its ticket at a mask distance of 0.1, i.e. roughly this agreement)
VERDICT_IOU = 0.9

CSV_FIELDS = (
    "forecaster",
    "cutoff",
    "cutoff_step",
    "cutoff_fraction",
    "ratio",
    "iou",
    "tie_iou",
    "precision",
    "recall",
    "hamming",
    "spearman",
    "mae",
    "pruned",
    "collapsed_layers",
    "seconds",
    "best",
    "error",
)


def write_file(path: str | Path, data: str | bytes) -> Path:
    """Atomically write text (UTF-8) or bytes, creating missing parent folders.

    Raises:
        OutputError: when the path cannot be written (a folder in the way, no permission, a
            full disk).
    """
    return write_output(path, data)


# ------------------------------------------------------------------------------ terminal
def format_table(result: ReplayResult) -> str:
    """The aligned terminal report: one block per ratio, then failures and warnings."""
    blocks = [_block(result, ratio) for ratio in result.settings.ratios]
    blocks.append(LEGEND.format(eps=result.eps))
    failures = _failure_lines(result)
    if failures:
        blocks.append("failed cells:\n" + "\n".join(f"  {line}" for line in failures))
    choices = choice_lines(result)
    if choices:
        blocks.append(
            "chosen by self-selecting forecasters:\n" + "\n".join(f"  {line}" for line in choices)
        )
    if result.warnings:
        blocks.append("\n".join(f"warning: {w}" for w in result.warnings))
    blocks.append("\n".join(verdicts(result)))
    return "\n\n".join(blocks)


def choice_lines(result: ReplayResult) -> list[str]:
    """``auto at 10%: ar1(...): backtest ...`` for every cell whose forecaster noted a choice."""
    first = result.settings.ratios[0]
    return [
        f"{row.forecaster} at {row.cutoff.label}: {row.note}"
        for row in result.rows
        if row.note and row.ratio == first
    ]


def verdicts(result: ReplayResult, target: float = VERDICT_IOU) -> list[str]:
    """One line per ratio: the answer a user came for — which forecaster, how early, how close.

    The earliest cutoff at which the best forecaster reaches ``target`` on the ranking metric
    (IoU, or tie-aware IoU inside the collapsed set), with its margin over the naive control;
    when none does, the closest any came and the largest lead any forecaster had over naive.
    """
    return [_verdict(result, ratio, target) for ratio in result.settings.ratios]


def _verdict(result: ReplayResult, ratio: float, target: float) -> str:
    head = f"verdict (ratio {ratio:g}):"
    if result.oracle[ratio].pruned == 0:
        return f"{head} none: the oracle prunes nothing at this ratio"
    key = result.oracle[ratio].rank_by
    name = "tIoU" if key == "tie_iou" else "IoU"
    scored = [(cutoff, _scores(result, cutoff, ratio, key)) for cutoff in result.cutoffs]
    scored = [(cutoff, scores) for cutoff, scores in scored if scores]
    if not scored:
        return f"{head} none: every forecaster failed"
    for cutoff, scores in scored:
        best = max(scores, key=scores.get)
        if scores[best] >= target:
            return f"{head} {_reached(best, scores, cutoff, name, target)}"
    cutoff, scores = max(scored, key=lambda item: max(item[1].values()))
    best = max(scores, key=scores.get)
    return (
        f"{head} no forecaster reaches {name} ≥ {target:g} at any cutoff; the closest is "
        f"{best} at {_when(cutoff)} with {scores[best]:.3f}{_lead(result, scored, name)}"
    )


def _scores(result: ReplayResult, cutoff: Cutoff, ratio: float, key: str) -> dict[str, float]:
    """Forecaster → ranking metric at one cell, best first on ties as ``best`` breaks them."""
    rows = [r for r in result.rows_for(ratio, cutoff) if r.ok and math.isfinite(getattr(r, key))]
    rows.sort(key=lambda r: (-getattr(r, key), r.mae))
    return {r.forecaster: float(getattr(r, key)) for r in rows}


def _reached(best: str, scores: dict[str, float], cutoff: Cutoff, name: str, target: float) -> str:
    text = f"{best} reaches {name} ≥ {target:g} earliest, at {_when(cutoff)}: {scores[best]:.3f}"
    if best == CONTROL:
        others = [n for n in scores if n != CONTROL]
        if not others:
            return text + " (the naive control: no forecaster ran there)"
        return (
            text + f" with no forecast at all (the current |γ|); the best forecaster there, "
            f"{others[0]}, has {scores[others[0]]:.3f} ({scores[others[0]] - scores[best]:+.3f})"
        )
    if CONTROL in scores:
        return text + (
            f", {scores[best] - scores[CONTROL]:+.3f} over naive ({scores[CONTROL]:.3f})"
        )
    return text


def _lead(result: ReplayResult, scored: list[tuple[Cutoff, dict[str, float]]], name: str) -> str:
    """'; the largest lead over naive: ...' or '; no forecaster beats naive at any cutoff'."""
    leads = [
        (scores[f] - scores[CONTROL], f, cutoff)
        for cutoff, scores in scored
        if CONTROL in scores
        for f in scores
        if f != CONTROL
    ]
    if not leads:
        return ""
    margin, forecaster, cutoff = max(leads, key=lambda lead: lead[0])
    if margin <= 0:
        return "; no forecaster beats naive at any cutoff"
    return f"; the largest lead over naive: {forecaster} at {_when(cutoff)}, {margin:+.3f} {name}"


def _when(cutoff: Cutoff) -> str:
    return f"{cutoff.label} (step {cutoff.step})" if "%" in cutoff.label else cutoff.label


def _block(result: ReplayResult, ratio: float) -> str:
    oracle, eb = result.oracle[ratio], result.early_bird[ratio]
    sep = oracle.separation
    head = (
        f"ratio {ratio:g}, policy {result.settings.spec.policy}: the oracle prunes "
        f"{oracle.pruned} of {result.prunable} prunable channels "
        f"(cut |γ| = {_num(sep.cut, '.4g')}, separation {_num(sep.score, '.2f')})\n"
        + (
            f"best per cutoff marked * by "
            f"{'tie-aware IoU' if oracle.rank_by == 'tie_iou' else 'IoU'}"
            if oracle.pruned
            else "NO BEST MARKED: the oracle prunes nothing here, so every IoU of 1 is meaningless"
        )
    )
    if result.block_oracle is not None:
        spec = result.settings.blocks
        head += (
            f"\nblocks ({spec.reduction} |γ| of each block's scoring BN): the oracle "
            f"removes {len(result.block_oracle)} ({', '.join(result.block_oracle[:6])}"
            f"{'...' if len(result.block_oracle) > 6 else ''}); bIoU: each forecast's "
            "removed blocks vs these"
        )
    if oracle.collapsed:
        head += (
            f"; even the oracle would empty {len(oracle.collapsed)} layer(s) "
            f"({', '.join(oracle.collapsed)}), kept alive by min-keep"
        )
    if eb.step is None:
        bird = f"Early-Bird (naive masks every {eb.spacing} steps): never settled"
    else:
        bird = (
            f"Early-Bird (naive masks every {eb.spacing} steps): step {eb.step} "
            f"({eb.fraction:.0%} of the run), IoU there {eb.iou:.3f}"
        )
    columns = _columns(result)
    header = ["cutoff", "forecaster"] + [c[0] for c in columns] + ["collapse", "seconds"]
    lines = [header]
    for cutoff in result.cutoffs:
        best = result.best(cutoff, ratio)
        for i, row in enumerate(result.rows_for(ratio, cutoff)):
            first = f"{cutoff.label} (step {cutoff.step})" if i == 0 else ""
            lines.append([first, row.forecaster] + _cells(row, oracle.rank_by, best, columns))
    return "\n".join([head, bird, "", _align(lines)])


def _columns(result: ReplayResult) -> tuple[tuple[str, str, str], ...]:
    return COLUMNS + ((BLOCK_COLUMN,) if result.block_oracle is not None else ())


def _cells(
    row: Row, rank_by: str, best: str | None, columns: tuple[tuple[str, str, str], ...] = COLUMNS
) -> list[str]:
    if not row.ok:
        return ["failed (see below)"] + [""] * (len(columns) + 1)
    cells = []
    for _, attr, fmt in columns:
        mark = "*" if attr == rank_by and row.forecaster == best else " "
        cells.append(_num(getattr(row, attr), fmt) + mark)
    return cells + [str(len(row.collapsed)), f"{row.seconds:.2f}"]


def _num(value: float, fmt: str) -> str:
    return "n/a" if value is None or not math.isfinite(value) else format(value, fmt)


def _align(lines: Sequence[Sequence[str]]) -> str:
    """Left-align the two label columns, right-align the numbers."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = []
    for line in lines:
        cells = [
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out)


def _failure_lines(result: ReplayResult) -> list[str]:
    seen: dict[tuple[str, str], list[str]] = {}
    for row in result.rows:
        if not row.ok and row.ratio == result.settings.ratios[0]:
            seen.setdefault((row.forecaster, row.error or ""), []).append(row.cutoff.label)
    return [f"{name} at {', '.join(labels)}: {error}" for (name, error), labels in seen.items()]


# ------------------------------------------------------------------------------ files
def to_json(result: ReplayResult) -> dict[str, Any]:
    """Everything in the report as JSON-ready data (NaN and infinities become null)."""
    data = {
        "store": result.store,
        "channels": result.channels,
        "prunable": result.prunable,
        "final_step": result.final_step,
        "snapshots": result.snapshots,
        "layers": list(result.layout_layers),
        "settings": _settings(result),
        "forecasters": result.forecasters,
        "cutoffs": [vars(c) for c in result.cutoffs],
        "collapsed_below": result.eps,
        "collapsed_fraction": result.collapsed_fraction,
        "oracle": [_oracle(result, ratio) for ratio in result.settings.ratios],
        "block_oracle": list(result.block_oracle) if result.block_oracle is not None else None,
        "rows": [
            _row(result, row) | {"layer_pruned": list(row.layer_pruned), "block_iou": row.block_iou}
            for row in result.rows
        ],
        "warnings": result.warnings,
        "verdict": verdicts(result),
        "seconds": result.seconds,
    }
    return _finite(data)


def dumps_json(result: ReplayResult) -> str:
    return json.dumps(to_json(result), indent=2, allow_nan=False) + "\n"


def to_csv(result: ReplayResult) -> str:
    """One CSV line per (forecaster, cutoff, ratio); empty fields where a cell failed."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in result.rows:
        record = _finite(_row(result, row))
        writer.writerow({k: "" if record[k] is None else record[k] for k in CSV_FIELDS})
    return buffer.getvalue()


def _row(result: ReplayResult, row: Row) -> dict[str, Any]:
    return {
        "forecaster": row.forecaster,
        "cutoff": row.cutoff.label,
        "cutoff_step": row.cutoff.step,
        "cutoff_fraction": row.cutoff.fraction,
        "ratio": row.ratio,
        **{attr: getattr(row, attr) for _, attr, _ in COLUMNS},
        "pruned": row.pruned if row.ok else None,
        "collapsed_layers": ";".join(row.collapsed),
        "seconds": row.seconds,
        "best": row.ok and result.best(row.cutoff, row.ratio) == row.forecaster,
        "error": row.error,
        "note": row.note,
    }


def _oracle(result: ReplayResult, ratio: float) -> dict[str, Any]:
    oracle, eb = result.oracle[ratio], result.early_bird[ratio]
    return {
        "ratio": ratio,
        "pruned": oracle.pruned,
        "rank_by": oracle.rank_by,
        "separation": vars(oracle.separation),
        "collapsed_layers": list(oracle.collapsed),
        "layer_pruned": list(oracle.layer_pruned),
        "early_bird": vars(eb),
        "best": {c.label: result.best(c, ratio) for c in result.cutoffs},
    }


def _settings(result: ReplayResult) -> dict[str, Any]:
    """The settings used — the policy actually scored under included (see ``warnings``)."""
    settings = dict(vars(result.settings), spec=result.settings.spec.to_json())
    if settings.get("blocks") is not None:
        settings["blocks"] = dict(vars(settings["blocks"]))
    return {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}


def _finite(value: Any) -> Any:
    """Replace NaN/inf floats by None, recursively (strict JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


# ------------------------------------------------------------------------------ html
def to_html(result: ReplayResult, images: Mapping[str, bytes]) -> str:
    """A self-contained HTML report: the table, warnings and the plots embedded as base64."""
    figures = "\n".join(
        f'<figure><img alt="{html.escape(name)}" src="data:image/png;base64,'
        f'{base64.b64encode(data).decode("ascii")}"><figcaption>{html.escape(name)}'
        "</figcaption></figure>"
        for name, data in images.items()
    )
    title = f"forecastprune compare — {html.escape(Path(result.store).name)}"
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{title}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "pre{background:#f6f6f6;padding:1em;overflow-x:auto}img{max-width:100%}</style>"
        f"</head><body><h1>{title}</h1>"
        f"<p>{result.snapshots} snapshots up to step {result.final_step}, "
        f"{result.channels} channels ({result.prunable} prunable), "
        f"{len(result.forecasters)} forecasters, {result.seconds:.1f} s.</p>"
        f"<pre>{html.escape(format_table(result))}</pre>\n{figures}\n</body></html>\n"
    )
