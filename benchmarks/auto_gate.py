"""Fit and judge the run-level gates of ``auto``, ``learned`` and ``learned_gbr``, family-out.

Works from ``benchmarks/family_out.py``'s cache (its ``--refit`` fold models): for every corpus
run it forecasts with the models fitted *without that run's family* (the held-out families: the
models fitted on all tuning families, the ones that ship) at several cutoffs, and keeps the
forecasts, the run-level signals (:mod:`forecastprune.forecasters.gate`), each channel's
volatility and the final |γ| (``--dump``; cached per run under ``CACHE/gate``). Scoring then
needs no replay: every (run, cutoff, ratio) cell is scored as ``compare`` scores it (the
engine's decision under policy none, tie-aware IoU when the cut lies in the collapsed set).

``--fit`` does, for each forecaster, with the signal and the constraint of :data:`PLAN`:

1. **Nested family-out**: for each tuning family, the gate (threshold and shrink) is fitted on
   the other tuning families' cells — the best mean gain whose training cells all keep the
   constraint — and scores the left-out family at cutoffs 10 % and 20 %; likewise the interval
   widths, whose empirical coverage is measured on the left-out family.
2. **Final**: fitted on all tuning families; the held-out families are scored once.
3. The frontier without a gate (every shrink applied to every run), for the record.

``--write PATH`` saves the final gates (JSON); each fold's gates go to ``CACHE/gates`` (the
held-out fold's are the final ones), for ``family_out.py --gated``. Figures print as markdown.

Usage::

    python benchmarks/auto_gate.py --corpus DIR --cache DIR --dump [--limit N]
    python benchmarks/auto_gate.py --corpus DIR --cache DIR --fit [--write PATH]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from forecastprune.compare.scoring import Judge
from forecastprune.compare.settings import ReplaySettings
from forecastprune.compare.suite import bootstrap_interval
from forecastprune.core import metrics
from forecastprune.engine.spec import PruneSpec
from forecastprune.forecasters.candidates import Window
from forecastprune.forecasters.domain import Domain
from forecastprune.forecasters.features import FEATURES, from_ranks, layered_features, run_scale
from forecastprune.forecasters.gate import (
    INTERVAL_FLOOR,
    Gate,
    rank_residual,
    raw_volatility,
    save_gates,
    shrink_toward_naive,
    signal,
)
from forecastprune.forecasters.learned import _gbr_apply
from forecastprune.forecasters.registry import register_forecaster
from forecastprune.forecasters.ridge import RidgeModel
from forecastprune.forecasters.windowed import WindowForecaster
from forecastprune.predict import predict_store
from forecastprune.store import GammaTrajectoryStore

#: the cutoffs gates are fitted on (the scored ones are 10 % and 20 %)
CUTOFFS = (0.05, 0.1, 0.15, 0.2, 0.3)
SCORED = (0.1, 0.2)
RATIOS = (0.5, 0.7)
SHRINKS = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3)
#: per forecaster: its learned model, the signals its gate may read (each with the side that
#: opens it; each fit keeps the best), and the constraint every training family must keep
#: ("cell": every cell ≥ −0.01; "family": every family's mean gain ≥ 0)
#: auto does not read the channel count: fitted nested with it (open above 5,200 channels, shrink
#: 0.1: +0.0001, 0/492 cells below the floor), it broke the floor on the held-out families
#: (7/132 cells, all MobileNetV2 and YOLO11n runs; docs/corpus.md)
PLAN = {
    "auto": ("gbr", (("backtest_gain", True),), "cell"),
    "learned_gbr": ("gbr", (("stability_recent", False), ("channels", False)), "family"),
    "learned": ("ridge", (("horizon", True),), "family"),
}
#: the signals dumped per run and cutoff (backtest_gain apart: it runs the model)
DUMPED = ("stability", "stability_recent", "horizon", "channels")
FLOOR = -0.01
COVERAGES = (0.5, 0.8, 0.9, 0.95, 0.99)
NOMINAL = 0.9
_CAPTURED: dict[str, Window] = {}


@register_forecaster("_gate_probe")
class _Probe(WindowForecaster):
    """Hands its window to the script (naive forecast): the forecasters' own view of a run."""

    description = "naive; keeps the window it saw for benchmarks/auto_gate.py"
    _tags = {"min_history": 1, "uses_layout": True}

    def __init__(self, use_clock: bool = True) -> None:
        self.use_clock = use_clock

    def _forecast(self, window: Window) -> np.ndarray:
        _CAPTURED["window"] = window
        return window.values[-1].copy()


