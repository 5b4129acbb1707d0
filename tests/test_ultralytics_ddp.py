"""Multi-GPU training through ultralytics' own DDP launch, with two CPU ranks on ``gloo``.

The calling process runs ``YOLO(...).train(device="0,1", trainer=...)`` as a user would;
ultralytics writes its worker script and starts ``torchrun``; each worker re-creates the trainer
from the pickled class and arguments — the pruner settings travel in those arguments. Only the
device selection is patched (see ``_ultralytics_ddp``). About a minute on two cores.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_ultralytics import needs_ultralytics

from forecastprune.store import GammaTrajectoryStore

TESTS = Path(__file__).resolve().parent


def _calling_process(root: Path, mode: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), str(TESTS.parent), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    env["YOLO_CONFIG_DIR"] = str(root / "config")  # the DDP script is written there
    code = f"import _ultralytics_ddp as h; h.main({str(root)!r}, {mode!r})"
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    done = _calling_process(root, "train")
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    return root, json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@needs_ultralytics
def test_both_ranks_prune_the_same_channels_and_rank0_alone_records(ddp_run):
    import _ultralytics_ddp as h

    root, final = ddp_run
    ranks = [torch.load(root / f"rank{r}.pt", weights_only=True) for r in range(h.WORLD)]
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["world"] == h.WORLD for r in ranks)
    updates = h.EPOCHS * h.N_TRAIN // h.BATCH
    for result in ranks:
        assert result["pruned_at"] == h.PRUNE_STEP and result["updates"] == updates
    a, b = (r["state"] for r in ranks)
    assert a.keys() == b.keys()
    for name in ranks[0]["params"]:  # DDP keeps the weights equal; the cut must be equal too
        assert torch.equal(a[name], b[name]), name
    from forecastprune.integrations.ultralytics import import_ultralytics

    import_ultralytics()
    from ultralytics.nn.tasks import DetectionModel

    dense = sum(p.numel() for p in DetectionModel("yolov8n.yaml", nc=3, verbose=False).parameters())
    pruned = sum(a[name].numel() for name in ranks[0]["params"])
    assert pruned < 0.95 * dense and ranks[0]["ema"] == ranks[1]["ema"] == pruned
    # the checkpoint the calling process loads after training is the pruned model
    assert final["params"] == pruned
    # rank 0 recorded the sparse phase; rank 1 wrote no store; rank 0 wrote the summary
    with GammaTrajectoryStore.open(root / "gammas.fpstore") as store:
        assert store.steps.tolist() == list(range(1, h.PRUNE_STEP + 1))
    assert sorted(p.name for p in root.iterdir() if p.name.endswith(".fpstore")) == [
        "gammas.fpstore"
    ]
    summary = json.loads((root / "runs" / "train" / "forecastprune.json").read_text())
    assert summary["pruner"]["pruned_at"] == h.PRUNE_STEP and summary["params"][1] == pruned


@pytest.mark.slow
@needs_ultralytics
def test_attach_on_several_devices_refuses_in_one_line(tmp_path):
    done = _calling_process(tmp_path, "attach")
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    refused = [line for line in done.stdout.splitlines() if line.startswith("refused: ")]
    assert len(refused) == 1, done.stdout[-2000:]
    assert "attach() cannot follow training on several devices" in refused[0]
    assert "ForecastPruneDetectionTrainer" in refused[0]
    assert not (tmp_path / "rank0.pt").exists()  # no worker ever trained


def test_settings_are_checked_when_built_and_travel_as_plain_values(tmp_path):
    from forecastprune.engine.spec import PruneSpec
    from forecastprune.errors import ForecastPruneError
    from forecastprune.integrations.ultralytics import pruner_settings
    from forecastprune.integrations.ultralytics.callbacks import pruner_options

    spec = PruneSpec(ratio=0.3, policy="grouped")
    settings = pruner_settings(spec=spec, prune_at="step:4", store_path=tmp_path / "g")
    assert settings == {
        "spec": spec.to_json(),
        "prune_at": "step:4",
        "store_path": str(tmp_path / "g"),
    }
    assert pruner_options(settings)["spec"] == spec  # the workers rebuild the same spec
    assert pruner_settings(prune_at=None) == {"prune_at": None}
    with pytest.raises(ForecastPruneError, match="ratio"):
        pruner_settings(spec={"ratio": 1.5})
    with pytest.raises(ForecastPruneError, match="no-such-forecaster"):
        pruner_settings(forecaster="no-such-forecaster")
    with pytest.raises(ForecastPruneError, match=r"unknown pruner settings \['ratoi'\]"):
        pruner_settings(ratoi=0.3)


@needs_ultralytics
def test_every_task_has_a_trainer_class_and_it_asks_for_the_settings():
    from forecastprune.errors import ConfigError
    from forecastprune.integrations.ultralytics import trainers

    tasks = {
        "Detection": "DetectionTrainer",
        "Segmentation": "SegmentationTrainer",
        "Pose": "PoseTrainer",
        "OBB": "OBBTrainer",
    }
    for task, base in tasks.items():
        cls = getattr(trainers, f"ForecastPrune{task}Trainer")
        assert base in [b.__name__ for b in cls.__mro__]
    overrides = {"data": "data.yaml", "forecastprune": "ratio=0.3"}
    with pytest.raises(ConfigError, match=r"forecastprune=pruner_settings\(spec=PruneSpec"):
        trainers.ForecastPruneDetectionTrainer(overrides=overrides)
    assert overrides["forecastprune"] == "ratio=0.3"  # the caller's dict is left as it was
