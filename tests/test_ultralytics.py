"""The ultralytics integration on real detection data drawn locally (nothing is downloaded).

One short yolov8n run (64×64 shapes, 5 epochs, ~40 optimizer updates) trains with BN-L1,
records γ, prunes at 40 % and keeps training; the tests then read what it left behind.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from forecastprune.engine.spec import PruneSpec
from forecastprune.errors import ConfigError
from forecastprune.integrations.ultralytics import (
    attach,
    make_shapes_dataset,
    offline,
    prune_ultralytics_checkpoint,
)
from forecastprune.integrations.ultralytics.plan import plan_updates, planned_lr_schedule
from forecastprune.store import GammaTrajectoryStore

pytestmark = pytest.mark.slow  # real training or several processes: seconds each

HAS_ULTRALYTICS = importlib.util.find_spec("ultralytics") is not None
NO_EXTRA = 'needs the ultralytics extra (pip install "forecastprune[ultralytics]")'
needs_ultralytics = pytest.mark.skipif(not HAS_ULTRALYTICS, reason=NO_EXTRA)

EPOCHS, BATCHES, SPARSITY = 5, 8, 1e-3  # 64 images / batch 8; nbs=8 -> one update per batch
PROBED = "model.2.cv1.bn"


# -------------------------------------------------------------------- no ultralytics needed
def test_plan_updates_follows_accumulation_and_warmup():
    assert plan_updates(10, 3, warmup=0, accumulate=1).total == 30
    # without warm-up an update happens every 4th batch, counted across epoch boundaries
    plan = plan_updates(10, 3, warmup=0, accumulate=4)
    assert plan.total == 7 and plan.epoch_starts == (1, 3, 6)
    # warm-up ramps accumulate from 1, so the early batches update more often
    assert plan_updates(10, 3, warmup=10, accumulate=4).total > 7


def test_planned_lr_schedule_lists_each_epoch_from_its_first_update():
    plan = plan_updates(4, 3, warmup=0, accumulate=1)
    schedule = planned_lr_schedule(plan, 0.1, lambda epoch: 1.0 - 0.25 * epoch)
    assert [step for step, _ in schedule] == [1, 5, 9]
    assert [lr for _, lr in schedule] == pytest.approx([0.1, 0.075, 0.05])


def test_the_default_forecaster_is_auto_as_everywhere_else():
    import inspect

    from forecastprune.cli.prune_cmd import prune
    from forecastprune.integrations.ultralytics.callbacks import UltralyticsPruner

    assert UltralyticsPruner().options["forecaster"] == "auto"
    signature = inspect.signature(prune_ultralytics_checkpoint)
    assert signature.parameters["forecaster"].default == "auto"
    assert next(o for o in prune.params if o.name == "spec").default == "auto"


def test_shapes_dataset_is_valid_yolo_and_deterministic(tmp_path):
    data = make_shapes_dataset(tmp_path / "a", n_train=6, n_val=2, imgsz=48, seed=3)
    again = make_shapes_dataset(tmp_path / "b", n_train=6, n_val=2, imgsz=48, seed=3)
    config = yaml.safe_load(data.read_text())
    assert config["names"] == {0: "square", 1: "disc", 2: "triangle"}
    labels = sorted((tmp_path / "a" / "labels" / "train").glob("*.txt"))
    images = sorted((tmp_path / "a" / "images" / "train").glob("*.png"))
    assert len(labels) == len(images) == 6
    rows = np.array(
        [[float(v) for v in line.split()] for f in labels for line in f.read_text().splitlines()]
    )
    assert set(rows[:, 0]) <= {0.0, 1.0, 2.0}
    assert ((rows[:, 1:] > 0) & (rows[:, 1:] <= 1)).all()
    assert (
        labels[0].read_text() == (tmp_path / "b" / "labels" / "train" / labels[0].name).read_text()
    )
    assert again.exists()
    with pytest.raises(ConfigError, match="not empty"):
        make_shapes_dataset(tmp_path / "a")


def test_the_integration_imports_without_ultralytics():
    code = (
        "import sys; from forecastprune.integrations.ultralytics import attach, "
        "make_shapes_dataset, prune_ultralytics_checkpoint; "
        "print(sorted({'ultralytics', 'torchvision'} & set(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[1],
    )
    assert out.stdout.strip() == "[]"  # AGPL ultralytics loads only when a function needs it


def test_attach_refuses_a_plain_module():
    with pytest.raises(ConfigError, match="ultralytics model"):
        attach(torch.nn.Conv2d(1, 1, 1))


@needs_ultralytics
def test_saveable_keeps_split_widths_and_pickles():
    import io

    from forecastprune.engine import plan_channels, prune_model, select_channels
    from forecastprune.integrations.ultralytics.fixups import saveable

    with offline():
        from ultralytics.nn.tasks import DetectionModel

        model = DetectionModel("yolov8n.yaml", nc=3, verbose=False).eval()
    x = torch.rand(1, 3, 64, 64)
    plan = plan_channels(model, x, policy="grouped")
    scores = np.random.default_rng(0).random(plan.layout.total)
    decision = select_channels(scores, plan, PruneSpec(ratio=0.3))
    pruned = saveable(model, prune_model(model, decision, x, plan=plan))
    blocks = [m for m in pruned.modules() if type(m).__name__ == "C2f"]
    assert any(
        m.c < o.c for m, o in zip(blocks, (m for m in model.modules() if type(m).__name__ == "C2f"))
    )
    chunked = pruned(x)
    for block in blocks:  # what ultralytics' exporter does
        block.forward = block.forward_split
    torch.testing.assert_close(pruned(x), chunked)
    torch.save(pruned, io.BytesIO())  # no surgery record (weak references) left to pickle


# -------------------------------------------------------------------- one real training run
class _NetworkGuard:
    """Records (and refuses) every name lookup or connection attempted inside the block."""

    def __init__(self) -> None:
        self.attempts: list[str] = []

    def __enter__(self) -> _NetworkGuard:
        self._saved = socket.getaddrinfo, socket.socket.connect, socket.create_connection

        def refuse(*args, **kwargs):
            self.attempts.append(repr(args[:2]))
            raise OSError("network access attempted during an offline test")

        socket.getaddrinfo = socket.create_connection = refuse
        socket.socket.connect = refuse
        return self

    def __exit__(self, *exc) -> None:
        socket.getaddrinfo, socket.socket.connect, socket.create_connection = self._saved


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    if not HAS_ULTRALYTICS:
        pytest.skip(NO_EXTRA)
    root = tmp_path_factory.mktemp("yolo")
    data = make_shapes_dataset(root / "data", n_train=64, n_val=16, imgsz=64)
    probes: dict[str, list[torch.Tensor]] = {"before": [], "after": []}
    with _NetworkGuard() as guard, offline():
        from ultralytics import YOLO

        model = YOLO("yolov8n.yaml")
        model.add_callback("on_train_start", _probe(probes["before"]))
        pruner = attach(
            model,
            forecaster="sma",
            spec=PruneSpec(ratio=0.3, policy="grouped"),
            prune_at=0.4,
            sparsity=SPARSITY,
            store_path=root / "gammas.fpstore",
        )
        model.add_callback("on_train_start", _probe(probes["after"]))
        results = model.train(
            data=str(data),
            epochs=EPOCHS,
            imgsz=64,
            batch=8,
            nbs=8,
            warmup_epochs=1,
            workers=0,
            plots=False,
            device="cpu",
            amp=False,
            project=str(root / "runs"),
            name="train",
            save_period=1,
            seed=0,
            verbose=False,
        )
    return {
        "root": root,
        "data": data,
        "pruner": pruner,
        "results": results,
        "trainer": model.trainer,
        "probes": probes,
        "network": guard.attempts,
    }


def _probe(into: list[torch.Tensor]):
    """A callback hooking the optimizer to copy one BN's γ gradient at the first update."""

    def on_train_start(trainer):
        bn = trainer.model.get_submodule(PROBED)

        def hook(optimizer, args, kwargs):
            if not into:
                into.append(torch.stack([bn.weight.grad.clone(), bn.weight.detach().clone()]))

        trainer.optimizer.register_step_pre_hook(hook)

    return on_train_start