# --------------------------------------------------------------------------------- dump
def dump(corpus: Path, cache: Path, limit: int | None = None) -> None:
    """Forecasts, signals, volatilities and final |γ| of every run, with its fold's models
    (at most ``limit`` runs not yet cached, so a long dump runs in chunks)."""
    family, held = _manifest(corpus)
    folder = cache / "gate"
    folder.mkdir(parents=True, exist_ok=True)
    todo = [run for run in sorted(family) if not (folder / f"{run}.npz").exists()]
    for run in todo[:limit]:
        path = folder / f"{run}.npz"
        slug = "held-out" if family[run] in held else family[run].replace("/", "_")
        models = _fold_models(cache / "models", slug)
        out: dict[str, np.ndarray] = {}
        with GammaTrajectoryStore.open(corpus / f"{run}.fpstore") as store:
            out["final"] = np.abs(np.asarray(store.view()[-1], dtype=np.float64))
            for cutoff in CUTOFFS:
                window = window_at(store, cutoff)
                out[f"naive|{cutoff}"] = window.values[-1].copy()
                out[f"rawvol|{cutoff}"] = raw_volatility(window)
                out[f"scale|{cutoff}"] = np.array(run_scale(window.values))
                for name, fn in models.items():
                    forecast = fn(window)
                    out[f"{name}|{cutoff}"] = forecast
                    for shrink in SHRINKS[1:]:
                        out[f"{name}~{shrink}|{cutoff}"] = shrink_toward_naive(
                            window, forecast, shrink
                        )
                for sig in DUMPED:
                    out[f"sig:{sig}|{cutoff}"] = np.array(signal(sig, window, models["gbr"]))
                out[f"sig:backtest_gain|{cutoff}"] = np.array(
                    signal("backtest_gain", window, models["gbr"])
                )
        np.savez(path, **out)
        print(run, flush=True)


def _fold_models(folder: Path, slug: str) -> dict[str, Any]:
    """A fold's ``learned_gbr`` and ``learned`` as window → forecast, domain check included
    (outside its domain a model forecasts naive, as the forecasters do)."""
    gbr_path = str(folder / f"{slug}.skops")
    ridge = RidgeModel.load(folder / f"{slug}.json", FEATURES)
    ridge_domain = Domain.from_info(ridge.info, str(folder / f"{slug}.json"), FEATURES)

    gbr = partial(_gbr_apply, path=gbr_path)  # the forecasters' own path

    def learned(w: Window) -> np.ndarray:
        x = layered_features(w)[:, : len(FEATURES)]
        if ridge_domain is not None and not ridge_domain.check(x).inside:
            return w.values[-1].copy()
        return from_ranks(w, ridge.predict(x))

    return {"gbr": gbr, "ridge": learned}


# --------------------------------------------------------------------------------- cells
class CellJudge:
    """One run's oracle: the engine's cut for a forecast under policy none, and how it compares
    with the finished run's."""

    def __init__(self, layout: Any, final: np.ndarray) -> None:
        settings = ReplaySettings(cutoffs=("0.1",), spec=PruneSpec(policy="none"), ratios=RATIOS)
        self.judge = Judge.build(layout, final, settings)

    def cut(self, forecast: np.ndarray, ratio: float) -> np.ndarray:
        """The channels the engine prunes for ``forecast`` (a boolean mask)."""
        return np.asarray(self.judge.decide(forecast, ratio).pruned, dtype=bool)

    def iou(self, pruned: np.ndarray, ratio: float) -> float:
        """``compare``'s ranking metric of a cut: tie-aware IoU when the finished run's cut
        lies in the collapsed set."""
        oracle = self.judge.oracle_masks[ratio]
        if self.judge.oracle[ratio].rank_by == "tie_iou":
            return metrics.tie_aware_iou(pruned, oracle, self.judge.collapsed)
        return metrics.iou(pruned, oracle)

    def correct(self, pruned: np.ndarray, ratio: float) -> int:
        """How many channels of a cut the finished run prunes too."""
        return int(np.sum(pruned & self.judge.oracle_masks[ratio]))


