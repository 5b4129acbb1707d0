"""Can the run-level signals, learned across families, tell which runs a forecast may touch?

A gradient-boosted regression reads the gates' five run-level signals (backtest gain, both
stabilities, horizon, log channel count) of a (run, cutoff) and predicts the worst cell (over
ratios 0.5 and 0.7) of ungated ``learned_gbr``, fitted family-out on the tuning families of
``benchmarks/auto_gate.py``'s fold forecasts (``--dump`` first). Printed: how well its
family-out prediction ranks the actual worst cells (Spearman's ρ), how many cells below naive
− 0.01 remain among the rows it is most sure of, and — nested, as ``auto``'s gate is fitted —
the best opening threshold that keeps every training cell ≥ −0.01 per fold, if any
(docs/corpus.md).

Usage::

    python benchmarks/learned_chooser.py --corpus DIR --cache DIR
"""

from __future__ import annotations

import numpy as np
from auto_gate import FLOOR, RATIOS, SCORED, cells, corpus_parser
from scipy.stats import spearmanr
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

SIGNALS = ("backtest_gain", "stability", "stability_recent", "horizon", "channels")


def _regression(x: np.ndarray, y: np.ndarray) -> HistGradientBoostingRegressor:
    model = HistGradientBoostingRegressor(
        max_iter=100, max_leaf_nodes=7, learning_rate=0.05, min_samples_leaf=20, random_state=0
    )
    with threadpool_limits(1):
        return model.fit(x, y)


def family_out(x: np.ndarray, y: np.ndarray, fam: np.ndarray, fams: list[str]) -> np.ndarray:
    """Each family's rows predicted by a model fitted on the other families in ``fams``."""
    out = np.full(len(y), np.nan)
    for f in fams:
        train = np.isin(fam, fams) & (fam != f)
        out[fam == f] = _regression(x[train], y[train]).predict(x[fam == f])
    return out


def nested_thresholds(
    x: np.ndarray,
    y: np.ndarray,
    gains: np.ndarray,
    fam: np.ndarray,
    scored: np.ndarray,
    tuning: list[str],
) -> int:
    """Folds (of the tuning families) where some threshold on the inner family-out
    prediction opens with a gain and keeps every training cell ≥ the floor."""
    found = 0
    for f in tuning:
        train_fams = [g for g in tuning if g != f]
        inner = family_out(x, y, fam, train_fams)
        rows = np.isin(fam, train_fams) & scored
        for t in np.unique(np.quantile(inner[rows], np.linspace(0, 1, 41))):
            g = gains[rows] * (inner[rows] > t)[:, None]
            if g.min() >= FLOOR and g.mean() > 0:
                found += 1
                break
    return found


def main() -> None:
    args = corpus_parser(__doc__).parse_args()
    table = cells(args.corpus, args.cache)
    keys = [k for k in sorted(table) if not table[k]["held"]]
    x = np.array([[table[k]["signals"][s] for s in SIGNALS] for k in keys])
    x[:, -1] = np.log10(x[:, -1])
    gains = np.array([[table[k]["gbr"][q] for q in RATIOS] for k in keys])
    worst = gains.min(axis=1)
    fam = np.array([table[k]["family"] for k in keys])
    scored = np.isin([float(k.split("|")[1]) for k in keys], SCORED)
    tuning = sorted(set(fam))
    predicted = family_out(x, worst, fam, tuning)[scored]
    bad = worst[scored] < FLOOR
    order = np.argsort(-predicted)
    print(f"rows (run, cutoff 10/20 %): {scored.sum()}, with a cell below the floor: {bad.sum()}")
    print(
        f"family-out Spearman ρ, predicted vs actual worst cell: "
        f"{spearmanr(predicted, worst[scored])[0]:.2f}"
    )
    for share in (0.1, 0.25, 0.5):
        top = order[: int(share * len(order))]
        print(f"among the {share:.0%} rows it is surest of: {bad[top].sum()} with a bad cell")
    found = nested_thresholds(x, worst, gains, fam, scored, tuning)
    print(f"nested folds with a threshold that gains and keeps the floor: {found}/{len(tuning)}")


if __name__ == "__main__":
    main()
