"""Leave-one-run-out scores of ``learned`` (and of ``auto``, which backtests it) and of
``learned_gbr`` on the suite's tuning runs.

The bundled ``learned`` model is fitted on the suite's tuning runs, so ``forecastprune
benchmark`` scores it in-sample there (only the held-out runs are honest). This script refits it
once per tuning run on the *other* tuning runs and replays that run with the refitted models —
the same replay, threshold and metric as ``benchmark`` — then prints the per-cutoff mean gain
over naive with bootstrap intervals.

Usage: ``python benchmarks/learned_loo.py`` (about three minutes on one core: the boosted
model takes ~12 s to fit).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from forecastprune.compare.leaderboard import format_suite
from forecastprune.compare.settings import ReplaySettings
from forecastprune.compare.suite import SuiteResult, load_suite, run_suite
from forecastprune.engine.spec import PruneSpec
from forecastprune.forecasters.training import fit_learned, fit_learned_gbr

CUTOFFS = ("0.05", "0.1", "0.2", "0.3")
NAMES = ("learned", "auto", "learned_gbr")


def main() -> None:
    runs = load_suite()
    tuning = [r for r in runs if not r.held_out]
    # policy none, as docs/suite.md's figures
    settings = ReplaySettings(cutoffs=CUTOFFS, spec=PruneSpec(ratio=0.5, policy="none"))
    merged: SuiteResult | None = None
    with tempfile.TemporaryDirectory() as work:
        for run in tuning:
            others = [r.path for r in tuning if r is not run]
            path = fit_learned(others).save(Path(work) / f"{run.name}.json")
            boosted = Path(work) / f"{run.name}.skops"
            fit_learned_gbr(others).save(boosted)
            specs = [
                f"learned(model='{path}')",
                f"auto(model='{path}')",
                f"learned_gbr(model='{boosted}')",
            ]
            result = run_suite([run], specs, settings)
            if merged is None:
                merged = SuiteResult(
                    tuning,
                    [f"{name} (leave-one-run-out)" for name in NAMES],
                    result.cutoffs,
                    result.ratio,
                )
            for name, label in zip(NAMES, result.forecasters):
                gains = merged.gains.setdefault(f"{name} (leave-one-run-out)", {})
                for cutoff in result.cutoffs:
                    gains.setdefault(cutoff, {})[run.name] = result.gains[label][cutoff][run.name]
                    merged.naive.setdefault(cutoff, {})[run.name] = result.naive[cutoff][run.name]
                print(
                    run.name,
                    name,
                    {c: round(result.gains[label][c][run.name], 3) for c in result.cutoffs},
                    flush=True,
                )
    assert merged is not None
    print(format_suite(merged))
    for label in merged.forecasters:
        print(
            label,
            "mean over cutoffs:",
            round(float(np.mean([merged.summary(label, c).mean for c in merged.cutoffs])), 4),
        )


if __name__ == "__main__":
    main()
