"""NPZ import/export and building stores from state-dict checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from forecastprune.core.layout import ChannelLayout
from forecastprune.errors import StoreError
from forecastprune.store import GammaTrajectoryStore, export_npz, import_npz, store_from_checkpoints

LAYOUT = ChannelLayout((("conv.bn", 3), ("head.bn", 2)))


def _npz_arrays(t: int = 6) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "steps": np.arange(t) * 7 + 3,
        "gammas": rng.normal(0, 1, (t, LAYOUT.total)).astype(np.float32),
        "layer_names": np.array(LAYOUT.names),
        "layer_sizes": np.array(LAYOUT.sizes),
    }


def test_npz_round_trip_is_exact(tmp_path):
    with GammaTrajectoryStore.create(
        tmp_path / "a",
        LAYOUT,
        flush_every=4,
        fingerprint="fp",
        metadata={"model": "vgg", "lr": 0.1},
    ) as store:
        for i, row in enumerate(_npz_arrays(9)["gammas"]):
            store.append(i * 2, row, lr=None if i == 3 else 0.1 / (i + 1))
    original = GammaTrajectoryStore.open(tmp_path / "a")
    assert export_npz(tmp_path / "a", tmp_path / "x.npz") == tmp_path / "x.npz"
    copy = import_npz(tmp_path / "x.npz", tmp_path / "b", flush_every=5)
    np.testing.assert_array_equal(copy.steps, original.steps)
    np.testing.assert_array_equal(copy.lrs, original.lrs)  # NaN (unknown) survives
    np.testing.assert_array_equal(copy.history()[1], original.history()[1])
    assert copy.layout == LAYOUT and copy.fingerprint == "fp"
    assert copy.metadata == {"model": "vgg", "lr": 0.1}
    assert copy.mode == "r"
    assert not list(tmp_path.glob(".*.tmp"))  # no staging leftovers


def test_import_minimal_npz_with_float_steps_and_overrides(tmp_path):
    arrays = _npz_arrays()
    arrays["steps"] = arrays["steps"].astype(np.float64)  # whole-number floats are accepted
    arrays["metadata"] = np.array(json.dumps({"model": "mine", "seed": 1}))
    np.savez(tmp_path / "in.npz", **arrays)
    store = import_npz(
        tmp_path / "in.npz",
        tmp_path / "s",
        metadata={"seed": 2},
        fingerprint="given",
        dtype="float16",
    )
    assert store.steps.dtype == np.int64 and store.dtype == "float16"
    np.testing.assert_array_equal(store.steps, _npz_arrays()["steps"])
    assert np.isnan(store.lrs).all()
    assert store.metadata == {"model": "mine", "seed": 2} and store.fingerprint == "given"
    np.testing.assert_allclose(store.history()[1], arrays["gammas"], rtol=1e-3, atol=1e-4)


def _bad(**changes):
    arrays = _npz_arrays()
    for key, value in changes.items():
        if value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    return arrays


@pytest.mark.parametrize(
    ("arrays", "match"),
    [
        (_bad(gammas=None), r"missing arrays \['gammas'\]"),
        (_bad(steps=np.array([3, 2, 5, 6, 7, 8])), "strictly increasing; step 2 follows 3"),
        (_bad(steps=np.arange(5)), r"steps must be a real \(6,\) array"),
        (_bad(steps=np.arange(6) + 0.5), "whole numbers"),
        (_bad(gammas=np.ones((6, 4))), "layer_sizes sum to 5 but gammas has 4 columns"),
        (_bad(gammas=np.ones(6)), r"non-empty real \(T, C\) array"),
        (_bad(gammas=np.full((6, 5), np.nan)), "30 NaN/Inf"),
        (_bad(layer_names=np.array([1, 2])), "layer_names must be a 1-D string array"),
        (_bad(layer_names=np.array(["x", "x"])), "duplicated"),
        (_bad(layer_sizes=np.array([3, 2, 0])), r"layer_sizes must be a real \(2,\) array"),
        (_bad(layer_sizes=np.array([5, 0])), "positive channel count"),
        (_bad(lrs=np.ones(3)), r"lrs must be a real \(T,\)"),
        (_bad(lrs=np.full(6, np.inf)), "without Inf"),
        (_bad(metadata=np.array("{nope")), "metadata is not valid JSON"),
        (_bad(metadata=np.array("[1]")), "metadata must be a JSON object"),
        (_bad(fingerprint=np.array([1.0])), "fingerprint must be a 0-d string"),
    ],
)
def test_bad_npz_is_rejected_with_a_clear_error(tmp_path, arrays, match):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(StoreError, match=match) as info:
        import_npz(tmp_path / "bad.npz", tmp_path / "s")
    assert "bad.npz" in str(info.value)
    assert not (tmp_path / "s").exists()


def test_unreadable_npz_files(tmp_path):
    with pytest.raises(StoreError, match="no NPZ file at"):
        import_npz(tmp_path / "absent.npz", tmp_path / "s")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(StoreError, match=r"junk.npz is not an NPZ file \(a zip archive"):
        import_npz(tmp_path / "junk.npz", tmp_path / "s")
    np.savez(tmp_path / "obj.npz", steps=np.array([{"a": 1}], dtype=object))
    with pytest.raises(StoreError, match="object arrays are not allowed"):
        import_npz(tmp_path / "obj.npz", tmp_path / "s")
    np.save(tmp_path / "single.npy", np.ones(3))
    with pytest.raises(StoreError, match="single array"):
        import_npz(tmp_path / "single.npy", tmp_path / "s")


def test_outputs_are_never_overwritten_without_permission(tmp_path):
    np.savez(tmp_path / "in.npz", **_npz_arrays())
    import_npz(tmp_path / "in.npz", tmp_path / "s").close()
    with pytest.raises(StoreError, match="already exists and is not empty; pass overwrite=True"):
        import_npz(tmp_path / "in.npz", tmp_path / "s")
    export_npz(tmp_path / "s", tmp_path / "out.npz")
    with pytest.raises(StoreError, match="already exists"):
        export_npz(tmp_path / "s", tmp_path / "out.npz")
    arrays = _npz_arrays(3)
    np.savez(tmp_path / "short.npz", **arrays)
    assert len(import_npz(tmp_path / "short.npz", tmp_path / "s", overwrite=True)) == 3
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "keep.txt").write_text("x")
    with pytest.raises(StoreError, match="refusing to overwrite"):
        import_npz(tmp_path / "in.npz", tmp_path / "plain", overwrite=True)
    assert (tmp_path / "plain" / "keep.txt").exists()


class _Net(nn.Module):
    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, 3, 3, bias=False),
            nn.BatchNorm2d(3),
            nn.ReLU(),
        )
        self.norm = nn.LayerNorm(3)  # weight + bias but no running stats: not a BN
        self.head = nn.Linear(3, 2)


def _save_checkpoints(tmp_path, steps, wrap=None):
    torch.manual_seed(0)
    net, paths, gammas = _Net(), [], []
    for step in steps:
        with torch.no_grad():
            for bn in (net.features[1], net.features[4]):
                bn.weight.normal_()
        state = net.state_dict()
        obj = (
            state
            if wrap is None
            else {wrap: state, "optimizer": {"state": {}, "param_groups": [{"lr": 0.01 * step}]}}
        )
        path = tmp_path / f"run3_epoch{step}.pt"
        torch.save(obj, path)
        paths.append(path)
        bns = (net.features[1], net.features[4])
        gammas.append(torch.cat([bn.weight.detach() for bn in bns]).numpy().copy())
    return paths, np.array(gammas)


@pytest.mark.parametrize("wrap", [None, "state_dict", "model"])
def test_store_from_checkpoints_sorts_by_parsed_step(tmp_path, wrap):
    paths, gammas = _save_checkpoints(tmp_path, [10, 2, 30], wrap=wrap)
    store = store_from_checkpoints(paths, tmp_path / "s")  # unsorted input
    assert store.layout == ChannelLayout((("features.1", 4), ("features.4", 3)))
    assert store.steps.tolist() == [2, 10, 30]
    np.testing.assert_array_equal(store.history()[1], gammas[[1, 0, 2]])
    if wrap is None:
        assert np.isnan(store.lrs).all()
    else:
        np.testing.assert_allclose(store.lrs, [0.02, 0.1, 0.3])
    assert store.metadata["checkpoints"] == ["run3_epoch2.pt", "run3_epoch10.pt", "run3_epoch30.pt"]


def test_store_from_checkpoints_with_explicit_steps_and_layers(tmp_path):
    paths, gammas = _save_checkpoints(tmp_path, [1, 2, 3])
    store = store_from_checkpoints(
        paths,
        tmp_path / "s",
        steps=[300, 100, 200],
        layers=["features.4"],
        metadata={"model": "net"},
    )
    assert store.layout == ChannelLayout((("features.4", 3),))
    assert store.steps.tolist() == [100, 200, 300]
    np.testing.assert_array_equal(store.history()[1], gammas[[1, 2, 0], 4:])
    assert store.metadata["model"] == "net"
    # the default pattern takes the last integer; a custom one can take another
    paths[0].rename(tmp_path / "run3_epoch1_v9.pt")
    paths[0] = tmp_path / "run3_epoch1_v9.pt"
    custom = store_from_checkpoints(paths, tmp_path / "t", step_pattern=r"epoch(\d+)")
    assert custom.steps.tolist() == [1, 2, 3]


def test_store_from_checkpoints_errors(tmp_path):
    paths, _ = _save_checkpoints(tmp_path, [1, 2])
    cases = [
        (dict(paths=[]), "no checkpoint files given"),
        (dict(paths=paths, steps=[1]), "got 1 steps for 2 checkpoint files"),
        (dict(paths=paths, step_pattern="("), "not a valid regular expression"),
        (dict(paths=paths, step_pattern=r"run(\d+)_"), "both have step 3"),
        (dict(paths=paths, step_pattern="zzz"), "cannot find a step in the checkpoint name"),
        (dict(paths=paths, layers=["nope"]), r"has no BN layers \['nope'\]"),
        (dict(paths=[tmp_path / "absent_1.pt"]), "does not exist"),
    ]
    for kwargs, match in cases:
        with pytest.raises(StoreError, match=match):
            store_from_checkpoints(out=tmp_path / "s", **kwargs)
    assert not (tmp_path / "s").exists()


def test_store_from_checkpoints_rejects_foreign_files(tmp_path):
    torch.save({"features.0.weight": torch.ones(2, 1, 3, 3)}, tmp_path / "nobn_1.pt")
    with pytest.raises(StoreError, match="has no BatchNorm layers"):
        store_from_checkpoints([tmp_path / "nobn_1.pt"], tmp_path / "s")
    torch.save([1, 2, 3], tmp_path / "list_1.pt")
    with pytest.raises(StoreError, match="is not a state dict"):
        store_from_checkpoints([tmp_path / "list_1.pt"], tmp_path / "s")
    torch.save(_Net(), tmp_path / "pickled_1.pt")  # a whole pickled module: unsafe to load
    with pytest.raises(StoreError, match=r"weights_only=True\): .*save model.state_dict\(\)"):
        store_from_checkpoints([tmp_path / "pickled_1.pt"], tmp_path / "s")
    (tmp_path / "cut_1.pt").write_bytes((tmp_path / "nobn_1.pt").read_bytes()[:100])
    with pytest.raises(StoreError, match=r"cannot load checkpoint .*cut_1.pt"):
        store_from_checkpoints([tmp_path / "cut_1.pt"], tmp_path / "s")
    narrow, _ = _save_checkpoints(tmp_path, [1])
    torch.save(_Net(width=6).state_dict(), tmp_path / "wide_2.pt")
    with pytest.raises(StoreError, match="'features.1' should have 4 channels .* got \\(6,\\)"):
        store_from_checkpoints([narrow[0], tmp_path / "wide_2.pt"], tmp_path / "s")
    assert not (tmp_path / "s").exists()
