"""The evidence table's statistics and rendering, on synthetic run records (no training)."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import evidence_report as er  # noqa: E402
import evidence_stats as es  # noqa: E402

SEEDS = (0, 1, 2, 3, 4)
TOTAL = 200


def record(
    variant: str,
    family: str,
    seed: int,
    accuracy: float,
    gmacs: float,
    step: int | None,
    ratio: float | None = 0.5,
    policy: str | None = "seed",
    fired_by: str | None = "fixed",
) -> dict:
    return {
        "task": "digits-hard",
        "variant": variant,
        "family": family,
        "seed": seed,
        "ratio": ratio,
        "policy": policy,
        "accuracy": accuracy,
        "params": 1000,
        "macs": 100_000,
        "prune_step": step,
        "total_steps": TOTAL,
        "train_macs": gmacs * 1e9,
        "wall_seconds": 1.0,
        "fired_by": fired_by,
        "timing": {},
    }


def synthetic() -> list[dict]:
    """Slimming at 80 % ± seed noise; a forecast row 0.1 points better on every seed at half the
    compute; one 3 points worse; Early-Bird late; normal dense."""
    runs = []
    for s in SEEDS:
        base = 0.80 + 0.01 * s  # the seed moves every variant alike: pairing removes it
        runs += [
            record("normal", "normal", s, base + 0.05, 10.0, None, None, None, None),
            record("slimming", "slimming", s, base, 8.0, 150),
            record("early-bird", "early-bird", s, base, 7.0, 120 + s, fired_by="stability"),
            record("forecast good @0.1", "forecast", s, base + 0.001 + 0.0002 * s, 4.0, 20),
            record("forecast bad @0.1", "forecast", s, base - 0.03, 4.0, 20),
            record(
                "forecast auto @confidence",
                "forecast-auto",
                s,
                base,
                5.0,
                60 + s,
                fired_by="stability+confidence" if s else "deadline",
            ),
        ]
    return runs


def rows_of(runs: list[dict]) -> dict[str, dict[int, dict]]:
    names = {r["variant"] for r in runs}
    return {n: es.runs_of(runs, "digits-hard", 0.5, "seed", n) for n in names}


def test_t_interval_matches_the_textbook() -> None:
    ci = es.t_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert ci.mean == 3.0 and ci.n == 5
    assert ci.half == pytest.approx(2.7764451 * math.sqrt(2.5) / math.sqrt(5))
    assert es.t_interval([7.0]).half == 0.0


def test_one_sided_p_values() -> None:
    # five equal positive differences: no spread, so the exact sign-flip test: 1 of 32
    assert es.greater_p([0.3] * 5) == pytest.approx(1 / 32)
    assert es.sign_flip_p([1.0, -1.0]) == pytest.approx(0.75)
    assert es.greater_p([1.0, 1.2, 0.9, 1.1, 1.0]) < 0.001
    assert es.greater_p([-1.0, -1.2, -0.9, -1.1, -1.0]) > 0.999


def test_paired_tests_see_through_the_seed_spread() -> None:
    rows = rows_of(synthetic())
    test = es.paired(rows["forecast good @0.1"], rows["slimming"])
    assert test.seeds == SEEDS
    assert test.accuracy_gap.mean == pytest.approx(0.14)  # points
    # the seed spread is 4 points, the paired differences vary by 0.08
    assert test.noninferior_p < 0.001
    assert test.compute_ratio == pytest.approx(0.5)
    assert es.claim_one(test) == "holds"
    assert es.claim_one(es.paired(rows["forecast bad @0.1"], rows["slimming"])) == "fails"
    # within the margin on the means, but the compute is over the limit
    assert es.claim_one(es.paired(rows["early-bird"], rows["slimming"])) == "fails"


def test_noise_leaves_a_claim_not_shown() -> None:
    runs = synthetic()
    for r in runs:
        if r["variant"] == "forecast good @0.1":
            r["accuracy"] += (-0.02, 0.02, -0.015, 0.015, 0.0)[r["seed"]]
    rows = rows_of(runs)
    test = es.paired(rows["forecast good @0.1"], rows["slimming"])
    assert abs(test.accuracy_gap.mean) < 0.5 < test.accuracy_gap.half
    assert es.claim_one(test) == "not shown"


def test_earlier_than_early_bird() -> None:
    rows = rows_of(synthetic())
    test = es.paired(rows["forecast good @0.1"], rows["early-bird"])
    assert test.step_gap.mean == pytest.approx(-(100 + 2) / TOTAL)
    assert test.earlier_p < 0.001
    assert es.claim_two(test) == "holds"
    assert es.claim_two(es.paired(rows["forecast bad @0.1"], rows["early-bird"])) == "fails"
    late = es.paired(rows["early-bird"], rows["forecast auto @confidence"])
    assert es.claim_two(late) == "fails"


def test_a_run_that_never_pruned_counts_as_pruned_at_the_end() -> None:
    runs = synthetic()
    for r in runs:
        if r["variant"] == "early-bird":
            r["prune_step"] = None
    rows = rows_of(runs)
    test = es.paired(rows["forecast good @0.1"], rows["early-bird"])
    assert test.step_gap.mean == pytest.approx((20 - TOTAL) / TOTAL)


def test_cheapest_within_the_margin_of_slimming() -> None:
    runs = synthetic()
    order = er.variant_order({"results": runs})
    assert order[0] == ("normal", "normal") and order[1] == ("slimming", "slimming")
    rows = es.aggregate(runs, "digits-hard", 0.5, "seed", order)
    best, test = es.cheapest_within(rows)
    assert best.variant == "forecast good @0.1"  # "bad" is as cheap but 3 points worse
    assert test.noninferior_p < 0.05
    # the normal (dense) row never counts, even when it would be cheapest
    for r in runs:
        if r["variant"] == "normal":
            r["train_macs"] = 1.0
    rows = es.aggregate(runs, "digits-hard", 0.5, "seed", order)
    assert es.cheapest_within(rows)[0].variant == "forecast good @0.1"


def test_pareto_front() -> None:
    points = [(1.0, 70.0), (2.0, 80.0), (2.5, 75.0), (3.0, 90.0), (3.0, 85.0), (4.0, 88.0)]
    assert er.pareto(points) == [(1.0, 70.0), (2.0, 80.0), (3.0, 90.0)]


def test_report_renders_tables_claims_and_plots(tmp_path: Path) -> None:
    meta = {
        "seeds": list(SEEDS),
        "jobs": 2,
        "quick": False,
        "seconds": 600.0,
        "grids": [
            {
                "task": "digits-hard",
                "epochs": 20,
                "batch_size": 32,
                "ratios": [0.5],
                "policies": ["seed"],
            }
        ],
        "forecasters": ["good", "bad"],
        "cutoffs": ["0.1"],
        "results": synthetic(),
    }
    out = tmp_path / "results.md"
    er.write_report(meta, out)
    text = out.read_text(encoding="utf-8")
    assert "30 training runs in 10.0 min" in text
    # normal, slimming 2× (not run here), slimming, then the cheapest within the margin
    assert (
        "| digits-hard | 0.5 | seed | 87.00 ± 1.96 | — | 82.00 ± 1.96 | "
        "**forecast good @0.1** | 82.14 ± "
    ) in text
    assert "most accurate pruned method is **forecast good @0.1** in 1 of 1" in text
    assert "| forecast good @0.1 | **holds**: +0.14 pts (p 0.000), 50 % compute |" in text
    assert "| forecast bad @0.1 | **fails**: -3.00 pts" in text
    assert "**holds**: +0.14 pts (p 0.000), 51 % of the run earlier (p 0.000) |" in text
    assert "| confidence | deadline 1, stability+confidence 4 | 31 ± " in text
    assert (
        "**Claim 1 (within 0.5 points of slimming at ≤ 60 % of its compute)** holds, with "
        "significance, in 1 of 3 (forecast variant, task, ratio, policy) cells: forecast "
        "good @0.1 (digits-hard 0.5 seed)"
    ) in text
    assert "The **confidence** rule fired by its own test in 4 of 5 runs" in text
    for kind in ("compute", "prune"):
        png = tmp_path / f"results-digits-hard-{kind}.png"
        assert png.read_bytes()[:4] == b"\x89PNG"
        assert f"]({png.name})" in text


def test_every_table_variant_is_a_valid_train_config():
    """The digits grid's overrides must stay in step with TrainConfig's keys: a renamed key
    (``auto_rule`` became ``prune_at: confidence``) would fail the whole grid at its first run."""
    import early_prune_table as ept

    from forecastprune.pipeline.train_config import TrainConfig

    for variant in ept.variants(epochs=20):
        config = TrainConfig.load(ept.CONFIGS / f"{variant.config}.yaml")
        config = config.replace(**variant.overrides, ratio=0.5, policy="grouped")
        assert config.ratio == 0.5, variant.name
    timed = {v.name: v.overrides["prune_at"] for v in ept.variants(epochs=20) if "@s" in v.name}
    assert timed == {"forecast auto @stability": "stability"}
