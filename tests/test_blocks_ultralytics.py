"""Depth pruning on ultralytics detectors built from their yaml (no weights, no downloads).

C3 bottlenecks (YOLOv5u) sit in a called Sequential and are deleted; C2f/C3k2 bottlenecks
(YOLOv8, YOLO11) sit in a ModuleList whose outputs are concatenated with their inputs, so their
columns of ``cv2`` are folded into their inputs' columns; YOLOv3u's single bottlenecks are
entries of the top-level layer list and become Identity stand-ins that keep ``f``/``i``.
"""

from __future__ import annotations

import pytest
import torch
from _blocks import remove_exactly
from _models import randomize_bn

from forecastprune._torchvision_ops import ensure_torchvision_ops
from forecastprune.engine.block_surgery import prune_blocks
from forecastprune.engine.blocks import plan_blocks
from forecastprune.engine.spec import PruneSpec

ensure_torchvision_ops()
tasks = pytest.importorskip("ultralytics.nn.tasks", reason="ultralytics is an optional extra")

X64 = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
XB = torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def _detector(name: str) -> torch.nn.Module:
    return randomize_bn(tasks.DetectionModel(f"{name}.yaml", verbose=False))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "modes", "count"),
    [
        ("yolov5nu", {"delete"}, 7),
        ("yolov8n", {"fold"}, 6),
        ("yolo11n", {"fold", "delete"}, 11),
        pytest.param("yolov3u", {"delete", "identity"}, 23, marks=pytest.mark.slow),
    ],
)
def test_detector_blocks_go_exactly(name, modes, count):
    plan, pruned = remove_exactly(_detector(name), X64, XB, every=1 if count < 12 else 2)
    assert len(plan.blocks) == count and {b.mode for b in plan.blocks} == modes
    assert all(b.bn.endswith("cv2.bn") for b in plan.blocks)
    for block in plan.blocks:
        if block.mode == "identity":  # DetectionModel routes by the stand-in's f and i
            layer = pruned.get_submodule(block.name)
            assert isinstance(layer, torch.nn.Identity) and isinstance(layer.i, int)


def test_c2f_fold_merges_the_removed_slot_into_its_input_slot():
    model = _detector("yolov8n")
    plan = plan_blocks(model, X64)
    block = plan.get("model.2.m.0")
    assert block.fold.conv == "model.2.cv2.conv" and block.fold.target + 16 == block.fold.source
    pruned = prune_blocks(model, [block.name], X64, plan)
    before = model.get_submodule("model.2.cv2.conv").weight
    after = pruned.get_submodule("model.2.cv2.conv").weight
    assert after.shape[1] == before.shape[1] - 16 and len(pruned.model[2].m) == 0
    torch.testing.assert_close(after[:, 16:32], before[:, 16:32] + before[:, 32:48])


def test_yolo11_attention_block_is_reported_not_removed():
    plan = plan_blocks(_detector("yolo11n"), X64)
    assert "shortcut is not its own input" in plan.reasons["model.10.m.0"]


@pytest.mark.slow
def test_attach_removes_blocks_in_a_real_training_run(tmp_path):
    """A short yolov8n run (3 epochs of 4 updates) on generated shapes: the trainer's model and
    its EMA lose the same bottlenecks at the prune point, training and validation go on, the
    checkpoint pickles."""
    from forecastprune.engine.block_rule import BlockSpec
    from forecastprune.integrations.ultralytics import (
        attach,
        make_shapes_dataset,
        offline,
    )

    data = make_shapes_dataset(tmp_path / "data", n_train=32, n_val=8, imgsz=64)
    with offline():
        from ultralytics import YOLO

        model = YOLO("yolov8n.yaml")
        pruner = attach(
            model,
            forecaster="sma",
            spec=PruneSpec(ratio=0.2, policy="grouped"),
            prune_at=0.6,
            sparsity=1e-3,
            blocks=BlockSpec(count=2),
        )
        model.train(
            data=str(data),
            epochs=3,
            imgsz=64,
            batch=8,
            nbs=8,
            warmup_epochs=0,
            workers=0,
            plots=False,
            device="cpu",
            amp=False,
            seed=0,
            verbose=False,
            project=str(tmp_path / "runs"),
            name="train",
        )
    trainer = model.trainer
    removed = pruner.pruner.prune_info["blocks"]
    assert len(removed) == 2 and pruner.pruned_at == 7
    for net in (trainer.model, trainer.ema.ema):
        names = {n for n, _ in net.named_modules()}
        assert not set(removed) & names
    assert sum(p.numel() for p in trainer.ema.ema.parameters()) == pruner.params[1]
    from ultralytics.nn.tasks import torch_safe_load  # its restricted, weights-only loader

    best, _ = torch_safe_load(
        str(tmp_path / "runs" / "train" / "weights" / "last.pt"), safe_only=True
    )
    names = {n for n, _ in best["model"].named_modules()}
    assert not set(removed) & names