def scorer(layout: Any, final: np.ndarray) -> Callable[[np.ndarray, float], float]:
    """A forecast and a ratio → ``compare``'s ranking metric for one run (:class:`CellJudge`)."""
    judge = CellJudge(layout, final)
    return lambda forecast, ratio: judge.iou(judge.cut(forecast, ratio), ratio)


def window_at(store: Any, cutoff: float) -> Window:
    """The history window the forecasters see at ``cutoff`` (their clock, their layout)."""
    predict_store(store, "_gate_probe", cutoff)
    return _CAPTURED["window"]


def cells(corpus: Path, cache: Path) -> dict[str, Any]:
    """Per run and cutoff: the signals, and per option and ratio the gain over naive."""
    family, held = _manifest(corpus)
    table: dict[str, Any] = {}
    for run in sorted(family):
        data = dict(np.load(cache / "gate" / f"{run}.npz"))
        with GammaTrajectoryStore.open(corpus / f"{run}.fpstore") as store:
            layout = store.layout
        score = scorer(layout, data["final"])
        for cutoff in CUTOFFS:
            row: dict[str, Any] = {"family": family[run], "held": family[run] in held}
            row["signals"] = {
                k.split("|")[0][4:]: float(v)
                for k, v in data.items()
                if k.startswith("sig:") and k.endswith(f"|{cutoff}")
            }
            base = {q: score(data[f"naive|{cutoff}"], q) for q in RATIOS}
            row["naive"] = base
            for model in ("gbr", "ridge"):
                for shrink in SHRINKS:
                    key = model if shrink == 0 else f"{model}~{shrink}"
                    row[key] = {q: score(data[f"{key}|{cutoff}"], q) - base[q] for q in RATIOS}
            # gate.volatility, from its parts (the floor may change without a new dump)
            vol = data[f"rawvol|{cutoff}"] + INTERVAL_FLOOR * data[f"scale|{cutoff}"]
            row["residual"] = {
                model: rank_residual(data[f"{model}|{cutoff}"], data["final"]) / vol
                for model in ("naive", "gbr", "ridge")
            }
            table[f"{run}|{cutoff}"] = row
    return table


# ---------------------------------------------------------------------------------- fit
def fit_gate(
    rows: list[dict], model: str, options: tuple[tuple[str, bool], ...], constraint: str
) -> Gate:
    """The signal, threshold and shrink with the best mean gain whose rows keep the
    constraint; closed (on the first signal) when none does."""
    fams = np.array([r["family"] for r in rows])
    best: tuple[float, Gate] = (0.0, Gate(options[0][0], above=options[0][1], closed=True))
    for sig, above in options:
        values = np.array([r["signals"][sig] for r in rows])
        for threshold in np.unique(np.quantile(values[np.isfinite(values)], np.linspace(0, 1, 51))):
            gate_open = values > threshold if above else values < threshold
            for shrink in SHRINKS:
                key = model if shrink == 0 else f"{model}~{shrink}"
                gains = np.array([[r[key][q] for q in RATIOS] for r in rows]) * gate_open[:, None]
                if constraint == "cell" and gains.min() < FLOOR:
                    continue
                if constraint == "family" and any(
                    gains[fams == f].mean() < 0 for f in np.unique(fams)
                ):
                    continue
                if gains.mean() > best[0]:
                    best = (gains.mean(), Gate(sig, float(threshold), above, float(shrink)))
    return best[1]


def gated_gains(rows: list[dict], gate: Gate, model: str) -> np.ndarray:
    """(N, ratios) gains over naive of the gated forecast."""
    key = model if gate.shrink == 0 else f"{model}~{gate.shrink:g}"
    return np.array(
        [
            [r[key][q] if gate.opens(r["signals"][gate.signal]) else 0.0 for q in RATIOS]
            for r in rows
        ]
    )


def fit_widths(rows: list[dict], gate: Gate, model: str) -> tuple[float, ...]:
    """Quantiles of |final − forecast| / volatility of the gated forecast, at COVERAGES."""
    residuals = np.concatenate(
        [r["residual"][model if gate.opens(r["signals"][gate.signal]) else "naive"] for r in rows]
    )
    return tuple(float(np.quantile(residuals, c)) for c in COVERAGES)


