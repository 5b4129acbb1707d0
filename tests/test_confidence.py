"""The backtest-confidence timing rule: the confidence computation, the rule, its config."""

from __future__ import annotations

import numpy as np
import pytest

from forecastprune.core.layout import ChannelLayout
from forecastprune.engine.coupling import ChannelPlan
from forecastprune.engine.spec import PruneSpec
from forecastprune.errors import ConfigError
from forecastprune.pipeline.confidence import backtest_confidence
from forecastprune.pipeline.timing import auto_timing
from forecastprune.pipeline.train_config import TrainConfig

C = 40


def _plan() -> ChannelPlan:
    layout = ChannelLayout((("a", C),))  # one layer: the per-layer floor never binds
    return ChannelPlan(layout, "grouped", np.ones(C, dtype=bool))


def _settled(steps: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Every channel decays at its own rate from the same start: the ranking never changes."""
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.002, 0.05, C)
    t = np.arange(1, steps + 1, dtype=np.float64)
    return t, np.exp(-np.outer(t, rates))


def _reshuffling(steps: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Independent noise around one level: the bottom half is a fresh draw at every step."""
    rng = np.random.default_rng(seed)
    return np.arange(1, steps + 1, dtype=np.float64), 1.0 + 0.1 * rng.standard_normal((steps, C))


def test_confidence_is_high_when_the_ranking_has_settled() -> None:
    steps, gammas = _settled()
    conf = backtest_confidence("naive", steps, gammas, 80, _plan(), PruneSpec(ratio=0.5))
    assert conf is not None and len(conf.backtests) >= 2
    assert conf.value == pytest.approx(1.0)
    assert all(b.origin_step < b.target_step <= 60 for b in conf.backtests)


def test_confidence_is_low_when_the_ranking_reshuffles() -> None:
    steps, gammas = _reshuffling()
    conf = backtest_confidence("naive", steps, gammas, 80, _plan(), PruneSpec(ratio=0.5))
    assert conf is not None
    # a random half against another random half: IoU ≈ 1/3
    assert conf.value < 0.6
    assert conf.value == min(b.discounted for b in conf.backtests)


def test_a_short_backtest_is_discounted_to_the_real_horizon() -> None:
    steps, gammas = _reshuffling(seed=3)
    near = backtest_confidence("naive", steps, gammas, 61, _plan(), PruneSpec(ratio=0.5))
    far = backtest_confidence("naive", steps, gammas, 600, _plan(), PruneSpec(ratio=0.5))
    assert near is not None and far is not None
    # 540 steps ahead from 60 of history: a ratio of 9; origins are clamped to half the
    # history, so no backtest reaches it and each IoU counts for less
    assert far.horizon == pytest.approx(540 / 59)
    assert far.coverage < 0.2
    for b in far.backtests:
        assert b.discounted == pytest.approx(b.iou ** (far.horizon / b.horizon))
        assert b.discounted < b.iou
    assert near.coverage == 1.0
    assert all(b.discounted == b.iou for b in near.backtests)


def test_the_cut_is_scored_at_the_real_ratio() -> None:
    # channels 30-39 fall below every other at step 50, between the last backtest's origin
    # (45) and its target (60): the bottom quarter is then a different set of channels, the
    # bottom three quarters still holds 20 of the 30 predicted
    steps = np.arange(1, 61, dtype=np.float64)
    gammas = np.tile(np.linspace(1.0, 2.0, C), (60, 1))
    gammas[49:, 30:] = np.linspace(0.1, 0.2, 10)
    quarter = backtest_confidence("naive", steps, gammas, 80, _plan(), PruneSpec(ratio=0.25))
    most = backtest_confidence("naive", steps, gammas, 80, _plan(), PruneSpec(ratio=0.75))
    assert quarter is not None and most is not None
    assert (quarter.backtests[0].origin_step, quarter.backtests[0].target_step) == (45, 60)
    assert quarter.value == 0.0
    assert most.value == pytest.approx(20 / 40)


def test_too_short_a_history_gives_no_confidence() -> None:
    steps, gammas = _settled(steps=3)
    assert backtest_confidence("naive", steps, gammas, 80, _plan(), PruneSpec()) is None


class _Conf:
    def __init__(self, value: float) -> None:
        self.value = value

    def to_json(self) -> dict:
        return {"value": self.value}


def test_the_rule_fires_only_when_stable_and_confident() -> None:
    timing = auto_timing(1, window=1, tolerance=0.1, min_confidence=0.9)
    mask = np.zeros(20, dtype=bool)
    mask[:10] = True
    calls = []

    def confidence(value: float):
        def compute() -> _Conf:
            calls.append(value)
            return _Conf(value)

        return compute

    assert not timing.observe(1, mask, None, confidence(0.99))  # nothing to compare with yet
    assert calls == []  # not stable: the backtest is not even run
    assert not timing.observe(2, mask, None, confidence(0.5))  # stable, not confident
    assert timing.observe(3, mask, None, confidence(0.95))
    assert calls == [0.5, 0.95]
    assert timing.fired_by == "stability+confidence"
    assert [s for s, _ in timing.summary()["confidences"]] == [2, 3]


def test_the_rule_needs_a_confidence_and_a_sane_threshold() -> None:
    assert not auto_timing(1).needs_confidence  # the stability rule runs no backtest
    timing = auto_timing(1, window=1, min_confidence=0.9)
    assert timing.needs_confidence
    mask = np.zeros(4, dtype=bool)
    timing.observe(1, mask, None)
    with pytest.raises(ConfigError, match="backtested confidence"):
        timing.observe(2, mask, None)
    with pytest.raises(ConfigError, match="min_confidence"):
        auto_timing(1, min_confidence=1.5)


def test_the_deadline_still_fires_without_confidence() -> None:
    timing = auto_timing(1, window=1, min_confidence=0.9, deadline=3)
    mask = np.zeros(4, dtype=bool)
    assert not timing.observe(1, mask, None, lambda: None)
    assert not timing.observe(2, mask, None, lambda: None)
    assert timing.observe(3, mask, None, lambda: None)
    assert timing.fired_by == "deadline"


def test_config_turns_the_rule_on() -> None:
    config = TrainConfig(method="forecast", prune_at="confidence", auto_min_confidence=0.8)
    assert config.prune_point().rule == "confidence"
    assert config.method_spec().auto["min_confidence"] == 0.8
    assert TrainConfig(method="forecast", prune_at="auto").prune_point().rule == "stability"
    with pytest.raises(ConfigError, match="timing rule"):
        TrainConfig(prune_at="backtest")
    with pytest.raises(ConfigError, match="auto_min_confidence"):
        TrainConfig(auto_min_confidence=2.0)


@pytest.mark.slow
def test_a_run_prunes_at_the_first_check_its_backtest_allows() -> None:
    from forecastprune.pipeline.run import run_config

    # every mask counts as stable (tolerance 1) and any backtest as confident (threshold 0):
    # the rule must fire at the first check where a backtest could run at all
    config = TrainConfig(
        method="forecast",
        model="vgg",
        width=0.25,
        task="digits-hard",
        epochs=6,
        batch_size=64,
        forecaster="sma",
        prune_at="confidence",
        auto_min_confidence=0.0,
        auto_window=1,
        auto_tolerance=1.0,
        auto_min_fraction=0.0,
        auto_deadline=0.9,
        eval_every=6,
    )
    run = run_config(config, progress=False)
    timing = run.pruner["timing"]
    assert timing["kind"] == "confidence" and timing["min_confidence"] == 0.0
    confidences = timing["confidences"]
    assert run.pruner["fired_by"] == "stability+confidence"
    assert confidences[-1][0] == run.prune_step
    assert all(c is None for _, c in confidences[:-1])
    last = confidences[-1][1]
    assert 0.0 <= last["value"] <= 1.0 and last["backtests"]
    assert all(origin < target <= run.prune_step for origin, target, *_ in last["backtests"])


def test_a_timing_written_before_confidence_existed_still_works() -> None:
    import torch

    from forecastprune.pipeline import EarlyPruner
    from forecastprune.pipeline.timing import PruneTiming
    from forecastprune.zoo import build_model

    class OldTiming(PruneTiming):
        """observe() without the confidence argument, as third-party timings have it."""

        needs_masks = True

        def is_check(self, step: int) -> bool:
            return True

        def observe(self, step, pruned, ambiguous):
            return step >= 3

    torch.manual_seed(0)
    model = build_model("vgg", width=0.25)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    pruner = EarlyPruner(
        model,
        optimizer,
        forecaster="naive",
        prune_at=OldTiming(),
        total_steps=6,
        example_inputs=x[:2],
    )
    for step in range(1, 4):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        model, optimizer = pruner.step(step)
    assert pruner.pruned_at == 3
    pruner.close()