@needs_ultralytics
def test_l1_is_added_to_the_gradient_right_before_the_step(run):
    (grad_before, gamma), (grad_after, _) = run["probes"]["before"][0], run["probes"]["after"][0]
    torch.testing.assert_close(grad_after - grad_before, SPARSITY * torch.sign(gamma))


@needs_ultralytics
def test_prunes_once_early_and_training_continues_smaller(run):
    pruner, trainer = run["pruner"], run["trainer"]
    assert pruner.update_plan.total == EPOCHS * BATCHES == pruner.updates
    assert pruner.pruned_at == round(0.4 * EPOCHS * BATCHES)
    before, after = pruner.params
    assert after < 0.95 * before
    assert sum(p.numel() for p in trainer.model.parameters()) == after
    assert sum(p.numel() for p in trainer.ema.ema.parameters()) == after
    # the optimizer the trainer stepped after the prune holds exactly the smaller model's params
    held = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert held == {id(p) for p in trainer.model.parameters()}
    assert trainer.scheduler.optimizer is trainer.optimizer


@needs_ultralytics
def test_store_holds_the_sparse_phase_with_learning_rates(run):
    with GammaTrajectoryStore.open(run["pruner"].store_path) as store:
        assert list(store.steps) == list(range(1, run["pruner"].pruned_at + 1))
        assert store.metadata["total_steps"] == EPOCHS * BATCHES
        # warm-up (epoch 1) ramps the LR up from 0; after it, the recorded LR is the planned one
        lrs, schedule = store.lrs, store.metadata["lr_schedule"]
        assert lrs[0] == 0.0 and (np.diff(lrs[:BATCHES]) > 0).all()
        assert [step for step, _ in schedule] == [1 + BATCHES * e for e in range(EPOCHS)]
        np.testing.assert_allclose(lrs[BATCHES : 2 * BATCHES], schedule[1][1], rtol=1e-6)
        assert store.metadata["model"] == "ultralytics:yolov8n.yaml"