def coverage_of(rows: list[dict], gate: Gate, model: str, widths: tuple[float, ...]) -> float:
    k = float(np.interp(NOMINAL, COVERAGES, widths))
    inside = [
        np.mean(r["residual"][model if gate.opens(r["signals"][gate.signal]) else "naive"] <= k)
        for r in rows
    ]
    return float(np.mean(inside))


def fit_all(corpus: Path, cache: Path, write: Path | None) -> str:
    """Nested family-out figures, the final gates, and the frontier (markdown)."""
    table = cells(corpus, cache)
    tuning = sorted({r["family"] for r in table.values() if not r["held"]})
    lines = []
    final: dict[str, Gate] = {}
    folds: dict[str, dict[str, Gate]] = {fam: {} for fam in tuning}
    for name, (model, options, constraint) in PLAN.items():
        scored, coverage, chosen = [], {}, []
        for fam in tuning:
            train = [r for r in table.values() if not r["held"] and r["family"] != fam]
            gate = fit_gate(train, model, options, constraint)
            widths = fit_widths(train, gate, model)
            folds[fam][name] = replace(gate, coverage=COVERAGES, widths=widths)
            test = _rows(table, lambda r, f=fam: r["family"] == f, SCORED)
            gains = gated_gains([t for _, t in test], gate, model)
            scored += [(fam, run, g) for (run, _), g in zip(test, gains)]
            coverage[fam] = coverage_of([t for _, t in test], gate, model, widths)
            chosen.append(gate)
        train = [r for r in table.values() if not r["held"]]
        gate = fit_gate(train, model, options, constraint)
        widths = fit_widths(train, gate, model)
        held_rows = _rows(table, lambda r: r["held"], SCORED)
        held_gains = gated_gains([t for _, t in held_rows], gate, model)
        held_cov = coverage_of([t for _, t in held_rows], gate, model, widths)
        final[name] = replace(
            gate,
            coverage=COVERAGES,
            widths=widths,
            info={
                "fitted_on_families": tuning,
                "constraint": constraint,
                "family_out": _summary(scored),
                "held_out": _summary(
                    [(t["family"], run, g) for (run, t), g in zip(held_rows, held_gains)]
                ),
                "coverage_family_out": {"nominal": NOMINAL, **_cov_summary(coverage)},
                "coverage_held_out": held_cov,
            },
        )
        lines += _report(name, final[name], chosen)
    lines += _frontier(table)
    for fam, gates in folds.items():  # for family_out.py's replays of the gated forecasters
        save_gates(cache / "gates" / f"{fam.replace('/', '_')}.json", gates, {"fold": fam})
    save_gates(cache / "gates" / "held-out.json", final, {"fold": "held-out"})
    if write is not None:
        # the corpus by its folder's name and size: a local path means nothing to a reader
        fitted_on = f"{corpus.resolve().name} ({len(_manifest(corpus)[0])} runs)"
        save_gates(write, final, {"made_by": "benchmarks/auto_gate.py", "corpus": fitted_on})
        lines.append(f"\nwrote {write}")
    return "\n".join(lines)


def _rows(table: dict, keep, cutoffs) -> list[tuple[str, dict]]:
    return [
        (key.split("|")[0], r)
        for key, r in table.items()
        if keep(r) and float(key.split("|")[1]) in cutoffs
    ]


def _summary(scored: list[tuple[str, str, np.ndarray]]) -> dict[str, Any]:
    per_run: dict[str, list[float]] = {}
    fam_of: dict[str, str] = {}
    for fam, run, gains in scored:
        per_run.setdefault(run, []).extend(gains.tolist())
        fam_of[run] = fam
    runs = sorted(per_run)
    means = np.array([np.mean(per_run[r]) for r in runs])
    low, high = bootstrap_interval(means)
    every = np.concatenate([per_run[r] for r in runs])
    fam_means = {
        f: float(np.mean([np.mean(per_run[r]) for r in runs if fam_of[r] == f]))
        for f in sorted(set(fam_of.values()))
    }
    return {
        "mean_gain": round(float(means.mean()), 4),
        "ci90": [round(float(low), 4), round(float(high), 4)],
        "worst_cell": round(float(every.min()), 4),
        "cells_below_floor": int(np.sum(every < FLOOR)),
        "cells": int(every.size),
        "families_negative": {f: round(m, 4) for f, m in fam_means.items() if m < 0},
        "used": round(float(np.mean(np.any(np.array([g for _, _, g in scored]) != 0, axis=1))), 3),
    }


