"""Which of ``learned_gbr``'s column groups earn their place: nested family-out on the corpus.

For each column set (:data:`VARIANTS`) and each tuning family, a ranking model is fitted on the
other tuning families' examples (``family_out.py``'s cached ``--refit`` examples, every run
weighing the same, the shipped settings and domain check) and scored on the family's runs at
cutoffs 10 % and 20 %, ratios 0.5 and 0.7, as ``compare`` scores them (``auto_gate.scorer``).
The held-out families take no part. Prints, per set, the mean gain over naive with a bootstrap
interval over runs, the worst cell, the cells more than 0.01 below naive, and the families whose
mean gain is negative.

Usage::

    python benchmarks/family_out.py --corpus DIR --cache DIR --refit   # the examples
    python benchmarks/feature_ablation.py --corpus DIR --cache DIR [--variants a,b]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from auto_gate import SCORED, _manifest, scorer, window_at
from family_out import _stacked

from forecastprune.compare.suite import bootstrap_interval
from forecastprune.forecasters.boosted import BoostedModel
from forecastprune.forecasters.domain import Domain
from forecastprune.forecasters.features import (
    FEATURES,
    LAYER_FEATURES,
    MOMENTUM_FEATURES,
    RANKING_FEATURES,
    RUN_FEATURES,
    from_ranks,
    ranking_features,
)
from forecastprune.forecasters.training import DEFAULT_CUTOFFS, example_weights
from forecastprune.store import GammaTrajectoryStore

#: the column sets compared; "layers" is the model of release 0.3, "all" ships
VARIANTS = {
    "layers": FEATURES + LAYER_FEATURES,
    "momentum": FEATURES + LAYER_FEATURES + MOMENTUM_FEATURES,
    "run": FEATURES + LAYER_FEATURES + RUN_FEATURES,
    "all": RANKING_FEATURES,
}
RATIOS = (0.5, 0.7)


def fold_model(x: np.ndarray, y: np.ndarray, sizes: np.ndarray, names: tuple[str, ...]):
    """A ranking model on the chosen columns, weighted per run, with its domain box."""
    cols = [RANKING_FEATURES.index(n) for n in names]
    weights = example_weights("run", sizes, len(y))
    model = BoostedModel.fit(x[:, cols], y, names, sample_weight=weights)
    whole = tuple(n for n in names if n in RUN_FEATURES)
    return model, Domain.of(x[:, cols], names, whole=whole), cols


def run_gains(path: Path, model, domain: Domain, cols: list[int]) -> list[float]:
    """The run's gains over naive at every scored cutoff and ratio."""
    gains = []
    with GammaTrajectoryStore.open(path) as store:
        score = scorer(store.layout, np.abs(np.asarray(store.view()[-1], dtype=np.float64)))
        for cutoff in SCORED:
            window = window_at(store, cutoff)
            x = ranking_features(window)[:, cols]
            naive = window.values[-1]
            forecast = naive
            if domain.check(x).inside:  # outside, the forecaster says naive
                forecast = from_ranks(window, model.predict(x))
            gains += [score(forecast, q) - score(naive, q) for q in RATIOS]
    return gains


def evaluate(corpus: Path, cache: Path, names: tuple[str, ...]) -> str:
    family, held = _manifest(corpus)
    tuning = sorted({f for f in family.values() if f not in held})
    per_run: dict[str, list[float]] = {}
    for fam in tuning:
        train = sorted(r for r, f in family.items() if f in tuning and f != fam)
        _, _, x, y, sizes = _stacked(corpus, cache, train, DEFAULT_CUTOFFS)
        model, domain, cols = fold_model(x, y, sizes, names)
        for run in sorted(r for r, f in family.items() if f == fam):
            per_run[run] = run_gains(corpus / f"{run}.fpstore", model, domain, cols)
    means = np.array([np.mean(g) for g in per_run.values()])
    cells = np.concatenate([g for g in per_run.values()])
    low, high = bootstrap_interval(means)
    negative = [
        f for f in tuning if np.mean([np.mean(g) for r, g in per_run.items() if family[r] == f]) < 0
    ]
    return (
        f"{cells.mean():+.4f} [{low:+.4f}, {high:+.4f}] | {cells.min():+.3f} | "
        f"{int((cells < -0.01).sum())}/{cells.size} | {', '.join(negative) or '-'}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--cache", type=Path, required=True)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    args = parser.parse_args()
    print(
        "| columns | count | mean gain [90 % CI] | worst cell | cells < −0.01 | negative families |"
    )
    print("|---|---|---|---|---|---|")
    for name in args.variants.split(","):
        start = time.perf_counter()
        row = evaluate(args.corpus, args.cache, VARIANTS[name])
        seconds = time.perf_counter() - start
        print(f"| {name} ({seconds:.0f} s) | {len(VARIANTS[name])} | {row} |", flush=True)


if __name__ == "__main__":
    main()