@needs_ultralytics
def test_validation_metrics_are_computed_after_the_prune(run):
    metrics = run["results"].results_dict
    for key in ("metrics/mAP50(B)", "metrics/mAP50-95(B)", "metrics/precision(B)"):
        assert math.isfinite(metrics[key]) and 0.0 <= metrics[key] <= 1.0
    assert len((run["root"] / "runs" / "train" / "results.csv").read_text().splitlines()) == (
        EPOCHS + 1
    )


@needs_ultralytics
def test_best_checkpoint_loads_validates_and_exports_pruned(run):
    from ultralytics import YOLO

    best = run["root"] / "runs" / "train" / "weights" / "best.pt"
    with _NetworkGuard() as guard, offline():
        model = YOLO(str(best))
        assert sum(p.numel() for p in model.model.parameters()) == run["pruner"].params[1]
        metrics = model.val(
            data=str(run["data"]),
            imgsz=64,
            batch=16,
            device="cpu",
            plots=False,
            verbose=False,
            project=str(run["root"] / "val"),
        )
        assert math.isfinite(metrics.box.map)
        exported = Path(YOLO(str(best)).export(format="torchscript", imgsz=64, device="cpu"))
        scripted = torch.jit.load(str(exported))
        # boxes (4) + 3 class scores for the 8×8 + 4×4 + 2×2 anchors of strides 8, 16, 32
        assert tuple(scripted(torch.zeros(1, 3, 64, 64)).shape) == (1, 7, 84)
    assert guard.attempts == [] and run["network"] == []