def _cov_summary(coverage: dict[str, float]) -> dict[str, Any]:
    values = np.array(list(coverage.values()))
    return {
        "mean": round(float(values.mean()), 3),
        "lowest_family": round(float(values.min()), 3),
        "highest_family": round(float(values.max()), 3),
    }


def _report(name: str, gate: Gate, chosen: list[Gate]) -> list[str]:
    fo, ho = gate.info["family_out"], gate.info["held_out"]
    return [
        f"### {name}: {_rule(gate)}",
        "",
        "| judged | mean gain [90 % CI] | worst cell | cells < −0.01 | negative families | "
        "used | coverage at 0.9 |",
        "|---|---|---|---|---|---|---|",
        f"| nested family-out ({len(gate.info['fitted_on_families'])} tuning families) | "
        f"{fo['mean_gain']:+.4f} "
        f"[{fo['ci90'][0]:+.4f}, {fo['ci90'][1]:+.4f}] | {fo['worst_cell']:+.3f} | "
        f"{fo['cells_below_floor']}/{fo['cells']} | {fo['families_negative'] or '-'} | "
        f"{fo['used']:.0%} | {gate.info['coverage_family_out']} |",
        f"| held-out families, final gate | {ho['mean_gain']:+.4f} "
        f"[{ho['ci90'][0]:+.4f}, {ho['ci90'][1]:+.4f}] | {ho['worst_cell']:+.3f} | "
        f"{ho['cells_below_floor']}/{ho['cells']} | {ho['families_negative'] or '-'} | "
        f"{ho['used']:.0%} | {gate.info['coverage_held_out']:.3f} |",
        "",
        "per-fold gates: " + ", ".join(_rule(g, short=True) for g in chosen),
        "",
    ]


def _rule(gate: Gate, short: bool = False) -> str:
    """A gate in words: ``open when stability < 0.97, shrink 0.05`` or ``closed``."""
    if gate.closed:
        return "closed" if short else "closed on every run (no threshold kept the constraint)"
    if short:
        return f"({gate.signal} {gate.threshold:.3g}, {gate.shrink:g})"
    side = ">" if gate.above else "<"
    return f"open when {gate.signal} {side} {gate.threshold:.4g}, shrink {gate.shrink:g}"


def _frontier(table: dict) -> list[str]:
    lines = [
        "### frontier without a gate (tuning families, family-out models, cutoffs 10/20 %)",
        "",
        "| model | shrink | mean gain | worst cell | cells < −0.01 |",
        "|---|---|---|---|---|",
    ]
    rows = [r for _, r in _rows(table, lambda r: not r["held"], SCORED)]
    for model in ("gbr", "ridge"):
        for shrink in SHRINKS:
            key = model if shrink == 0 else f"{model}~{shrink}"
            gains = np.array([[r[key][q] for q in RATIOS] for r in rows])
            lines.append(
                f"| {model} | {shrink:g} | {gains.mean():+.4f} | {gains.min():+.3f} | "
                f"{int(np.sum(gains < FLOOR))}/{gains.size} |"
            )
    return lines + [""]


def _manifest(corpus: Path) -> tuple[dict[str, str], set[str]]:
    manifest = json.loads((corpus / "corpus.json").read_text())
    family = {name: run["family"] for name, run in manifest["runs"].items()}
    return family, set(manifest.get("held_out_families", ()))


def corpus_parser(doc: str) -> argparse.ArgumentParser:
    """A command line taking the corpus view and the family-out cache (``--corpus``,
    ``--cache``), described by the first line of ``doc``; what these scripts all read."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    return parser


def main() -> None:
    parser = corpus_parser(__doc__)
    parser.add_argument("--dump", action="store_true", help="forecast every run (cached)")
    parser.add_argument("--fit", action="store_true", help="fit and judge the gates")
    parser.add_argument("--write", type=Path, default=None, help="save the final gates here")
    parser.add_argument("--limit", type=int, default=None, help="dump at most N runs")
    args = parser.parse_args()
    if args.dump:
        dump(args.corpus, args.cache, args.limit)
    if args.fit:
        print(fit_all(args.corpus, args.cache, args.write))


if __name__ == "__main__":
    main()
