"""Latency measurement: frozen TorchScript models, mode flags restored, contiguous cut weights."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from forecastprune.engine.coupling import plan_channels
from forecastprune.engine.spec import PruneSpec
from forecastprune.engine.stats import measure_latencies
from forecastprune.engine.surgery import prune_model
from forecastprune.engine.threshold import select_channels
from forecastprune.errors import PruningError
from forecastprune.zoo import build_model

X = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(3))


def _half_pruned(name: str, round_to: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    model = build_model(name, width=0.5).eval()
    plan = plan_channels(model, X, policy="grouped")
    scores = np.random.default_rng(0).random(plan.layout.total)
    decision = select_channels(scores, plan, PruneSpec(ratio=0.5, round_to=round_to))
    return model, prune_model(model, decision, X, plan)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # TorchScript's notice
def test_frozen_torchscript_and_eager_models_time_together_and_flags_are_restored():
    model, pruned = _half_pruned("vgg", 1)
    pruned.train()
    with torch.no_grad():
        frozen = torch.jit.freeze(torch.jit.trace(model, X))
    latencies = measure_latencies([pruned, frozen], X, repeats=1, warmup=0)
    assert len(latencies) == 2 and all(t > 0 for t in latencies)
    assert all(m.training for m in pruned.modules())  # eval only while timing


def test_surgery_leaves_every_weight_contiguous_and_adds_no_parameter():
    # a strided view would make every conv copy its weight on each call
    for name in ("resnet", "darknet"):
        model, pruned = _half_pruned(name, 8)
        assert all(p.is_contiguous() for p in pruned.parameters())
        assert all(b.is_contiguous() for b in pruned.buffers())
        assert set(dict(pruned.named_parameters())) == set(dict(model.named_parameters()))


class _Scripted(torch.nn.Module):
    """Takes a scripted time per call: one fast pass among slow ones, as under machine load."""

    def __init__(self) -> None:
        super().__init__()
        self.delays = [0.02, 0.0, 0.02, 0.02, 0.02]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.delays.pop(0))
        return x


def test_min_statistic_takes_the_fastest_pass_and_unknown_ones_are_refused():
    assert measure_latencies([_Scripted()], X, repeats=5, warmup=0, statistic="min")[0] < 0.01
    assert measure_latencies([_Scripted()], X, repeats=5, warmup=0)[0] >= 0.02
    with pytest.raises(PruningError, match=r"statistic must be one of \['median', 'min'\]"):
        measure_latencies([_Scripted()], X, statistic="mean")
