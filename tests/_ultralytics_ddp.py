"""ultralytics' real multi-GPU path, on CPU: two ``gloo`` ranks under ``torchrun``.

ultralytics launches DDP training itself: the calling process pickles the trainer's class and
arguments, runs ``python -m torch.distributed.run`` on a generated script, and each worker
re-creates the trainer. All of that runs here unchanged; only the *device selection* is
patched, because this machine has no GPU:

* ``select_device`` returns the CPU, and a multi-device request (``device="0,1"``) still counts
  as two devices (ultralytics counts CPU runs as zero);
* each worker joins the process group on ``gloo`` with the CPU as its device;
* DDP wraps CPU modules without ``device_ids`` (ultralytics passes the GPU index);
* the validator of a DDP rank runs on the CPU (ultralytics asks CUDA for the current device).

Importing this module applies the patches; the workers import it when they unpickle
:class:`CPUTrainer`, so they run patched too. ``main`` is the calling process.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from forecastprune.engine.spec import PruneSpec
from forecastprune.integrations.ultralytics import make_shapes_dataset, offline

with offline():  # ultralytics reads YOLO_OFFLINE on import
    import ultralytics.engine.trainer as engine
    import ultralytics.engine.validator as validation

from forecastprune.integrations.ultralytics.trainers import ForecastPruneDetectionTrainer

WORLD = 2
EPOCHS, BATCH, N_TRAIN = 3, 8, 32  # 4 images per rank and batch: 4 updates per epoch
RATIO, PRUNE_STEP = 0.3, 6
PRUNE_AT = f"step:{PRUNE_STEP}"


def _select_device(*args, **kwargs) -> torch.device:
    return torch.device("cpu")


_init = engine.BaseTrainer.__init__


def _trainer_init(self, *args, **kwargs) -> None:
    _init(self, *args, **kwargs)
    devices = len(str(self.args.device).split(","))
    if devices > 1:  # what ultralytics concludes for device="0,1" on a machine with GPUs
        self.world_size = devices
        self.ddp = engine.LOCAL_RANK == -1


def _setup_ddp(self) -> None:
    self.device = torch.device("cpu")
    dist.init_process_group("gloo", rank=engine.RANK, world_size=self.world_size)


class _CPUDistributedDataParallel(DistributedDataParallel):
    def __init__(self, module, device_ids=None, **kwargs) -> None:
        super().__init__(module, device_ids=None if device_ids == [None] else device_ids, **kwargs)


class _CPUBackend:
    @staticmethod
    def current_device() -> int:
        return 0


_AutoBackend = validation.AutoBackend


def _cpu_auto_backend(*args, **kwargs):
    return _AutoBackend(*args, **{**kwargs, "device": torch.device("cpu")})


engine.select_device = _select_device
validation.get_torch_device_backend = lambda device_type: _CPUBackend
validation.AutoBackend = _cpu_auto_backend
engine.BaseTrainer.__init__ = _trainer_init
engine.BaseTrainer._setup_ddp = _setup_ddp
torch.nn.parallel.DistributedDataParallel = _CPUDistributedDataParallel


class CPUTrainer(ForecastPruneDetectionTrainer):
    """The library's trainer class, defined here so that the workers import the patches."""

    def train(self):
        if not self.ddp:
            self.add_callback("on_train_epoch_end", _dump_rank)
        return super().train()


def _dump_rank(trainer) -> None:
    """Each rank's model after every epoch (the last one stays): its weights, its pruner."""
    from forecastprune.core.bn_layers import unwrap_model

    model = unwrap_model(trainer.model)
    rank = dist.get_rank() if dist.is_initialized() else -1
    torch.save(
        {
            "rank": rank,
            "world": dist.get_world_size() if dist.is_initialized() else 1,
            "pruned_at": trainer.pruner.pruned_at,
            "updates": trainer.pruner.updates,
            "params": [name for name, _ in model.named_parameters()],
            "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "ema": sum(p.numel() for p in trainer.ema.ema.parameters()),
        },
        Path(os.environ["FP_DDP_OUT"]) / f"rank{rank}.pt",
    )


def main(root: str, mode: str) -> None:
    """The calling process: ``train`` through the trainer class, or ``attach`` (must refuse)."""
    from forecastprune.errors import ConfigError
    from forecastprune.integrations.ultralytics import attach, pruner_settings

    out = Path(root)
    os.environ["FP_DDP_OUT"] = str(out)
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    data = make_shapes_dataset(out / "data", n_train=N_TRAIN, n_val=8, imgsz=64)
    with offline():
        from ultralytics import YOLO

        model = YOLO("yolov8n.yaml")
        args = {
            "data": str(data),
            "epochs": EPOCHS,
            "imgsz": 64,
            "batch": BATCH,
            "nbs": BATCH,
            "warmup_epochs": 1,
            "workers": 0,
            "plots": False,
            "amp": False,
            "device": "0,1",
            "project": str(out / "runs"),
            "name": "train",
            "seed": 0,
            "verbose": False,
        }
        if mode == "attach":
            attach(model, spec=PruneSpec(ratio=RATIO), prune_at=PRUNE_AT)
            try:
                model.train(**args)
            except ConfigError as exc:
                print(f"refused: {exc}")
                return
            print("attach trained on several devices without refusing")
            sys.exit(1)
        settings = pruner_settings(
            forecaster="naive",
            spec=PruneSpec(ratio=RATIO),
            prune_at=PRUNE_AT,
            sparsity=1e-3,
            store_path=out / "gammas.fpstore",
        )
        model.train(trainer=CPUTrainer, forecastprune=settings, **args)
        print(json.dumps({"params": sum(p.numel() for p in model.model.parameters())}))


if __name__ == "__main__":
    raise SystemExit("import this module and call main(root, mode) (see test_ultralytics_ddp)")
