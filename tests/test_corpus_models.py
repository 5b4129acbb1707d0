"""What the corpus's new families train: the shapes task, torchvision's nets, a detector run."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn

from forecastprune.errors import ConfigError
from forecastprune.zoo import build_model, list_models
from forecastprune.zoo.data import get_task, make_loaders
from forecastprune.zoo.shapes import NUM_CLASSES, draw_shapes
from forecastprune.zoo.torchvision_small import BUILDERS


def test_shapes_are_balanced_deterministic_and_not_told_apart_by_colour():
    images, labels = draw_shapes(200, 16, seed=3)
    again, _ = draw_shapes(200, 16, seed=3)
    assert images.shape == (200, 16, 16, 3) and images.dtype == np.uint8
    assert np.array_equal(images, again) and np.bincount(labels).tolist() == [20] * NUM_CLASSES
    # filled shapes cover more pixels than their outlines; the colours of a class vary
    bright = (images.max(axis=3) >= 190).reshape(200, -1).sum(1)
    assert bright[labels % 2 == 0].mean() > 1.3 * bright[labels % 2 == 1].mean()
    colours = [images[i][images[i].max(axis=2) >= 190].mean(0) for i in np.flatnonzero(labels == 0)]
    assert np.std(colours, axis=0).mean() > 20
    with pytest.raises(ValueError, match="side >= 12"):
        draw_shapes(10, 8, seed=0)


def test_the_shapes_task_is_an_rgb_split_the_zoo_trains_on():
    task = get_task("shapes")
    split = task.split()
    assert split.x_train.shape == (1536, 3, 16, 16) and split.x_test.shape == (512, 3, 16, 16)
    assert split.num_classes == 10 and task.channels == 3
    assert abs(float(split.x_train.mean())) < 0.05  # standardised with the training statistics
    train, _ = make_loaders(split, 32, augment=True, max_shift=task.max_shift, seed=0)
    images, labels = next(iter(train))
    model = build_model("resnet", in_channels=3, width=0.5)
    assert model(images).shape == (32, 10) and labels.shape == (32,)


def test_a_shapes_run_records_a_store_its_model_can_be_rebuilt_from(tmp_path):
    from forecastprune.pipeline.recording import RecordSettings, record_run
    from forecastprune.store import GammaTrajectoryStore
    from forecastprune.zoo.from_store import example_input_shape, model_from_metadata

    assert "in_channels" not in RecordSettings(out=tmp_path).model_kwargs
    settings = RecordSettings(
        out=tmp_path, task="shapes", epochs=1, limit_batches=2, width=0.25, progress=False
    )
    assert settings.model_kwargs["in_channels"] == 3
    result = record_run(settings)
    with GammaTrajectoryStore.open(result.store_path) as store:
        meta = store.metadata
    assert meta["dataset"] == "generated-shapes" and meta["input_shape"] == [1, 3, 16, 16]
    model = model_from_metadata(meta)
    assert model(torch.zeros(example_input_shape(meta))).shape == (1, 10)


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize(("channels", "side"), [(1, 8), (3, 16)])
def test_torchvision_nets_take_small_inputs_with_gamma_init(name, channels, side):
    assert name in list_models()
    model = build_model(name, gamma_init=0.7, in_channels=channels)
    assert model(torch.zeros(2, channels, side, side)).shape == (2, 10)
    gammas = [m.weight for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(gammas) >= 8 and all(torch.all(g == 0.7) for g in gammas)


def test_a_torchvision_run_rebuilds_its_model_without_the_corpus_imported():
    # compare and prune plan on the model a store names: the zoo knows the corpus's torchvision
    # nets on its own, in a fresh process that never imports forecastprune.corpus
    code = (
        "import sys; from forecastprune.zoo.from_store import model_from_metadata as m; "
        "net = m({'model': 'tv-vgg11', 'model_kwargs': {'width': 0.5}}); "
        "assert 'forecastprune.corpus' not in sys.modules; "
        "print(net.features[0].out_channels)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "32"


def test_torchvision_widths_scale_where_torchvision_allows():
    narrow = BUILDERS["tv-vgg11"](width=0.5)
    assert narrow.features[0].out_channels == 32
    assert BUILDERS["tv-mobilenet-v2"](width=0.5).features[0][0].out_channels == 16
    with pytest.raises(ConfigError, match="keeps torchvision's widths"):
        BUILDERS["tv-resnet18"](width=0.5)


@pytest.mark.slow
def test_a_detector_run_records_gamma_through_attach_without_pruning(tmp_path):
    pytest.importorskip("ultralytics", reason="ultralytics is an optional extra")
    from forecastprune.corpus.detection import record_detector
    from forecastprune.store import GammaTrajectoryStore

    settings = {
        "model": "yolov8n.yaml",
        "epochs": 2,
        "imgsz": 64,
        "batch": 8,
        "nbs": 8,
        "n_train": 16,
        "n_val": 8,
        "sparsity": 1e-3,
        "seed": 0,
        "every": 1,
    }
    store_path, map50, extra = record_detector(settings, tmp_path)
    assert extra["optimizer"] == "AdamW" and extra["updates"] == 4  # ultralytics' auto choice
    assert 0.0 <= map50 <= 1.0
    with GammaTrajectoryStore.open(store_path) as store:
        assert store.steps.tolist() == [1, 2, 3, 4] and store.layout.total > 1000
        # ultralytics starts γ at 1.0; after one warm-up update it has barely moved
        assert np.allclose(np.abs(store.view()[0]), 1.0, atol=0.01)
        assert store.metadata.get("pruned_at") is None
