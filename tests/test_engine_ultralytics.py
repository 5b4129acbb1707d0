"""The engine on ultralytics detectors as users build them: ``DetectionModel("<name>.yaml")``.

No weights, no downloads: the models are built from the yaml files ultralytics ships, with
random BN statistics so the exactness checks can fail.
"""

from __future__ import annotations

import copy
import time

import pytest
import torch
from _models import randomize_bn
from _pruning import assert_same_outputs, prune_exactly, zeroed

from forecastprune._torchvision_ops import ensure_torchvision_ops
from forecastprune.engine.coupling import plan_channels
from forecastprune.engine.surgery import prune_model, surgery_record
from forecastprune.errors import PruningError

ensure_torchvision_ops()
tasks = pytest.importorskip("ultralytics.nn.tasks", reason="ultralytics is an optional extra")

X64 = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def _detector(name: str, seed: int = 0) -> torch.nn.Module:
    return randomize_bn(tasks.DetectionModel(f"{name}.yaml", verbose=False), seed).eval()


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["seed", "grouped"])
@pytest.mark.parametrize("name", ["yolov5n", "yolov8n", "yolo11n"])
def test_detector_prunes_exactly_in_eval_mode(name, policy):
    plan, _, pruned = prune_exactly(_detector(name), X64, policy)
    # Detect's eval output is (y, {"boxes", "scores", "feats": [P3, P4, P5]}): the BNs making the
    # feature maps it returns are model outputs and stay whole
    outputs = [layer for layer, why in plan.reasons.items() if "model's output" in why]
    assert len(outputs) >= 3
    assert all(
        pruned.get_submodule(layer).num_features
        == plan.layout.sizes[plan.layout.names.index(layer)]
        for layer in outputs
    )


YOLO26 = {
    "yolo26n": "DetectionModel",
    "yolo26n-seg": "SegmentationModel",
    "yolo26n-pose": "PoseModel",
    "yolo26n-obb": "OBBModel",
}


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["seed", "grouped"])
@pytest.mark.parametrize("name", sorted(YOLO26))
def test_yolo26_prunes_exactly_around_its_attention(name, policy):
    """YOLO26's C3k2 attention merges its heads back to the width it read from its input: that
    residual stream stays whole (a reason says why) and everything else prunes, exactly."""
    model = randomize_bn(getattr(tasks, YOLO26[name])(f"{name}.yaml", verbose=False), 0).eval()
    plan, _, _ = prune_exactly(model, X64, policy)
    attention = "model.22.m.0.1.attn"
    assert f"channel count is read by '{attention}'" in plan.reasons[f"{attention}.proj.bn"]
    assert "view to [1, 128, 2, 2]" in plan.reasons[f"{attention}.proj.bn"]
    if policy == "grouped":
        assert plan.prunable_channels > 0.6 * plan.layout.total


@pytest.mark.slow
def test_yolov3_prunes_exactly_under_the_grouped_policy():
    plan, _, _ = prune_exactly(_detector("yolov3u"), X64, "grouped", ratio=0.3)
    assert plan.prunable_channels > 0.9 * plan.layout.total


def test_c2f_chunk_halves_stay_consistent():
    """cv1's output is chunked in two: channel k of both halves goes together, so the halves
    stay equal and every reader (the bottleneck, the concat into cv2) loses the same inputs."""
    model = _detector("yolov8n")
    plan, decision, pruned = prune_exactly(model, X64, "grouped")
    c2f = pruned.model[2]
    halves = decision.keep["model.2.cv1.bn"].reshape(2, -1)
    assert (halves[0] == halves[1]).all() and not halves[0].all()
    width = int(halves[0].sum())
    assert c2f.cv1.conv.out_channels == 2 * width
    assert c2f.m[0].cv1.conv.in_channels == width
    assert c2f.cv2.conv.in_channels == 2 * width + c2f.m[0].cv2.conv.out_channels


def test_attention_is_decided_quickly_with_reasons():
    model = _detector("yolo11n")
    start = time.perf_counter()
    plan = plan_channels(model, X64, policy="grouped")
    assert time.perf_counter() - start < 30
    assert "attention heads" in plan.reasons["model.10.m.0.attn.qkv.bn"]
    assert "attention heads" in plan.reasons["model.10.m.0.attn.pe.bn"]
    assert "model.10.m.0.attn.qkv.bn" not in plan.prunable_layers
    # the C3k2 blocks around it stay prunable
    assert "model.8.cv1.bn" in plan.prunable_layers


@pytest.mark.slow
@pytest.mark.parametrize("policy", ["seed", "grouped"])
def test_train_mode_detector_prunes_and_stays_in_train_mode(policy):
    model = _detector("yolo11n").train()
    plan, decision, pruned = prune_exactly(model, X64, policy)
    assert pruned.training and all(m.training for m in pruned.modules())
    # in train mode BN normalizes by batch statistics; γ = β = 0 channels are still exactly 0,
    # so the train-mode outputs agree too (to the conditioning of tiny batch statistics)
    x = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    assert_same_outputs(zeroed(model, decision.keep), pruned, x, rel=2e-4)


def test_a_pruned_detector_survives_a_checkpoint_round_trip(tmp_path):
    """ultralytics checkpoints pickle the whole model: the pruned one must pickle too."""
    model = _detector("yolov8n")
    _, decision, pruned = prune_exactly(model, X64, "grouped", ratio=0.3)
    copied = copy.deepcopy(pruned)
    assert surgery_record(copied).sources.keys() == surgery_record(pruned).sources.keys()
    torch.save({"model": pruned}, tmp_path / "last.pt")
    # ultralytics' own format is a pickle; loading it needs weights_only=False by design
    loaded = torch.load(tmp_path / "last.pt", weights_only=False)["model"]
    assert surgery_record(loaded).keep.keys() == decision.keep.keys()
    assert_same_outputs(pruned, loaded, X64, rel=0)


def test_a_cut_through_a_model_output_is_refused_with_the_layer_named():
    model = _detector("yolov8n")
    plan = plan_channels(model, X64, policy="grouped")
    keep = {name: torch.ones(size, dtype=torch.bool).numpy() for name, size in plan.layout.layers}
    keep["model.21.cv2.bn"][:3] = False
    with pytest.raises(PruningError, match=r"'model\.21\.cv2\.bn'.*reach the model's output"):
        prune_model(model, keep, X64, plan)
