"""``docs/results-yolo.md`` and its plots from the saved run records of ``yolo_table.py``.

The statistics are those of ``docs/results.md`` (``evidence_stats.py``: t-intervals over seeds,
paired tests by seed); the records' ``accuracy`` is mAP50-95 on the validation split (0–1), so
"points" are mAP points × 100. What is specific to detection — mAP50, model size and latency
columns, dense shown as *dense*, the ``auto`` against ``naive`` test — lives here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import evidence_report as er
import evidence_stats as es

Meta = dict[str, Any]
SHOWN = {"normal": "dense"}


def _name(variant: str) -> str:
    return SHOWN.get(variant, variant)


def groups(meta: Meta) -> list[tuple[str, float, str]]:
    """The (detector, ratio, policy) groups with runs, in grid order."""
    return er.groups(meta)


def ratios_seen(meta: Meta) -> list[float]:
    return sorted({k[1] for k in groups(meta)})


def rows_of(meta: Meta, key: tuple[str, float, str]) -> list[es.Row]:
    return es.aggregate(meta["results"], *key, er.variant_order(meta))


def _mean(row: es.Row, field: str, scale: float = 1.0) -> es.Interval:
    return es.t_interval([scale * run[field] for run in row.runs.values()])


# ------------------------------------------------------------------------- tables
def group_table(rows: list[es.Row]) -> list[str]:
    """Every method of one group: mAP, compute, size, latency, prune point, firing reasons."""
    slim = next((r for r in rows if r.variant == "slimming"), None)
    lines = [
        "| method | mAP50-95 (%) | mAP50 (%) | training compute (T MACs) | vs slimming | "
        "params (M) | MMACs/image (train size) | GMACs/image (640) | latency 640 (ms) | "
        "latency train size (ms) | prune point | fired by | wall (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = f"{r.train_macs.mean / slim.train_macs.mean:.2f}" if slim else "—"
        fired = ", ".join(f"{k} {v}" for k, v in sorted(r.fired_by.items()) if k != "—")
        compute = es.Interval(r.train_macs.mean / 1e3, r.train_macs.half / 1e3, r.train_macs.n)
        lines.append(
            f"| {_name(r.variant)} | {r.accuracy} | {_mean(r, 'map50', 100)} | "
            f"{compute} | {ratio} | "
            f"{_mean(r, 'params', 1e-6).mean:.2f} | {_mean(r, 'macs', 1e-6).mean:.1f} | "
            f"{_mean(r, 'macs_640', 1e-9).mean:.2f} | {_mean(r, 'latency_ms_640').mean:.1f} | "
            f"{_mean(r, 'latency_ms_train').mean:.2f} | {er._fraction(r)} | {fired or '—'} | "
            f"{_mean(r, 'wall_seconds').mean:.0f} |"
        )
    return lines


def headline(meta: Meta) -> list[str]:
    """Per group: dense, slimming, and the cheapest method within 0.5 points of slimming."""
    lines = [
        "| detector | ratio | dense mAP50-95 (%) | slimming mAP50-95 (%) | slimming mAP50 (%) | "
        "cheapest within 0.5 points | its mAP50-95 (%) | its mAP50 (%) | compute vs slimming "
        "| params vs dense | paired gap (points, 95 % CI) | p (non-inferior) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key in groups(meta):
        rows = rows_of(meta, key)
        named = {r.variant: r for r in rows}
        found = es.cheapest_within(rows)
        slim, dense = named.get("slimming"), named.get("normal")
        if found is None or slim is None:
            continue
        best, test = found
        params = f"{_mean(best, 'params').mean / _mean(dense, 'params').mean:.2f}" if dense else "—"
        lines.append(
            f"| {key[0]} | {key[1]} | {dense.accuracy if dense else '—'} | {slim.accuracy} | "
            f"{_mean(slim, 'map50', 100)} | **{_name(best.variant)}** | {best.accuracy} | "
            f"{_mean(best, 'map50', 100)} | {test.compute_ratio:.2f} | {params} | "
            f"{test.accuracy_gap} | "
            f"{er._p(test.noninferior_p) if best.variant != 'slimming' else '—'} |"
        )
    return lines


def auto_vs_naive(meta: Meta) -> list[str]:
    """Does ``auto`` beat the ``naive`` control at the same cutoff? Paired by seed."""
    lines = [
        "| detector | ratio | cutoff | auto mAP50-95 (%) | naive mAP50-95 (%) | paired gap "
        "(points, 95 % CI) | p (auto > naive) | verdict | seeds where auto chose naive |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key in groups(meta):
        for cutoff in ("0.1", "0.3"):
            verdict = auto_beats_naive(meta, key, cutoff)
            if verdict is None:
                continue
            auto, naive, test, p, word = verdict
            same = same_runs(meta, key, cutoff)
            lines.append(
                f"| {key[0]} | {key[1]} | {cutoff} | {auto} | {naive} | {test.accuracy_gap} | "
                f"{er._p(p)} | **{word}** | {same} of {len(test.seeds)} |"
            )
    lines += [
        "",
        f"{er.GATED_AUTO}. A seed where the two runs ended with the same mAP and the same "
        "kept channels is counted as one where `auto` chose `naive` (the runs are then the "
        "same computation).",
    ]
    return lines


def against_same_budget(meta: Meta) -> list[str]:
    """Each forecast variant against slimming on the same total budget, paired by seed."""
    keys = groups(meta)
    head = ["variant"] + [f"{t} {r}" for t, r, _ in keys]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for variant, family in er.variant_order(meta):
        if not family.startswith("forecast"):
            continue
        cells = [variant]
        for key in keys:
            a = es.runs_of(meta["results"], *key, variant)
            b = es.runs_of(meta["results"], *key, "slimming (same budget)")
            if not set(a) & set(b):
                cells.append("—")
                continue
            test = es.paired(a, b)
            cells.append(
                f"{test.accuracy_gap} pts (p {er._p(test.noninferior_p)}), "
                f"{100 * test.compute_ratio:.0f} % compute"
            )
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def same_budget_level(meta: Meta) -> list[str]:
    """The forecast cells shown within 0.5 points of slimming on the same budget (mean gap
    above −0.5 and the paired non-inferiority test significant), with their compute share."""
    found = []
    for variant, family in er.variant_order(meta):
        for key in groups(meta) if family.startswith("forecast") else ():
            a = es.runs_of(meta["results"], *key, variant)
            b = es.runs_of(meta["results"], *key, "slimming (same budget)")
            if set(a) & set(b):
                test = es.paired(a, b)
                if test.noninferior_p < es.ALPHA:
                    found.append(
                        f"{variant} ({key[0]} {key[1]}: {test.accuracy_gap} points at "
                        f"{100 * test.compute_ratio:.0f} % of its compute)"
                    )
    return found


def same_runs(meta: Meta, key: tuple[str, float, str], cutoff: str) -> int:
    """Seeds whose ``auto`` and ``naive`` runs at ``cutoff`` ended identical (mAP, params)."""
    a = es.runs_of(meta["results"], *key, f"forecast auto @{cutoff}")
    b = es.runs_of(meta["results"], *key, f"forecast naive @{cutoff}")
    fields = ("accuracy", "map50", "params", "macs")
    return sum(all(a[s][f] == b[s][f] for f in fields) for s in set(a) & set(b))


def auto_beats_naive(meta: Meta, key: tuple[str, float, str], cutoff: str) -> Any:
    """(auto interval, naive interval, paired test, p, verdict) or None without both runs.

    ``holds``: auto's mean is higher and the one-sided paired test is significant at 0.05;
    ``not shown``: higher on the mean only; ``fails``: not higher.
    """
    a = es.runs_of(meta["results"], *key, f"forecast auto @{cutoff}")
    b = es.runs_of(meta["results"], *key, f"forecast naive @{cutoff}")
    if not a or not b:
        return None
    test = es.paired(a, b)
    seeds = test.seeds
    p = es.greater_p([100 * (a[s]["accuracy"] - b[s]["accuracy"]) for s in seeds])
    word = "fails" if test.accuracy_gap.mean <= 0 else "holds" if p < es.ALPHA else "not shown"
    accuracy = [es.t_interval([100 * r[s]["accuracy"] for s in seeds]) for r in (a, b)]
    return accuracy[0], accuracy[1], test, p, word


def summary(meta: Meta) -> list[str]:
    """Computed one-line answers: claim 1, auto vs naive, Early-Bird, the timing rule."""
    lines = []
    cells = er.verdicts(meta, "slimming", es.claim_one)
    held = [f"{v} ({t} {r})" for v, (t, r, _), x in cells if x == "holds"]
    shown = [f"{v} ({t} {r})" for v, (t, r, _), x in cells if x == "not shown"]
    lines.append(
        "- **Claim 1 (within 0.5 mAP points of slimming at ≤ 60 % of its compute)** holds with "
        f"significance in {len(held)} of {len(cells)} (forecast variant, detector, ratio) cells"
        + (f" — {', '.join(held)}" if held else "")
        + f"; not shown (on the means only) in {len(shown)}"
        + (f" — {', '.join(shown)}" if shown else "")
        + f"; fails in {len(cells) - len(held) - len(shown)}."
    )
    words: dict[str, list[str]] = {"holds": [], "not shown": [], "fails": []}
    for key in groups(meta):
        for cutoff in ("0.1", "0.3"):
            found = auto_beats_naive(meta, key, cutoff)
            if found is not None:
                words[found[-1]].append(f"{key[0]} {key[1]} @{cutoff}")
    total = sum(len(v) for v in words.values())
    if total:
        lines.append(
            f"- **`auto` beats `naive`** (paired by seed, one-sided): holds in "
            f"{len(words['holds'])} of {total} (detector, ratio, cutoff) cells"
            + (f" ({', '.join(words['holds'])})" if words["holds"] else "")
            + f", not shown in {len(words['not shown'])}, fails in {len(words['fails'])}."
        )
    two = er.verdicts(meta, "early-bird", es.claim_two)
    if two:
        lines.append(
            f"- **Claim 2 (prunes earlier than Early-Bird at equal mAP)** holds with "
            f"significance in {sum(x == 'holds' for *_, x in two)} of {len(two)} cells, not "
            f"shown in {sum(x == 'not shown' for *_, x in two)}."
        )
    level = same_budget_level(meta)
    lines.append(
        "- **Within 0.5 mAP points of slimming on the same total budget** (paired "
        f"non-inferiority, p < 0.05) in {len(level)} (forecast variant, detector, ratio) cells"
        + (f": {'; '.join(level)}." if level else ".")
    )
    for key in groups(meta):
        named = {r.variant: r for r in rows_of(meta, key)}
        if "normal" in named and "slimming" in named and key[1] == min(ratios_seen(meta)):
            gap = named["slimming"].accuracy.mean - named["normal"].accuracy.mean
            reading = (
                ": at this budget the detector has not converged, so extra epochs buy more mAP "
                "than the pruned channels cost, and methods on the plain budget start behind."
                if gap > 0.5
                else "."
            )
            lines.append(
                f"- On {key[0]}, slimming at ratio {key[1]} (with its fine-tune, "
                f"{1 + meta['budget']['finetune_epochs'] / meta['budget']['epochs']:g}× the "
                f"epochs) scores {gap:+.1f} points against dense{reading}"
            )
    best = []
    for key in groups(meta):
        pruned = [r for r in rows_of(meta, key) if r.family != "normal"]
        if pruned:
            best.append(max(pruned, key=lambda r: r.accuracy.mean).variant)
    for variant in dict.fromkeys(best):
        lines.append(
            f"- The most accurate pruned method is **{variant}** in {best.count(variant)} of "
            f"{len(best)} (detector, ratio) groups."
        )
    for name in ("early-bird", "forecast auto @confidence"):
        runs = [r for r in meta["results"] if r["variant"] == name]
        if runs:
            fired = sum(r["fired_by"] not in (None, "deadline") for r in runs)
            lines.append(
                f"- **{name}** fired by its own test in {fired} of {len(runs)} runs"
                + (
                    " (the rest at the 60 % deadline)."
                    if "confidence" in name
                    else " (the rest never pruned: they end dense, at the dense model's size)."
                )
            )
    return lines


def planned(meta: Meta) -> tuple[list[str], list[float], list[str]]:
    """The grid the records were asked for: detectors, ratios and methods (records made
    before the methods were saved asked for all of them)."""
    from yolo_table import VARIANT_NAMES

    detectors = [g["task"] for g in meta["grids"]]
    ratios = sorted({r for g in meta["grids"] for r in g["ratios"]})
    return detectors, ratios, list(meta.get("variants", VARIANT_NAMES))


def _auto_and_early_bird(meta: Meta) -> list[str]:
    """The sections that compare ``auto`` with ``naive`` and forecasts with Early-Bird, for a
    grid that asked for the methods they need."""
    asked = planned(meta)[2]
    lines: list[str] = []
    if any(v.startswith("forecast auto @0.") for v in asked) and any(
        v.startswith("forecast naive") for v in asked
    ):
        lines += ["## Does `auto` beat the `naive` control?", "", *auto_vs_naive(meta), ""]
    if "early-bird" in asked:
        lines += [
            "## Claim 2: prunes earlier than Early-Bird at equal mAP",
            "",
            *er.claims(meta, "early-bird", es.claim_two, "step"),
            "",
            "A run in which Early-Bird never fired counts as pruned at the end.",
            "",
        ]
    return lines


def command_of(meta: Meta) -> str:
    """The command that makes this grid: the options that differ from the defaults."""
    from yolo_table import DETECTORS, RATIOS, VARIANT_NAMES, Budget

    if meta.get("quick"):
        return "python benchmarks/yolo_table.py --quick"
    detectors, ratios, variants = planned(meta)
    parts = ["python benchmarks/yolo_table.py"]
    if tuple(detectors) != DETECTORS:
        parts.append(f"--detectors {','.join(detectors)}")
    if tuple(ratios) != RATIOS:
        parts.append(f"--ratios {','.join(map(str, ratios))}")
    if meta["budget"]["epochs"] != Budget().epochs:
        parts.append(f"--epochs {meta['budget']['epochs']}")
    if tuple(variants) != VARIANT_NAMES:
        parts.append(f"--variants '{','.join(variants)}'")
    parts.append(f"--seeds {','.join(map(str, meta['seeds']))}")
    return " ".join(parts)


def missing(meta: Meta) -> list[str]:
    """The cells of the planned grid (its detectors, ratios and methods, the seeds) that have
    no run yet."""
    detectors, ratios, variants = planned(meta)
    have = {(r["task"], r["variant"], r["seed"], r["ratio"]) for r in meta["results"]}
    gaps = []
    for detector in detectors:
        for seed in meta["seeds"]:
            absent = [
                f"{_name(v)}" + ("" if v == "normal" else f" r={ratio}")
                for v in variants
                for ratio in ((None,) if v == "normal" else ratios)
                if (detector, v, seed, ratio) not in have
            ]
            if absent:
                gaps.append(f"- {detector}, seed {seed}: {len(absent)} runs missing")
    return gaps or ["- none: every cell of the grid has its runs."]


# ------------------------------------------------------------------------- the report
def _setup(meta: Meta) -> list[str]:
    b = meta["budget"]
    names = {"yolov8n": "YOLOv8n", "yolo11n": "YOLO11n"}
    detectors = " and ".join(names.get(d, d) for d in planned(meta)[0])
    return [
        f"**Setup.** ultralytics {detectors} built from their yaml (no pretrained "
        f"weights), trained with ultralytics' own trainer (its defaults: `optimizer=auto`, "
        f"which picks AdamW for runs this short, 3 warm-up epochs, EMA, its augmentation with "
        f"mosaic closed for the last 10 epochs) through forecastprune's `attach`, on one CPU "
        f"thread per run: {b['epochs']} epochs at batch {b['batch']} and {b['imgsz']}² pixels; "
        f"L1 on γ s = {b['sparsity']:g} while sparse-training; coupling policy `grouped`, "
        f"ratios {', '.join(str(r) for r in sorted({k[1] for k in groups(meta)}))}; seeds "
        f"{', '.join(map(str, meta['seeds']))}.",
        "",
        f"**Data.** `make_clutter_dataset` (forecastprune.integrations.ultralytics, generated "
        f"locally, seed {b['data_seed']}): {b['n_train']:,} training / {b['n_val']:,} validation "
        f"images of {b['imgsz']}² pixels; six classes told apart by shape only (square, disc, "
        "triangle, diamond, cross, ring, each object in a random colour); 1–6 objects per "
        "image with sides log-uniform from 1/8 to 1/2 of the image (several scales); objects "
        "may overlap up to IoU 0.3 and occlude each other; clutter: a brightness gradient under "
        "noise, random line segments, outlined squares and filled bars that no class labels.",
        "",
        "**Methods.** dense (no L1, no pruning); **slimming** (L1 for the whole budget, prune on "
        "the final |γ| with `prune_ultralytics_checkpoint` — `naive` at cutoff 1.0 — then a "
        f"fine-tune of {b['finetune_epochs']} epochs with `PrunedDetectionTrainer`, charged to "
        "its compute; the one L1 run is shared by the rows of both ratios: it is the same "
        "computation, nothing before the prune depends on the ratio, and each row is charged "
        "for all of it); slimming (same budget) (L1 for 75 % of the budget, prune on the "
        "current |γ|, train on); early-bird (prune when the current-|γ| mask is within Hamming "
        "0.1 of each of the previous 4, checked once per epoch; no deadline); forecast F @c "
        "(L1 while recording γ; at fraction c of the run forecast every channel's final |γ| "
        "with F — `auto` or the `naive` control, which is the current |γ| — prune once, "
        "train on without L1); forecast auto @confidence (prune when the forecast mask agrees "
        "with the previous check and the forecaster's own in-history backtest reaches IoU 0.9; "
        f"forced at 60 %). {er.GATED_AUTO}.",
        "",
        "**Measures.** mAP50-95 and mAP50 of the final EMA model on the validation split "
        "(ultralytics' validator, once after the last epoch); training compute = Σ over "
        "batches of 3 × MACs/image × images at the training size, charged at the pruned "
        "model's MACs after the prune (validation not counted); params and MACs "
        "(`forecastprune.engine.stats`) of the final model; latency = the fastest of 5 "
        "(640²) or 30 (training size) single-image forward passes of the fused model "
        "(ultralytics' `fuse()`: BN folded into the convs), one thread, on a shared CPU — "
        "compare latencies only within a table, and know that a row made again later (the "
        "`auto` rows) was timed under another load: two rows with the same model can differ "
        "by a third. Means ± half-width of the 95 % Student-t "
        "interval over seeds. Runs with the same seed share init, data order and training "
        "up to their prune, so claims are tested on per-seed differences, with the "
        "statistics code of docs/results.md (`benchmarks/evidence_stats.py`): one-sided "
        "paired t-tests (non-inferiority with a 0.5-point margin; prune step earlier; "
        "`auto` > `naive`), the exact sign-flip test when the differences have no spread. A "
        "claim **holds** when its conditions hold on the means and the tests are significant "
        "at 0.05, is **not shown** when the means satisfy it but a test is not significant, "
        "and **fails** otherwise.",
    ]


def write_report(meta: Meta, out: Path) -> None:
    """Render ``out`` (markdown) and its PNGs next to it from the saved records."""
    from forecastprune._util import atomic_write_bytes

    detectors = list(dict.fromkeys(t for t, _, _ in groups(meta)))
    pngs = []
    for detector in detectors:
        for kind in ("compute", "prune"):
            png = out.with_name(f"{out.stem}-{detector}-{kind}.png")
            er.plot_task(meta, detector, kind, png, ylabel="mAP50-95 (%)", measure="mAP50-95")
            pngs.append((detector, kind, png.name))
    command = command_of(meta)
    lines = [
        "# Early pruning on YOLO: dense vs slimming vs Early-Bird vs forecast",
        "",
        f"Generated by `{command}` (in resumable chunks, `--resume`): {er.wall_time(meta)}, "
        "on a shared 2-core CPU machine. Raw records: "
        f"`{out.stem}-runs.json` (re-render with `--render-only`). Do not edit by hand.",
        "",
        *_setup(meta),
        "",
        "## Summary",
        "",
        *summary(meta),
        "",
        "## Headline: the cheapest method within 0.5 mAP points of slimming",
        "",
        *headline(meta),
        "",
        "Cheapest = least mean training compute among pruned methods whose mean mAP50-95 is at "
        "most 0.5 points below slimming's; the paired gap and p-value test that it is truly "
        "within 0.5 points (p < 0.05: shown).",
        "",
        "## Claim 1: within 0.5 mAP points of slimming at ≤ 60 % of its compute",
        "",
        *er.claims(meta, "slimming", es.claim_one, "compute"),
        "",
        "Each cell: verdict, mean paired mAP50-95 gap to slimming in points (p-value of "
        "non-inferiority with a 0.5-point margin), training compute as a share of slimming's.",
        "",
        "## Against slimming on the same total budget",
        "",
        *against_same_budget(meta),
        "",
        "Each cell: mean paired mAP50-95 gap to slimming (same budget) in points with its 95 % "
        "CI (p-value of non-inferiority with a 0.5-point margin), training compute as a share "
        "of that slimming's. Same epochs, so this isolates when the channels go, not how long "
        "the model trains.",
        "",
        *_auto_and_early_bird(meta),
        "## Automatic timing",
        "",
        *er.timing_rules(meta, "mAP50-95"),
        "",
        "Gaps: the row's mAP50-95 minus the named variant's, paired by seed (points).",
        "",
        "## Plots",
        "",
        *(f"![{d}: mAP50-95 vs {kind}]({name})\n" for d, kind, name in pngs),
        "## Every group",
        "",
    ]
    for key in groups(meta):
        lines += [f"### {key[0]}, ratio {key[1]}, {key[2]} policy", ""]
        lines += [*group_table(rows_of(meta, key)), ""]
    lines += ["## Missing cells", "", *missing(meta), ""]
    atomic_write_bytes(out, "\n".join(lines).encode("utf-8"))