@needs_ultralytics
def test_prune_checkpoint_from_the_store(run, tmp_path):
    # epoch0.pt was saved before the prune (update 16 ends epoch 1), so it has the store's layers
    source = run["root"] / "runs" / "train" / "weights" / "epoch0.pt"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    out = tmp_path / "pruned.pt"
    result = prune_ultralytics_checkpoint(
        source,
        run["pruner"].store_path,
        out,
        cutoff=0.2,
        spec=PruneSpec(ratio=0.3, policy="grouped"),
    )
    assert hashlib.sha256(source.read_bytes()).hexdigest() == digest
    assert result.params_after < 0.95 * result.params_before
    assert result.cutoff_step == 8 and result.target_step == EPOCHS * BATCHES
    from ultralytics import YOLO

    from forecastprune.integrations.ultralytics import PrunedDetectionTrainer

    with offline():
        loaded = YOLO(str(out))
        assert sum(p.numel() for p in loaded.model.parameters()) == result.params_after
        # fine-tuning trains the pruned module itself, not a rebuild from the original yaml
        loaded.train(
            data=str(run["data"]),
            epochs=1,
            imgsz=64,
            batch=8,
            nbs=8,
            workers=0,
            plots=False,
            device="cpu",
            amp=False,
            project=str(tmp_path),
            name="tune",
            verbose=False,
            trainer=PrunedDetectionTrainer,
        )
    tuned = sum(p.numel() for p in loaded.trainer.model.parameters())
    assert tuned == result.params_after
    with pytest.raises(ConfigError, match="exists"):
        prune_ultralytics_checkpoint(source, run["pruner"].store_path, out)
    with pytest.raises(ConfigError, match="differ"):
        prune_ultralytics_checkpoint(source, run["pruner"].store_path, source, overwrite=True)


@needs_ultralytics
def test_prune_command_takes_an_ultralytics_checkpoint(run, tmp_path):
    from click.testing import CliRunner

    from forecastprune.cli import cli

    source = run["root"] / "runs" / "train" / "weights" / "epoch0.pt"
    out = tmp_path / "cli-pruned.pt"
    args = [
        "prune",
        "--ultralytics",
        str(source),
        "--store",
        str(run["pruner"].store_path),
        "--forecaster",
        "sma",
        "--cutoff",
        "0.2",
        "--ratio",
        "0.3",
        "--policy",
        "grouped",
        "--out",
        str(out),
    ]
    with offline():
        done = CliRunner().invoke(cli, args)
    assert done.exit_code == 0, done.output
    assert f"wrote {out}" in done.output and "params" in done.output and out.exists()
    mixed = CliRunner().invoke(cli, [*args[:-1], str(tmp_path / "x.pt"), "--random-init"])
    assert mixed.exit_code == 2 and "apply to zoo models" in mixed.output
    no_store = CliRunner().invoke(
        cli, ["prune", "--ultralytics", str(source), "--out", str(tmp_path / "y.pt")]
    )
    assert no_store.exit_code == 2 and "pass --store" in no_store.output


@needs_ultralytics
def test_prune_checkpoint_removes_blocks_too(run, tmp_path):
    from click.testing import CliRunner

    from forecastprune.cli import cli

    source = run["root"] / "runs" / "train" / "weights" / "epoch0.pt"
    out = tmp_path / "shallow.pt"
    args = [
        "prune",
        "--ultralytics",
        str(source),
        "--store",
        str(run["pruner"].store_path),
        "--forecaster",
        "sma",
        "--cutoff",
        "0.2",
        "--ratio",
        "0.2",
        "--blocks",
        "2",
        "--out",
        str(out),
    ]
    with offline():
        done = CliRunner().invoke(cli, args)
        assert done.exit_code == 0, done.output
        from ultralytics import YOLO

        loaded = YOLO(str(out))
        names = {n for n, _ in loaded.model.named_modules()}
        from ultralytics.nn.tasks import torch_safe_load  # its restricted loader

        removed = torch_safe_load(str(out), safe_only=True)[0]["forecastprune"]["blocks"]
        assert len(removed) == 2 and not set(removed) & names
        assert f"removed residual blocks: {', '.join(removed)}" in done.output
        loaded.predict(torch.zeros(1, 3, 64, 64), verbose=False)
