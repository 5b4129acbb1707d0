"""Saving and loading pruned models: round trips, composed cuts, no pickles, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _models import randomize_bn

from forecastprune.engine.coupling import plan_channels
from forecastprune.engine.persist import FORMAT_TAG, load_pruned, save_pruned
from forecastprune.engine.spec import PruneSpec
from forecastprune.engine.stats import compare_stats, count_macs, measure_latencies, model_stats
from forecastprune.engine.surgery import prune_model, surgery_record
from forecastprune.engine.threshold import select_channels
from forecastprune.errors import LayoutError, PruningError
from forecastprune.zoo import build_model

X8 = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(5))


def _pruned(name: str, policy: str, ratio: float = 0.5, **kwargs):
    model = randomize_bn(build_model(name, **kwargs), 1).eval()
    plan = plan_channels(model, X8, policy=policy)
    scores = np.random.default_rng(1).random(plan.layout.total)
    decision = select_channels(scores, plan, PruneSpec(ratio=ratio))
    return model, prune_model(model, decision, X8, plan)


@pytest.mark.parametrize(
    ("name", "policy"), [("vgg", "seed"), ("resnet", "grouped"), ("darknet", "grouped")]
)
def test_round_trip_gives_identical_outputs(tmp_path, name, policy):
    _, pruned = _pruned(name, policy, width=0.5)
    path = save_pruned(pruned, tmp_path / "m.pt", builder=name, kwargs={"width": 0.5})
    loaded = load_pruned(path).eval()
    with torch.no_grad():
        assert torch.equal(loaded(X8), pruned(X8))
    assert {k: v.shape for k, v in loaded.state_dict().items()} == {
        k: v.shape for k, v in pruned.state_dict().items()
    }
    # the file is plain containers: readable without unpickling any class
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == FORMAT_TAG and isinstance(raw["plan"], str)


def test_repeated_cuts_compose_into_one_replayable_plan(tmp_path):
    _, once = _pruned("darknet", "seed", ratio=0.3)
    plan = plan_channels(once, X8, policy="seed")
    decision = select_channels(
        np.random.default_rng(2).random(plan.layout.total), plan, PruneSpec(ratio=0.3)
    )
    twice = prune_model(once, decision, X8, plan)
    record = surgery_record(twice)
    assert record.sizes["head.bn"] == 32 and len(record.keep["head.bn"]) < 32
    loaded = load_pruned(save_pruned(twice, tmp_path / "m.pt", builder="darknet")).eval()
    with torch.no_grad():
        assert torch.equal(loaded(X8), twice.eval()(X8))


def test_save_refuses_overwrite_and_incomplete_plans(tmp_path):
    model, pruned = _pruned("vgg", "seed")
    path = save_pruned(pruned, tmp_path / "m.pt", builder="vgg")
    before = path.read_bytes()
    with pytest.raises(PruningError, match="exists; pass overwrite=True"):
        save_pruned(pruned, path, builder="vgg")
    assert path.read_bytes() == before
    save_pruned(pruned, path, builder="vgg", overwrite=True)
    with pytest.raises(PruningError, match="no surgery record"):
        save_pruned(model, tmp_path / "plain.pt", builder="vgg")
    with pytest.raises(PruningError, match="JSON-able"):
        save_pruned(pruned, tmp_path / "bad.pt", builder="vgg", kwargs={"width": object()})
    assert not (tmp_path / "bad.pt").exists()


def test_load_rejects_foreign_pickled_and_mismatched_files(tmp_path):
    with pytest.raises(PruningError, match="does not exist"):
        load_pruned(tmp_path / "missing.pt")
    plain = tmp_path / "state.pt"
    torch.save(build_model("vgg").state_dict(), plain)
    with pytest.raises(PruningError, match="not a forecastprune pruned-model file"):
        load_pruned(plain)
    pickled = tmp_path / "pickled.pt"
    torch.save({"format": FORMAT_TAG, "model": build_model("vgg")}, pickled)
    with pytest.raises(PruningError, match=r"cannot read .*weights_only=True"):
        load_pruned(pickled)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a torch file")
    with pytest.raises(PruningError, match="cannot read"):
        load_pruned(garbage)
    _, pruned = _pruned("vgg", "seed")
    path = save_pruned(pruned, tmp_path / "m.pt", builder="resnet")
    with pytest.raises(LayoutError, match=r"'features.conv1.bn' .* not an affine BatchNorm"):
        load_pruned(path)  # replaying vgg's plan on a resnet cannot work


def test_stats_count_macs_by_hand_and_report_the_reduction():
    model = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1), torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 5)
    )
    x = torch.zeros(2, 2, 8, 8)
    assert count_macs(model, x) == 2 * (4 * 8 * 8 * 2 * 9 + 5 * 256)
    before, pruned = _pruned("vgg", "seed")
    a, b = model_stats(before, X8, latency_repeats=2), model_stats(pruned, X8, latency_repeats=2)
    assert b.params < a.params and b.macs < a.macs and a.latency_s > 0
    table = compare_stats(a, b)
    assert f"{a.params:,}" in table and "latency" in table and "% less" in table
    assert len(measure_latencies([before, pruned], X8, repeats=1, warmup=0)) == 2
    with pytest.raises(PruningError, match="repeats must be"):
        measure_latencies([before], X8, repeats=0)


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (10_000, r"keeps channel 10000 of layer 'features.conv1.bn', which has \d+ channels"),
        (-1, r"keeps channel -1 of layer 'features.conv1.bn'"),
        ("3", r"keeps channel '3' of layer 'features.conv1.bn'"),
    ],
)
def test_load_names_the_layer_of_an_index_outside_it(tmp_path, index, message):
    import json

    _, pruned = _pruned("vgg", "seed")
    path = save_pruned(pruned, tmp_path / "m.pt", builder="vgg")
    raw = torch.load(path, weights_only=True)
    plan = json.loads(raw["plan"])
    plan["keep"]["features.conv1.bn"].append(index)  # an edited or damaged plan
    raw["plan"] = json.dumps(plan)
    torch.save(raw, path)
    with pytest.raises(PruningError, match=message):
        load_pruned(path)
