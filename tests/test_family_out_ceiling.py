"""benchmarks/family_out.py's ceiling: what a perfect per-run choice among forecasters gains."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from family_out import _ceiling  # noqa: E402


def cells_of(gains: dict[str, tuple[float, float, float, float]]) -> dict:
    """One run's cached cells: per forecaster, its gains at (10 %, 0.5), (10 %, 0.7), (20 %,
    0.5), (20 %, 0.7)."""
    keys = ("10%|0.5", "10%|0.7", "20%|0.5", "20%|0.7")
    return {
        f"{name}|{key}": {"gain": gain, "score": 0.5 + gain, "spearman": 0.9}
        for name, values in gains.items()
        for key, gain in zip(keys, values)
    }


def test_the_ceiling_takes_each_runs_best_candidate_or_naive():
    cells = {
        # a gains most on average but drops one cell below −0.01; b is safe
        "r1": cells_of({"a": (0.10, 0.10, 0.10, -0.02), "b": (0.02, 0.02, 0.02, 0.02)}),
        # both lose: naive (0) is the best choice
        "r2": cells_of({"a": (-0.05, 0.0, 0.0, 0.0), "b": (-0.01, -0.01, 0.0, 0.0)}),
        "r3": cells_of({"a": (0.04, 0.04, 0.04, 0.04), "b": (0.0, 0.0, 0.0, 0.0)}),
    }
    family = {"r1": "f1", "r2": "f2", "r3": "held"}
    lines = _ceiling(cells, family, {"held"}, ("a", "b"))
    tuning = next(line for line in lines if line.startswith("| tuning"))
    held = next(line for line in lines if line.startswith("| held-out"))
    # tuning: r1 takes a's 0.07 (b's 0.02 with the floor), r2 takes naive's 0
    assert tuning == "| tuning families | 2 | +0.0350 | +0.0100 |"
    assert held == "| held-out families | 1 | +0.0400 | +0.0400 |"
