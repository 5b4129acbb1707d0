"""Family-out scores of every forecaster on the trajectory corpus (``scripts/make_corpus.py``).

A family is architecture × training recipe. Every figure here is on runs of families the scored
model never saw: ``--refit`` fits ``learned`` / ``learned_gbr`` once per tuning family on the
other tuning families (labels ``·corpus``: the models alone, ungated), ``--gated`` replays
``auto`` / ``learned`` / ``learned_gbr`` as they ship, each fold with its models and the gates
``benchmarks/auto_gate.py`` fitted without the fold's family (labels ``·gated``). ``arima``,
``global_ridge`` and ``naive`` fit nothing across runs. The corpus's held-out families
(``corpus.json``) are reported apart: nothing was tuned on them. (Cells cached before the gates
existed may also hold ``auto·corpus``: the backtest choice with a ``learned`` candidate.)

For each (run, cutoff, ratio) cell the score is ``compare``'s ranking metric (the tie-aware IoU
of the pruned set with the one the finished run prunes) minus naive's, and Spearman's ρ of the
forecast with the final |γ|. Per family: mean gain and the worst cell; overall: the mean with a
bootstrap interval over runs. Cells are cached per run (``--cache``), so the replay can run in
chunks (``--limit``) and the tables are printed from the cache (``--report``).

Usage::

    python benchmarks/family_out.py --corpus DIR --cache DIR [--limit N]   # replay
    python benchmarks/family_out.py --corpus DIR --cache DIR --report      # tables
    python benchmarks/family_out.py --corpus DIR --cache DIR --refit       # family-out models
    python benchmarks/family_out.py --corpus DIR --cache DIR --gated       # gated, as shipped
    python benchmarks/family_out.py --held-out-corpus NEW --cache DIR2     # another corpus,
    python benchmarks/family_out.py --corpus NEW --cache DIR2 --report --all-held  # held out
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from forecastprune.compare.replay import CONTROL, replay
from forecastprune.compare.settings import ReplaySettings
from forecastprune.compare.suite import bootstrap_interval
from forecastprune.engine.spec import PruneSpec
from forecastprune.forecasters.features import RANK_TARGETS
from forecastprune.forecasters.training import DEFAULT_RANK_TARGET, DEFAULT_WEIGHTING, WEIGHTINGS
from forecastprune.store import GammaTrajectoryStore

FORECASTERS = ("auto", "learned", "learned_gbr", "arima", "global_ridge")
#: the labels of the models refitted on the corpus (``--refit``), by the spec they replace
REFIT = {"learned": "learned·corpus", "learned_gbr": "learned_gbr·corpus"}
#: the labels of the gated forecasters replayed with each fold's models and gates (``--gated``)
GATED = {"learned": "learned·gated", "learned_gbr": "learned_gbr·gated", "auto": "auto·gated"}
CUTOFFS = ("0.1", "0.2")
RATIOS = (0.5, 0.7)


def replay_run(path: Path, specs: tuple[str, ...] = FORECASTERS) -> dict[str, Any]:
    """Every (forecaster, cutoff, ratio) cell of one run: gain over naive, ρ, IoU, note."""
    # policy none, as docs/corpus.md states: every recorded channel scored on its own
    settings = ReplaySettings(
        cutoffs=CUTOFFS, spec=PruneSpec(policy="none"), ratios=RATIOS, isolation="thread"
    )
    start = time.perf_counter()
    with GammaTrajectoryStore.open(path) as store:
        result = replay(store, list(specs), settings)
    cells: dict[str, Any] = {}
    for ratio in RATIOS:
        key = result.oracle[ratio].rank_by
        for cutoff in result.cutoffs:
            rows = {r.forecaster: r for r in result.rows_for(ratio, cutoff)}
            base = float(getattr(rows[CONTROL], key))
            for label, row in rows.items():
                cells[f"{label}|{cutoff.label}|{ratio:g}"] = {
                    "score": float(getattr(row, key)) if row.ok else None,
                    "gain": float(getattr(row, key)) - base if row.ok else None,
                    "spearman": float(row.spearman) if row.ok else None,
                    "note": row.note or "",
                }
    return {"cells": cells, "seconds": round(time.perf_counter() - start, 2)}


def run_all(
    corpus: Path, cache: Path, limit: int | None, specs: tuple[str, ...] = FORECASTERS
) -> None:
    """Replay the runs not yet in the cache (at most ``limit``)."""
    cache.mkdir(parents=True, exist_ok=True)
    todo = [p for p in sorted(corpus.glob("*.fpstore")) if not (cache / f"{p.stem}.json").exists()][
        :limit
    ]
    for path in todo:
        data = replay_run(path, specs)
        (cache / f"{path.stem}.json").write_text(json.dumps(data) + "\n")
        print(f"{path.stem}: {data['seconds']:.1f} s", flush=True)


def refit_all(
    corpus: Path,
    cache: Path,
    limit: int | None,
    weighting: str = DEFAULT_WEIGHTING,
    target: str = DEFAULT_RANK_TARGET,
) -> None:
    """Refit ``learned`` and ``learned_gbr`` on the corpus, family-out, and replay them.

    For every tuning family the models are fitted on every *other* tuning family's runs (the
    held-out families never take part) and replayed ungated (the bundled gates were fitted on
    every tuning family) on the family's runs; the held-out families are replayed once with
    the models fitted on all tuning families (the ones that would ship). Cells are added to
    each run's cached cells under :data:`REFIT`'s labels; each fold is done once (resumable).
    """
    from forecastprune.forecasters.training import (
        DEFAULT_CUTOFFS,
        gbr_from_examples,
        ridge_from_examples,
    )

    manifest = json.loads((corpus / "corpus.json").read_text())
    held = set(manifest.get("held_out_families", ()))
    family = {name: run["family"] for name, run in manifest["runs"].items()}
    tuning = sorted({f for f in family.values() if f not in held})
    folds = [(f, [f]) for f in tuning] + [("held-out", sorted(held))]
    models = cache / "models"
    models.mkdir(parents=True, exist_ok=True)
    todo = [
        (name, fams)
        for name, fams in folds
        if not (models / f"{name.replace('/', '_')}.done").exists()
    ][:limit]
    for name, fams in todo:
        start = time.perf_counter()
        train = sorted(r for r, f in family.items() if f in tuning and f not in fams)
        # both are ranking models now: they read the ranking examples (learned: its columns)
        x, y, sizes = _stacked(corpus, cache, train, DEFAULT_CUTOFFS)[2:]
        info = {
            "trained_on": train,
            "cutoffs": [str(c) for c in DEFAULT_CUTOFFS],
            "use_clock": True,
            "examples": len(y),
        }
        slug = name.replace("/", "_")
        ridge = ridge_from_examples(x, y, info).save(models / f"{slug}.json")
        gbr = gbr_from_examples(x, y, info, weighting, sizes, target)
        gbr = gbr.save(models / f"{slug}.skops")
        specs = (
            f"learned(model='{ridge}', gated=False)",
            f"learned_gbr(model='{gbr}', gated=False)",
        )
        for run in sorted(r for r, f in family.items() if f in fams):
            cells = replay_run(corpus / f"{run}.fpstore", specs)["cells"]
            path = cache / f"{run}.json"
            data = json.loads(path.read_text())
            for key, cell in cells.items():
                label, rest = key.split("|", 1)
                base = label.split("(", 1)[0]
                if label != CONTROL:
                    data["cells"][f"{REFIT[base]}|{rest}"] = cell
            path.write_text(json.dumps(data) + "\n")
        (models / f"{slug}.done").write_text("")
        print(
            f"{name}: fitted on {len(train)} runs, {time.perf_counter() - start:.1f} s", flush=True
        )


def gated_all(corpus: Path, cache: Path, limit: int | None) -> None:
    """Replay ``auto``, ``learned`` and ``learned_gbr`` as they ship — gated — family-out.

    Each tuning family is replayed with the models ``--refit`` fitted without it and the
    gates ``benchmarks/auto_gate.py --fit`` fitted without it (``CACHE/gates``); the held-out
    families with the final models and gates. Cells go under :data:`GATED`'s labels.
    """
    manifest = json.loads((corpus / "corpus.json").read_text())
    held = set(manifest.get("held_out_families", ()))
    family = {name: run["family"] for name, run in manifest["runs"].items()}
    folds = [(f, [f]) for f in sorted({f for f in family.values() if f not in held})]
    folds.append(("held-out", sorted(held)))
    models, gates = cache / "models", cache / "gates"
    todo = [(n, f) for n, f in folds if not (models / f"{_slug(n)}.gated.done").exists()]
    for name, fams in todo[:limit]:
        start = time.perf_counter()
        slug = _slug(name)
        gate_file = gates / f"{slug}.json"
        if not gate_file.exists():
            raise SystemExit(f"{gate_file} is missing: run benchmarks/auto_gate.py --fit first")
        ridge, gbr = models / f"{slug}.json", models / f"{slug}.skops"
        specs = (
            f"learned(model='{ridge}', gates='{gate_file}')",
            f"learned_gbr(model='{gbr}', gates='{gate_file}')",
            f"auto(model='{gbr}', gates='{gate_file}')",
        )
        for run in sorted(r for r, f in family.items() if f in fams):
            _merge(cache / f"{run}.json", replay_run(corpus / f"{run}.fpstore", specs), GATED)
        (models / f"{slug}.gated.done").write_text("")
        print(f"{name}: {time.perf_counter() - start:.1f} s", flush=True)


def held_out_corpus(corpus: Path, cache: Path, limit: int | None) -> None:
    """Replay every run of another corpus folder with the forecasters as they ship (bundled
    models and gates), scored as held-out families: nothing was fitted or tuned on them."""
    run_all(corpus, cache, limit, ("auto", "learned", "learned_gbr", "arima", "global_ridge"))


def _slug(name: str) -> str:
    return name.replace("/", "_")


def _merge(path: Path, replayed: dict[str, Any], labels: dict[str, str]) -> None:
    """Add a replay's cells to a run's cached cells under new labels (naive's are kept)."""
    data = json.loads(path.read_text())
    for key, cell in replayed["cells"].items():
        label, rest = key.split("|", 1)
        if label != CONTROL:
            data["cells"][f"{labels[label.split('(', 1)[0]]}|{rest}"] = cell
    path.write_text(json.dumps(data) + "\n")


def _stacked(corpus: Path, cache: Path, runs: list[str], cutoffs) -> list[np.ndarray]:
    """Every run's ridge and ranking examples stacked (each run's cached in ``cache``), and
    each run's ranking example count."""
    from forecastprune.forecasters.training import run_examples

    parts: list[list[np.ndarray]] = [[], [], [], []]
    folder = cache / "examples"
    folder.mkdir(exist_ok=True)
    for run in runs:
        path = folder / f"{run}.npz"
        if not path.exists():
            with GammaTrajectoryStore.open(corpus / f"{run}.fpstore") as store:
                rx, ry = run_examples(store, cutoffs)
                gx, gy = run_examples(store, cutoffs, ranking=True)
            np.savez(path, rx=rx, ry=ry, gx=gx, gy=gy)
        with np.load(path) as data:
            for part, key in zip(parts, ("rx", "ry", "gx", "gy")):
                part.append(data[key])
    return [np.concatenate(p) for p in parts] + [np.array([len(y) for y in parts[3]])]


def report(
    corpus: Path,
    cache: Path,
    specs: tuple[str, ...] = FORECASTERS,
    all_held: bool = False,
    by_group: bool = False,
) -> str:
    """Markdown tables from the cached cells (``all_held``: every family counts as held out;
    ``by_group``: the overall table also per corpus group, e.g. zoo-digits vs torchvision)."""
    manifest = json.loads((corpus / "corpus.json").read_text())
    family = {name: run["family"] for name, run in manifest["runs"].items()}
    # the first corpus's index names no group: its runs are zoo-digits
    group = {name: run.get("group", "zoo-digits") for name, run in manifest["runs"].items()}
    held = set(family.values()) if all_held else set(manifest.get("held_out_families", ()))
    cells = {
        p.stem: json.loads(p.read_text())["cells"]
        for p in sorted(cache.glob("*.json"))
        if p.stem in family
    }
    names = (CONTROL, *specs)
    lines = [
        (
            f"{len(cells)} runs in {len({family[r] for r in cells})} families; held out "
            f"(never tuned on): {', '.join(sorted(held))}"
        ),
        "",
    ]
    for cutoff in CUTOFFS:
        for ratio in RATIOS:
            lines += _family_table(cells, family, held, names, cutoff, ratio)
    lines += _overall(cells, family, held, names)
    lines += _ceiling(cells, family, held, specs)
    if by_group:
        parts = {
            f"group {g}": [r for r in cells if group[r] == g] for g in sorted(set(group.values()))
        }
        parts["every group but zoo-digits"] = [r for r in cells if group[r] != "zoo-digits"]
        for title, runs in parts.items():
            if runs and len(runs) < len(cells):  # the table without its heading
                part = {r: cells[r] for r in runs}
                lines += [f"#### {title}", ""] + _overall(part, family, held, names)[2:]
    return "\n".join(lines)


def _values(cells, runs, label, cutoff, ratio, what):
    key = f"{label}|{float(cutoff):.0%}|{ratio:g}"  # as compare labels its cutoffs
    out = [cells[r].get(key, {}).get(what) for r in runs]
    return np.array([np.nan if v is None else v for v in out], dtype=np.float64)


def _family_table(cells, family, held, names, cutoff, ratio) -> list[str]:
    lines = [
        (
            f"### cutoff {float(cutoff):.0%}, ratio {ratio:g}: mean gain over naive "
            "(worst cell) · mean Spearman ρ"
        ),
        "",
        "| family | runs | naive IoU | " + " | ".join(names[1:]) + " |",
        "|---|---|---|" + "---|" * (len(names) - 1),
    ]
    by_family = defaultdict(list)
    for run in cells:
        by_family[family[run]].append(run)
    for fam in sorted(by_family, key=lambda f: (f in held, f)):
        runs = by_family[fam]
        naive = np.nanmean(_values(cells, runs, CONTROL, cutoff, ratio, "score"))
        row = [f"{fam}{' (held out)' if fam in held else ''}", str(len(runs)), f"{naive:.3f}"]
        for label in names[1:]:
            gain = _values(cells, runs, label, cutoff, ratio, "gain")
            rho = _values(cells, runs, label, cutoff, ratio, "spearman")
            row.append(f"{np.nanmean(gain):+.3f} ({np.nanmin(gain):+.3f}) · {np.nanmean(rho):.2f}")
        lines.append("| " + " | ".join(row) + " |")
    return lines + [""]


def _overall(cells, family, held, names) -> list[str]:
    lines = [
        "### over cutoffs 10 % and 20 %, ratios 0.5 and 0.7 (bootstrap 90 % CI over runs)",
        "",
        (
            "| forecaster | runs | mean gain [CI] | worst cell | cells < −0.01 | "
            "families with mean gain < 0 | families with mean ρ below naive's |"
        ),
        "|---|---|---|---|---|---|---|",
    ]
    for part, runs in (
        ("tuning families", [r for r in cells if family[r] not in held]),
        ("held-out families", [r for r in cells if family[r] in held]),
    ):
        if not runs:
            continue
        for label in names[1:]:
            per_run, cells_all = [], []
            for run in runs:
                gains = [
                    _values(cells, [run], label, c, q, "gain")[0] for c in CUTOFFS for q in RATIOS
                ]
                per_run.append(np.nanmean(gains))
                cells_all += gains
            per_run, cells_all = np.array(per_run), np.array(cells_all)
            low, high = bootstrap_interval(per_run[np.isfinite(per_run)])
            bad_fam, reversed_fam = [], []
            for fam in sorted({family[r] for r in runs}):
                members = [r for r in runs if family[r] == fam]
                if np.nanmean([per_run[runs.index(r)] for r in members]) < 0:
                    bad_fam.append(fam)
                rho = np.nanmean(
                    [
                        _values(cells, members, label, c, q, "spearman")
                        for c in CUTOFFS
                        for q in RATIOS
                    ]
                )
                base = np.nanmean(
                    [
                        _values(cells, members, CONTROL, c, q, "spearman")
                        for c in CUTOFFS
                        for q in RATIOS
                    ]
                )
                if rho < base - 0.05:
                    reversed_fam.append(f"{fam} ({rho:.2f} vs {base:.2f})")
            lines.append(
                f"| {label} ({part}) | {len(runs)} | {np.nanmean(per_run):+.3f} "
                f"[{low:+.3f}, {high:+.3f}] | {np.nanmin(cells_all):+.3f} | "
                f"{int(np.sum(cells_all < -0.01))}/{len(cells_all)} | "
                f"{', '.join(bad_fam) or '-'} | {', '.join(reversed_fam) or '-'} |"
            )
    return lines + [""]


def _ceiling(cells, family, held, specs) -> list[str]:
    """What a perfect run-level choice among the reported forecasters would gain: per run, the
    best mean gain over the scored cells of any of them, or naive's 0 — an upper bound on
    any ``auto`` that picks one candidate per run from these (mean over runs)."""
    lines = [
        "### ceiling: a perfect per-run choice among them (or naive), cutoffs 10/20 %",
        "",
        "| part | runs | ceiling mean gain | keeping every cell ≥ −0.01 |",
        "|---|---|---|---|",
    ]
    for part, runs in (
        ("tuning families", [r for r in cells if family[r] not in held]),
        ("held-out families", [r for r in cells if family[r] in held]),
    ):
        best, floored = [], []
        for run in runs:
            gains = [
                np.array(
                    [_values(cells, [run], s, c, q, "gain")[0] for c in CUTOFFS for q in RATIOS]
                )
                for s in specs
            ]
            gains = [g for g in gains if np.all(np.isfinite(g))]
            best.append(max([0.0, *(g.mean() for g in gains)]))
            floored.append(max([0.0, *(g.mean() for g in gains if g.min() >= -0.01)]))
        if runs:
            lines.append(
                f"| {part} | {len(runs)} | {np.mean(best):+.4f} | {np.mean(floored):+.4f} |"
            )
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=None)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--forecasters", nargs="*", default=list(FORECASTERS))
    parser.add_argument(
        "--refit",
        action="store_true",
        help="refit learned/learned_gbr on the corpus family-out and replay",
    )
    parser.add_argument(
        "--weighting",
        choices=WEIGHTINGS,
        default=DEFAULT_WEIGHTING,
        help="with --refit: weigh learned_gbr's examples alike (channel) or each run alike "
        f"(run); default {DEFAULT_WEIGHTING}, as the bundled model",
    )
    parser.add_argument(
        "--target",
        choices=RANK_TARGETS,
        default=DEFAULT_RANK_TARGET,
        help="with --refit: what learned_gbr predicts",
    )
    parser.add_argument(
        "--gated",
        action="store_true",
        help="replay the gated auto/learned/learned_gbr family-out (after auto_gate.py --fit)",
    )
    parser.add_argument(
        "--held-out-corpus",
        type=Path,
        default=None,
        metavar="DIR",
        help="replay another corpus folder with the shipped forecasters into --cache "
        "(report it with --report --corpus DIR)",
    )
    parser.add_argument(
        "--all-held",
        action="store_true",
        help="report every family as held out (a corpus scored with --held-out-corpus)",
    )
    parser.add_argument(
        "--by-group",
        action="store_true",
        help="with --report: the overall table also per corpus group (a merged corpus view)",
    )
    args = parser.parse_args()
    if args.corpus is None and args.held_out_corpus is None:
        parser.error("--corpus DIR is required (or --held-out-corpus DIR)")
    if args.held_out_corpus is not None:
        held_out_corpus(args.held_out_corpus, args.cache, args.limit)
    elif args.report:
        print(
            report(args.corpus, args.cache, tuple(args.forecasters), args.all_held, args.by_group)
        )
    elif args.gated:
        gated_all(args.corpus, args.cache, args.limit)
    elif args.refit:
        refit_all(args.corpus, args.cache, args.limit, args.weighting, args.target)
    else:
        run_all(args.corpus, args.cache, args.limit, tuple(args.forecasters))


if __name__ == "__main__":
    main()
