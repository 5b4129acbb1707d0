"""benchmarks/auto_gate.py's gate fit: a threshold where one keeps the floor, a closed gate
where none does; and its scorer, which scores a forecast as ``compare`` does."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from auto_gate import RATIOS, SHRINKS, CellJudge, fit_gate, scorer  # noqa: E402
from confident_moves import confident  # noqa: E402
from floor_noise import one_swap  # noqa: E402
from gbr_variants import cut_iou, folds  # noqa: E402
from learned_chooser import family_out  # noqa: E402

from forecastprune.compare.suite import bundled_suite  # noqa: E402
from forecastprune.store import GammaTrajectoryStore  # noqa: E402

BACKTEST = (("backtest_gain", True),)


def row(family: str, signal: float, gain: float, channels: float = 272.0) -> dict:
    """One (run, cutoff) row: the same gain at every ratio and shrink."""
    gains = {("gbr" if s == 0 else f"gbr~{s}"): dict.fromkeys(RATIOS, gain) for s in SHRINKS}
    return {"family": family, "signals": {"backtest_gain": signal, "channels": channels}, **gains}


def test_the_gate_opens_above_the_rows_that_would_break_the_floor():
    # high backtest gain goes with a real gain; the lowest signals lose 0.05
    rows = [row("a", 0.10, 0.03), row("b", 0.08, 0.02), row("c", 0.01, -0.05)]
    gate = fit_gate(rows, "gbr", BACKTEST, "cell")
    assert not gate.closed
    assert gate.opens(0.08) and not gate.opens(0.01)


def test_a_gate_no_threshold_can_keep_the_floor_is_closed():
    # the loss sits with the highest signal: every opening that gains takes it in
    rows = [row("a", 0.10, -0.05), row("b", 0.08, 0.02), row("c", 0.01, 0.01)]
    gate = fit_gate(rows, "gbr", BACKTEST, "cell")
    assert gate.closed and not gate.opens(1.0)
    # judged per family instead, the loss is allowed where it leaves no family negative
    mild = [row("a", 0.10, 0.03), row("a", 0.09, -0.02), row("b", 0.01, -0.05)]
    assert not fit_gate(mild, "gbr", BACKTEST, "family").closed


def test_the_fit_keeps_the_signal_that_separates_the_rows():
    # the backtest says nothing (the losing row has the highest gain), the run size does
    rows = [row("a", 0.10, -0.05, 272), row("b", 0.05, 0.02, 5200), row("c", 0.01, 0.03, 13376)]
    assert fit_gate(rows, "gbr", BACKTEST, "cell").closed
    gate = fit_gate(rows, "gbr", (*BACKTEST, ("channels", True)), "cell")
    assert gate.signal == "channels" and gate.opens(5200) and not gate.opens(272)


def test_the_scorer_gives_the_final_ranking_full_marks_and_a_reversed_one_none():
    with GammaTrajectoryStore.open(bundled_suite() / "vgg-s3e-3-step.fpstore") as store:
        final = np.abs(np.asarray(store.view()[-1], dtype=np.float64))
        score = scorer(store.layout, final)
    for ratio in RATIOS:
        assert score(final, ratio) == 1.0
        assert score(final.max() + final.min() - final, ratio) < 0.5


def test_one_swap_prunes_one_wrong_channel_for_one_right_one():
    with GammaTrajectoryStore.open(bundled_suite() / "vgg-s3e-3-step.fpstore") as store:
        history = np.abs(np.asarray(store.view(), dtype=np.float64))
        judge = CellJudge(store.layout, history[-1])
    naive = history[len(history) // 10]
    for ratio in RATIOS:
        cut = judge.cut(naive, ratio)
        swapped = one_swap(judge, cut, ratio)
        assert swapped.sum() == cut.sum() and np.sum(swapped != cut) == 2
        assert judge.correct(swapped, ratio) == judge.correct(cut, ratio) - 1
        assert judge.iou(swapped, ratio) < judge.iou(cut, ratio)
        # the finished run's own cut is all correct
        assert (
            judge.correct(judge.cut(history[-1], ratio), ratio)
            == judge.cut(history[-1], ratio).sum()
        )


def test_confident_moves_keep_naive_wherever_the_move_is_within_k_volatilities():
    naive, forecast = np.array([1.0, 2.0, 3.0]), np.array([1.05, 3.0, 2.0])
    vol = np.array([0.1, 0.1, 2.0])
    np.testing.assert_array_equal(confident(naive, forecast, vol, 0.0), forecast)
    # only the middle channel moves by more than its volatility
    np.testing.assert_array_equal(confident(naive, forecast, vol, 1.0), [1.0, 3.0, 3.0])
    np.testing.assert_array_equal(confident(naive, forecast, vol, 100.0), naive)


def test_the_learned_chooser_predicts_each_family_from_the_others_only():
    # the target is 1 on family a alone; a fit that saw a's rows would predict about 1 there
    rng = np.random.default_rng(0)
    fam = np.repeat(np.array(["a", "b", "c"]), 40)
    x = rng.normal(size=(120, 5))
    y = (fam == "a").astype(float)
    predicted = family_out(x, y, fam, ["a", "b", "c"])
    assert np.all(np.abs(predicted[fam == "a"]) < 1e-9)
    assert np.all(predicted[fam == "b"] > 0.0)  # b's model saw a's ones


def test_the_variant_screen_keeps_each_family_in_one_fold_and_held_out_families_out():
    family = {f"r{i}": f"fam{i % 9}" for i in range(36)} | {"h0": "held", "h1": "held"}
    fold_of = folds(family, {"held"})
    assert "h0" not in fold_of and "h1" not in fold_of
    for name in {f"fam{i}" for i in range(9)}:
        assert len({fold_of[run] for run, f in family.items() if f == name}) == 1
    assert len(set(fold_of.values())) == 6


def test_the_screen_scores_the_final_order_one_and_a_disjoint_cut_zero():
    final = np.arange(10.0)
    assert cut_iou(final, final, 0.5) == 1.0
    assert cut_iou(-final, final, 0.5) == 0.0
    # one of five pruned channels wrong: 4 shared of 6 distinct
    assert cut_iou(np.array([0, 1, 2, 3, 5, 4, 6, 7, 8, 9.0]), final, 0.5) == 4 / 6
