"""Tests of the digits data and the demo model zoo."""

from __future__ import annotations

import operator

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from forecastprune.errors import ConfigError, ForecastPruneError
from forecastprune.zoo import (
    build_model,
    list_models,
    load_digits_split,
    make_loaders,
    register_model,
)
from forecastprune.zoo.data import ShiftNoise

DEMO_MODELS = ["vgg", "resnet", "darknet"]


@pytest.fixture(scope="module")
def split():
    return load_digits_split()


def bn_names(model: nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]


# ------------------------------------------------------------------ data
def test_split_is_deterministic_and_seed_dependent(split):
    again = load_digits_split()
    assert torch.equal(split.x_train, again.x_train)
    assert torch.equal(split.y_test, again.y_test)
    other = load_digits_split(seed=1)
    assert not torch.equal(split.y_train, other.y_train)


def test_split_is_stratified_and_standardised(split):
    assert split.x_train.shape == (1437, 1, 8, 8) and split.x_test.shape == (360, 1, 8, 8)
    assert split.x_train.dtype == torch.float32 and split.y_train.dtype == torch.int64
    train_counts = np.bincount(split.y_train.numpy(), minlength=10)
    test_counts = np.bincount(split.y_test.numpy(), minlength=10)
    expected = (train_counts + test_counts) * 0.2
    assert np.all(np.abs(test_counts - expected) <= 1)
    assert abs(float(split.x_train.mean())) < 1e-4
    assert abs(float(split.x_train.std()) - 1.0) < 1e-3
    assert split.num_classes == 10
    # blank pixels map to the recorded background value
    assert float(split.x_train.min()) == pytest.approx(split.background, abs=1e-5)


def test_upscale_doubles_the_side():
    big = load_digits_split(upscale=2)
    assert big.x_test.shape == (360, 1, 16, 16) and big.image_size == 16


@pytest.mark.parametrize(
    "kwargs", [{"test_fraction": 0.0}, {"test_fraction": 1.5}, {"upscale": 0}, {"upscale": 1.5}]
)
def test_bad_split_arguments_raise(kwargs):
    with pytest.raises(ConfigError):
        load_digits_split(**kwargs)


def test_loaders_drop_last_and_do_not_augment_the_test_set(split):
    train, test = make_loaders(split, batch_size=100, augment=True)
    assert len(train) == 1437 // 100
    x, y = next(iter(train))
    assert x.shape == (100, 1, 8, 8) and y.shape == (100,)
    test_x = torch.cat([b[0] for b in test])
    assert torch.equal(test_x, split.x_test)
    with pytest.raises(ConfigError, match="batch_size"):
        make_loaders(split, batch_size=5000)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), max_shift=st.integers(1, 2))
def test_shift_is_a_translation_filled_with_background(seed, max_shift):
    images = torch.randn(6, 1, 8, 8)
    out, _ = ShiftNoise(max_shift, noise_std=0.0, background=-3.0, seed=seed)(
        [(images[i], torch.tensor(i)) for i in range(6)]
    )
    padded = nn.functional.pad(images, (max_shift,) * 4, value=-3.0)
    span = range(2 * max_shift + 1)
    for i in range(6):
        crops = [padded[i, :, dy : dy + 8, dx : dx + 8] for dy in span for dx in span]
        assert any(torch.equal(out[i], c) for c in crops)


def test_augmentation_is_reproducible_and_noisy():
    batch = [(torch.zeros(1, 8, 8), torch.tensor(0)) for _ in range(4)]
    a, _ = ShiftNoise(1, 0.5, seed=3)(batch)
    b, _ = ShiftNoise(1, 0.5, seed=3)(batch)
    assert torch.equal(a, b)
    assert 0.3 < float(a.std()) < 0.7
    with pytest.raises(ConfigError):
        ShiftNoise(-1, 0.1)


