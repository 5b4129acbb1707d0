"""Screen variants of ``learned_gbr``'s model in a minute each, before a full nested refit.

Six folds of the tuning families (each family wholly in one fold), on the ranking examples
``benchmarks/family_out.py --refit`` caches (``CACHE/examples``): every variant is fitted on
five folds with per-run weighting and scored on the sixth. A cell's score is the IoU of the
lowest-ratio share of channels by predicted final percentile with the finished run's, minus
naive's (the current percentile), at cutoffs 10/20 % and ratios 0.5/0.7. This is a screen:
it skips the engine's thresholds and the domain check, and six folds are not the 33 nested
ones; a variant worth shipping is then refitted and judged as docs/corpus.md describes.

Usage::

    python benchmarks/gbr_variants.py --corpus DIR --cache DIR [--variants base mono ...]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from auto_gate import FLOOR, RATIOS, _manifest, corpus_parser

from forecastprune.core import metrics
from forecastprune.forecasters.boosted import DEFAULT_PARAMS
from forecastprune.forecasters.features import FEATURES, RANKING_FEATURES
from forecastprune.forecasters.training import DEFAULT_CUTOFFS, example_weights

FOLDS = 6
#: rows of each run's cached examples scored: cutoffs 10 % and 20 % (DEFAULT_CUTOFFS order)
SCORED = (DEFAULT_CUTOFFS.index(0.1), DEFAULT_CUTOFFS.index(0.2))
NOW = FEATURES.index("percentile")
_MONOTONE = [1 if name in ("level_z", "percentile") else 0 for name in RANKING_FEATURES]
_REGULARISED = {"min_samples_leaf": 200, "l2_regularization": 1.0}
#: name -> (HistGradientBoostingRegressor settings over DEFAULT_PARAMS, share of each
#: predicted percentile move kept)
VARIANTS: dict[str, tuple[dict[str, Any], float]] = {
    "base": ({}, 1.0),
    "mono": ({"monotonic_cst": _MONOTONE}, 1.0),
    "regularised": (_REGULARISED, 1.0),
    "mono+regularised": ({"monotonic_cst": _MONOTONE, **_REGULARISED}, 1.0),
    "half-move": ({}, 0.5),
}


def folds(family: dict[str, str], held: set[str]) -> dict[str, int]:
    """Each tuning run's fold: families dealt round-robin in a seeded shuffle."""
    families = sorted({f for f in family.values() if f not in held})
    np.random.default_rng(0).shuffle(families)
    fold_of = {f: i % FOLDS for i, f in enumerate(families)}
    return {run: fold_of[f] for run, f in family.items() if f not in held}


def cut_iou(score: np.ndarray, final: np.ndarray, ratio: float) -> float:
    """IoU of the ``ratio`` share of channels lowest by ``score`` with the lowest by ``final``."""
    k = int(round(ratio * len(final)))
    return metrics.iou(_lowest(score, k), _lowest(final, k))


def _lowest(values: np.ndarray, k: int) -> np.ndarray:
    mask = np.zeros(len(values), dtype=bool)
    mask[np.argsort(values, kind="stable")[:k]] = True
    return mask


def screen(
    examples: dict[str, tuple[np.ndarray, np.ndarray]],
    fold_of: dict[str, int],
    params: dict[str, Any],
    keep: float,
) -> np.ndarray:
    """Every scored cell's gain over naive for one variant."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    gains = []
    for fold in range(FOLDS):
        train = [run for run, f in fold_of.items() if f != fold]
        x = np.vstack([examples[run][0] for run in train])
        y = np.concatenate([examples[run][1] for run in train])
        weights = example_weights("run", [len(examples[run][1]) for run in train], len(y))
        model = HistGradientBoostingRegressor(**{**DEFAULT_PARAMS, **params})
        model.fit(x, y, sample_weight=weights)
        for run in (r for r, f in fold_of.items() if f == fold):
            gx, gy = examples[run]
            rows = len(gy) // len(DEFAULT_CUTOFFS)
            for c in SCORED:
                x_c, final = gx[c * rows : (c + 1) * rows], gy[c * rows : (c + 1) * rows]
                now = x_c[:, NOW]
                score = now + keep * (model.predict(x_c) - now)
                gains += [cut_iou(score, final, q) - cut_iou(now, final, q) for q in RATIOS]
    return np.array(gains)


def main() -> None:
    parser = corpus_parser(__doc__)
    parser.add_argument("--variants", nargs="+", choices=sorted(VARIANTS), default=list(VARIANTS))
    args = parser.parse_args()
    family, held = _manifest(args.corpus)
    fold_of = folds(family, held)
    examples = {}
    for run in fold_of:
        with np.load(Path(args.cache) / "examples" / f"{run}.npz") as data:
            examples[run] = (data["gx"], data["gy"])
    print("| variant | mean gain over naive | worst cell | cells < −0.01 |")
    print("|---|---|---|---|")
    for name in args.variants:
        gains = screen(examples, fold_of, *VARIANTS[name])
        print(
            f"| {name} | {gains.mean():+.4f} | {gains.min():+.3f} "
            f"| {int(np.sum(gains < FLOOR))}/{gains.size} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
