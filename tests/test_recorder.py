"""GammaRecorder and BN layer selection: which layers, how often, what is stored, resuming."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
import torch
from torch import nn

from forecastprune.core.bn_layers import model_fingerprint, select_bn_layers, unwrap_model
from forecastprune.core.lr_clock import lr_at
from forecastprune.errors import ConfigError, LayoutError, StoreError
from forecastprune.record.recorder import GammaRecorder
from forecastprune.store import GammaTrajectoryStore


class Net(nn.Module):
    """Conv-BN blocks plus every kind of norm layer the selection must tell apart."""

    def __init__(self, width: int = 4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, 6, 3, padding=1),
            nn.BatchNorm2d(6),
            nn.ReLU(),
            nn.BatchNorm2d(6, affine=False),
            nn.InstanceNorm2d(6, affine=True),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(6, 5), nn.BatchNorm1d(5), nn.Linear(5, 3))
        self.unused = nn.BatchNorm3d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pool(self.features(x)))


ALL_AFFINE = ["features.1", "features.4", "head.2", "unused"]


def make_net(seed: int = 0, width: int = 4) -> Net:
    torch.manual_seed(seed)
    net = Net(width)
    with torch.no_grad():  # signed, distinct γ so a wrong copy or an abs() would show
        for _, bn in select_bn_layers(net):
            bn.weight.copy_(torch.randn_like(bn.weight))
    return net


def train(net, recorder, iterations, start=1, scheduler=None, optimizer=None, seen=None):
    """A real SGD loop on random data; records γ after each update into ``seen``."""
    optimizer = optimizer or torch.optim.SGD(net.parameters(), lr=0.1)
    generator = torch.Generator().manual_seed(start)
    for it in range(start, start + iterations):
        x = torch.randn(8, 1, 6, 6, generator=generator)
        y = torch.randint(0, 3, (8,), generator=generator)
        optimizer.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()
        if seen is not None:
            seen[it] = gammas(net)
        recorder.step(it)
        if scheduler is not None:
            scheduler.step()


def gammas(net: nn.Module) -> np.ndarray:
    return np.concatenate([bn.weight.detach().numpy().copy() for _, bn in select_bn_layers(net)])


# ------------------------------------------------------------------------- selection
def test_default_selection_is_every_affine_batchnorm_in_model_order():
    names = [name for name, _ in select_bn_layers(make_net())]
    assert names == ALL_AFFINE


def test_selection_by_pattern_explicit_name_and_exclusion():
    net = make_net()
    assert [n for n, _ in select_bn_layers(net, "features.*")] == ["features.1", "features.4"]
    # explicit names come back in model order, whatever order they were given in
    assert [n for n, _ in select_bn_layers(net, ["head.2", "features.1"])] == [
        "features.1",
        "head.2",
    ]
    assert [n for n, _ in select_bn_layers(net, exclude=["unused", "head.*"])] == [
        "features.1",
        "features.4",
    ]


@pytest.mark.parametrize(
    "layers, exclude, fragment",
    [
        ("backbone.*", None, "'backbone.*' matches no affine BatchNorm"),
        (["features.6"], None, "matches no affine BatchNorm"),  # affine=False is not selectable
        (None, "typo", "exclude entry 'typo'"),
        ("features.1", "features.*", "no affine BatchNorm layer selected"),
        ([""], None, "layer name/pattern"),
    ],
)
def test_bad_selection_raises_a_clear_error(layers, exclude, fragment):
    with pytest.raises(LayoutError, match=re.escape(fragment)):
        select_bn_layers(make_net(), layers, exclude)


def test_wrapped_models_are_named_like_the_plain_model():
    net = make_net()
    wrapped = nn.DataParallel(net)
    assert unwrap_model(wrapped) is net
    assert [n for n, _ in select_bn_layers(wrapped, "features.*")] == ["features.1", "features.4"]
    assert model_fingerprint(wrapped) == model_fingerprint(net)


def test_fingerprint_tracks_structure_and_selection_not_weights():
    assert model_fingerprint(make_net(seed=0)) == model_fingerprint(make_net(seed=1))
    assert model_fingerprint(make_net(width=4)) != model_fingerprint(make_net(width=5))
    assert model_fingerprint(make_net()) != model_fingerprint(make_net(), exclude="unused")


# ------------------------------------------------------------------------- recording
def test_records_signed_gamma_every_k_iterations_with_the_lr(tmp_path):
    net = make_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[4, 7], gamma=0.5)
    seen = {0: gammas(net)}
    with GammaRecorder(
        net,
        tmp_path / "s",
        every=3,
        optimizer=optimizer,
        exclude="unused",
        total_steps=10,
        lr_schedule=scheduler,
        metadata={"seed": 7, "model": "toy"},
    ) as recorder:
        recorder.step(0)
        train(net, recorder, 10, scheduler=scheduler, optimizer=optimizer, seen=seen)
    with GammaTrajectoryStore.open(tmp_path / "s") as store:
        steps, values = store.history()
        np.testing.assert_array_equal(steps, [0, 3, 6, 9])
        np.testing.assert_array_equal(values, np.stack([seen[s][:-2] for s in (0, 3, 6, 9)]))
        assert (values < 0).any()  # raw signed γ, not |γ|
        # update s ran after s - 1 scheduler steps: 0.1 until update 4, 0.05 from update 5
        np.testing.assert_allclose(store.lrs, [0.1, 0.1, 0.05, 0.025])
        assert store.layout.names == ("features.1", "features.4", "head.2")
        meta = store.metadata
        assert store.fingerprint == model_fingerprint(net, exclude="unused")
    assert meta["record_every"] == 3 and meta["total_steps"] == 10 and meta["lr"] == 0.1
    assert meta["model"] == "toy" and meta["seed"] == 7  # the caller's keys win
    np.testing.assert_allclose(lr_at(meta["lr_schedule"], [0, 3, 6, 9]), store.lrs)


def test_snapshots_stay_on_device_until_host_every(tmp_path):
    net = make_net()
    recorder = GammaRecorder(net, tmp_path / "s", host_every=4, flush_every=100)
    for it in range(1, 4):
        assert recorder.step(it)
    assert recorder.num_pending == 3 and recorder.num_snapshots == 3
    recorder.step(4)  # the fourth fills the buffer: one transfer to the writer thread
    assert recorder.num_pending == 0
    recorder.step(5)
    recorder.flush()
    assert recorder.num_pending == 0 and len(recorder.store) == 5
    recorder.close()
    with GammaTrajectoryStore.open(tmp_path / "s") as store:
        np.testing.assert_array_equal(store.steps, [1, 2, 3, 4, 5])
        assert np.isnan(store.lrs).all()  # no optimizer given: LR unknown


def test_resume_keeps_appending_and_skips_steps_already_recorded(tmp_path):
    net = make_net()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    recorder = GammaRecorder(net, tmp_path / "s", every=2, optimizer=optimizer)
    seen: dict[int, np.ndarray] = {}
    train(net, recorder, 6, optimizer=optimizer, seen=seen)
    checkpoint = {"model": copy.deepcopy(net.state_dict()), "recorder": recorder.state_dict()}
    train(net, recorder, 4, start=7, optimizer=optimizer, seen=seen)
    recorder.close()  # the run dies after step 10 and resumes from the step-6 checkpoint

    restarted = make_net(seed=3)
    restarted.load_state_dict(checkpoint["model"])
    optimizer = torch.optim.SGD(restarted.parameters(), lr=0.05)  # so the replay differs
    resumed = GammaRecorder(restarted, tmp_path / "s", every=2, optimizer=optimizer)
    resumed.load_state_dict(checkpoint["recorder"])
    assert resumed.num_snapshots == 3 and resumed.last_step == 6
    later: dict[int, np.ndarray] = {}
    train(restarted, resumed, 8, start=7, optimizer=optimizer, seen=later)
    resumed.close()
    with GammaTrajectoryStore.open(tmp_path / "s") as store:
        steps, values = store.history()
        lrs = store.lrs
    np.testing.assert_array_equal(steps, [2, 4, 6, 8, 10, 12, 14])
    width = values.shape[1]
    assert not np.array_equal(seen[8], later[8])
    np.testing.assert_array_equal(values[3], seen[8][:width])  # the first run's step 8 is kept
    np.testing.assert_array_equal(values[5], later[12][:width])
    np.testing.assert_allclose(lrs, [0.1] * 5 + [0.05] * 2)


def test_resume_rejects_another_model(tmp_path):
    net = make_net()
    recorder = GammaRecorder(net, tmp_path / "s")
    recorder.step(1)
    state = recorder.state_dict()
    recorder.close()
    with pytest.raises(LayoutError, match="layout mismatch"):
        GammaRecorder(make_net(width=5), tmp_path / "s").load_state_dict(state)
    other = GammaRecorder(net, tmp_path / "s")
    with pytest.raises(ConfigError, match="different model architecture"):
        other.load_state_dict({**state, "fingerprint": "sha256:0"})
    with pytest.raises(ConfigError, match="not a GammaRecorder state"):
        other.load_state_dict({"layout": []})


def test_reopened_store_of_another_architecture_is_refused(tmp_path):
    net = make_net()
    GammaTrajectoryStore.create(
        tmp_path / "s", GammaRecorder(net, tmp_path / "x").layout, fingerprint="sha256:other"
    ).close()
    recorder = GammaRecorder(net, tmp_path / "s")
    recorder.load_state_dict(GammaRecorder(net, tmp_path / "y").state_dict())
    with pytest.raises(StoreError, match="different model architecture"):
        recorder.step(1)


def test_misuse_raises_clear_errors(tmp_path):
    net = make_net()
    recorder = GammaRecorder(net, tmp_path / "s")
    recorder.step(5)
    with pytest.raises(ConfigError, match="steps must increase; got step 5 after step 5"):
        recorder.step(5)
    with pytest.raises(ConfigError, match="before the first step"):
        recorder.load_state_dict(recorder.state_dict())
    with pytest.raises(ConfigError, match="integer >= 0"):
        recorder.step(-1)
    recorder.close()
    with pytest.raises(ConfigError, match="closed"):
        recorder.step(6)
    taken = GammaRecorder(net, tmp_path / "s")
    for _ in range(2):  # the path is taken and overwrite=False; a retry fails the same way
        with pytest.raises(StoreError, match="exists|taken|not empty"):
            taken.step(1)
    for kwargs, fragment in [
        ({"every": 0}, "every must be a positive integer"),
        ({"lr_schedule": [[5, 0.1], [2, 0.01]]}, "strictly increase"),
        (
            {
                "lr_schedule": torch.optim.lr_scheduler.StepLR(
                    torch.optim.SGD(net.parameters(), lr=1.0), 2
                )
            },
            "total_steps",
        ),
    ]:
        with pytest.raises(ConfigError, match=fragment):
            GammaRecorder(net, tmp_path / "t", **kwargs)
    with pytest.raises(ConfigError, match="GammaTrajectoryStore or a directory path"):
        GammaRecorder(net, 42)


def test_given_store_must_be_writable_and_match(tmp_path):
    net = make_net()
    layout = GammaRecorder(net, tmp_path / "x").layout
    GammaTrajectoryStore.create(tmp_path / "s", layout).close()
    with GammaTrajectoryStore.open(tmp_path / "s") as read_only:
        with pytest.raises(ConfigError, match="not open for writing"):
            GammaRecorder(net, read_only)
    with GammaTrajectoryStore.open(tmp_path / "s", mode="a") as store:
        with pytest.raises(LayoutError):
            GammaRecorder(net, store, exclude="unused")
        with GammaRecorder(net, store) as recorder:
            recorder.step(1)
        assert not store.closed and len(store) == 1  # the caller's store stays the caller's


def test_diverged_gamma_is_rejected_and_earlier_snapshots_kept(tmp_path):
    net = make_net()
    recorder = GammaRecorder(net, tmp_path / "s", host_every=2)
    recorder.step(1)
    with torch.no_grad():
        net.features[1].weight[0] = float("nan")
    recorder.step(2)  # the batch [1, 2] goes to the writer, which rejects step 2
    with pytest.raises(StoreError, match="step 2 has 1 non-finite"):
        recorder.flush()
    recorder.close()
    with GammaTrajectoryStore.open(tmp_path / "s") as store:
        np.testing.assert_array_equal(store.steps, [1])