# ------------------------------------------------------------------ models
@pytest.mark.parametrize("name", DEMO_MODELS)
@pytest.mark.parametrize("upscale", [1, 2])
def test_forward_shapes(name, upscale):
    model = build_model(name, width=0.5)
    x = torch.randn(3, 1, 8 * upscale, 8 * upscale)
    assert model(x).shape == (3, 10)
    assert build_model(name, num_classes=4)(x).shape == (3, 4)


@pytest.mark.parametrize("name", DEMO_MODELS)
def test_every_conv_is_followed_by_a_bn_and_gamma_init_applies(name):
    model = build_model(name, gamma_init=0.5)
    convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    assert [c.removesuffix(".conv") + ".bn" for c in convs] == bn_names(model)
    for n, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            assert torch.all(m.weight == 0.5), n


def test_width_multiplier_scales_channels():
    full = build_model("darknet")
    half = build_model("darknet", width=0.5)
    n_full = sum(m.num_features for m in full.modules() if isinstance(m, nn.BatchNorm2d))
    n_half = sum(m.num_features for m in half.modules() if isinstance(m, nn.BatchNorm2d))
    assert n_half == n_full // 2


def test_darknet_layer_names_are_stable():
    assert bn_names(build_model("darknet")) == [
        "stem.bn",
        "down1.bn",
        "stage1.0.cv1.bn",
        "stage1.0.cv2.bn",
        "down2.bn",
        "stage2.0.cv1.bn",
        "stage2.0.cv2.bn",
        "stage2.1.cv1.bn",
        "stage2.1.cv2.bn",
        "lateral.bn",
        "fuse.bn",
        "head.bn",
    ]


def test_darknet_has_stride_add_upsample_and_concat():
    graph = torch.fx.symbolic_trace(build_model("darknet")).graph
    targets = [node.target for node in graph.nodes]
    assert operator.add in targets
    assert torch.cat in targets
    modules = dict(build_model("darknet").named_modules())
    assert isinstance(modules["upsample"], nn.Upsample)
    assert modules["down1.conv"].stride == (2, 2) and modules["down2.conv"].stride == (2, 2)


def test_resnet_has_residual_adds():
    graph = torch.fx.symbolic_trace(build_model("resnet")).graph
    assert sum(node.target is operator.add for node in graph.nodes) == 3


# ------------------------------------------------------------------ registry
def test_list_models_includes_the_demo_zoo():
    assert set(DEMO_MODELS) <= set(list_models())
    assert list_models("dark*") == ["darknet"]


def test_unknown_model_suggests_the_closest_name():
    with pytest.raises(ConfigError, match="Did you mean 'darknet'") as info:
        build_model("darkent")
    assert "vgg" in str(info.value)


def test_unknown_keyword_lists_the_options():
    with pytest.raises(ConfigError, match="gamma_init"):
        build_model("vgg", depth=3)


@pytest.mark.parametrize(
    "name,kwargs",
    [
        ("vgg", {"gamma_init": 0.0}),
        ("vgg", {"width": -1}),
        ("darknet", {"widths": (8, 8)}),
        ("darknet", {"blocks": (0, 1)}),
        ("resnet", {"blocks": (1, 1)}),
    ],
)
def test_bad_model_options_raise_user_errors(name, kwargs):
    with pytest.raises(ForecastPruneError):
        build_model(name, **kwargs)


def test_register_model_rejects_duplicates_and_builds_custom_models():
    with pytest.raises(ConfigError, match="already registered"):
        register_model("vgg", lambda: nn.Identity())

    @register_model("tiny-test-net")
    def tiny(channels: int = 2) -> nn.Module:
        return nn.Sequential(nn.Conv2d(1, channels, 1), nn.BatchNorm2d(channels))

    try:
        assert bn_names(build_model("tiny-test-net", channels=3)) == ["1"]
        assert "tiny-test-net" in list_models()
    finally:
        from forecastprune.zoo import _MODELS

        _MODELS.pop("tiny-test-net")
