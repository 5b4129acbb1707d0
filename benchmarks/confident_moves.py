"""Keep naive's |γ| wherever ``learned_gbr`` moves a channel by less than k volatilities.

An alternative to the gates' shrink, judged on ``benchmarks/auto_gate.py``'s fold forecasts
(``--dump`` first): per k, the mean gain over naive and the cells below naive − 0.01 on the
tuning families (each forecast by the models fitted without its family) and on the held-out
families, cutoffs 10/20 %, ratios 0.5/0.7, scored as ``compare`` scores them (docs/corpus.md).

Usage::

    python benchmarks/confident_moves.py --corpus DIR --cache DIR
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from auto_gate import FLOOR, INTERVAL_FLOOR, RATIOS, SCORED, _manifest, corpus_parser, scorer

from forecastprune.store import GammaTrajectoryStore

KS = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0)


def confident(naive: np.ndarray, forecast: np.ndarray, vol: np.ndarray, k: float) -> np.ndarray:
    """The forecast where it moves a channel by more than ``k`` volatilities, naive elsewhere."""
    return np.where(np.abs(forecast - naive) > k * vol, forecast, naive)


def gains(corpus: Path, cache: Path) -> dict[tuple[bool, float], list[float]]:
    """(held out?, k) -> every cell's gain over naive."""
    family, held = _manifest(corpus)
    out: dict[tuple[bool, float], list[float]] = {}
    for run in sorted(family):
        data = dict(np.load(cache / "gate" / f"{run}.npz"))
        with GammaTrajectoryStore.open(corpus / f"{run}.fpstore") as store:
            score = scorer(store.layout, data["final"])
        for cutoff in SCORED:
            naive, forecast = data[f"naive|{cutoff}"], data[f"gbr|{cutoff}"]
            vol = data[f"rawvol|{cutoff}"] + INTERVAL_FLOOR * data[f"scale|{cutoff}"]
            base = [score(naive, q) for q in RATIOS]
            for k in KS:
                pred = confident(naive, forecast, vol, k)
                cells = out.setdefault((family[run] in held, k), [])
                cells += [score(pred, q) - b for q, b in zip(RATIOS, base)]
    return out


def main() -> None:
    args = corpus_parser(__doc__).parse_args()
    table = gains(args.corpus, args.cache)
    print("| k | tuning: mean gain · cells < −0.01 | held out: mean gain · cells < −0.01 |")
    print("|---|---|---|")
    for k in KS:
        parts = [np.array(table[(held, k)]) for held in (False, True)]
        print(
            f"| {k:g} | "
            + " | ".join(f"{g.mean():+.4f} · {int(np.sum(g < FLOOR))}/{g.size}" for g in parts)
            + " |"
        )


if __name__ == "__main__":
    main()
