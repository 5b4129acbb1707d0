"""Trainer classes that carry the pruner into ultralytics' multi-GPU worker processes.

On several devices ultralytics does not train in the calling process: it pickles the trainer's
class and its arguments, launches ``torchrun`` on a generated script, and every worker builds
the trainer anew from them. Callbacks added with ``model.add_callback`` (what :func:`attach`
does) belong to the calling process, so these classes carry the pruner's settings in the
trainer's own arguments instead, and every worker builds its pruner from them::

    from forecastprune.integrations.ultralytics import (ForecastPruneDetectionTrainer,
                                                        pruner_settings)

    YOLO("yolov8n.yaml").train(data="data.yaml", epochs=100, device="0,1",
                               trainer=ForecastPruneDetectionTrainer,
                               forecastprune=pruner_settings(spec=PruneSpec(ratio=0.3),
                                                             store_path="gammas"))

In the workers the pruner runs under ``torch.distributed`` as the library's own pipeline does
(:class:`~forecastprune.pipeline.EarlyPruner`): rank 0 records γ and decides, the decision is
broadcast, every rank cuts the same channels, re-wraps DDP and rebuilds its optimizer and EMA.
Rank 0 writes what the pruner did to ``<save_dir>/forecastprune.json``. The same classes train
on one device too (no torchrun), then exactly as :func:`attach` does.

Importing this module imports ultralytics.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..._util import atomic_write_bytes, is_rank_zero
from ...errors import ConfigError
from ._deps import import_ultralytics
from .callbacks import UltralyticsPruner, pruner_options, pruner_settings

import_ultralytics()

from ultralytics.models.yolo.detect import DetectionTrainer  # noqa: E402
from ultralytics.models.yolo.obb import OBBTrainer  # noqa: E402
from ultralytics.models.yolo.pose import PoseTrainer  # noqa: E402
from ultralytics.models.yolo.segment import SegmentationTrainer  # noqa: E402
from ultralytics.utils import DEFAULT_CFG  # noqa: E402

#: the trainer argument that carries the settings (a plain dict: it is pickled for the workers)
SETTINGS_KEY = "forecastprune"
SUMMARY_FILE = "forecastprune.json"

__all__ = [
    "SETTINGS_KEY",
    "ForecastPruneDetectionTrainer",
    "ForecastPruneOBBTrainer",
    "ForecastPrunePoseTrainer",
    "ForecastPruneSegmentationTrainer",
    "ForecastPruneTrainerMixin",
    "pruner_settings",
]


class ForecastPruneTrainerMixin:
    """Builds an :class:`~.callbacks.UltralyticsPruner` in the process that trains.

    Mixed in before an ultralytics trainer class. Expects the settings under the
    ``forecastprune`` training argument (see :func:`pruner_settings`).
    """

    def __init__(
        self,
        cfg: Any = DEFAULT_CFG,
        overrides: dict[str, Any] | None = None,
        _callbacks: dict[str, list[Any]] | None = None,
    ) -> None:
        overrides = dict(overrides or {})  # the caller's dict stays as it was
        settings = overrides.pop(SETTINGS_KEY, None)
        if not isinstance(settings, dict):
            raise ConfigError(
                f"{type(self).__name__} needs the pruner's settings as a training argument; got "
                f"{SETTINGS_KEY}={settings!r}. Pass train(..., trainer={type(self).__name__}, "
                f"{SETTINGS_KEY}=pruner_settings(spec=PruneSpec(ratio=0.3), ...))"
            )
        self.forecastprune = pruner_settings(**settings)
        self.pruner: UltralyticsPruner | None = None
        super().__init__(cfg, overrides, _callbacks)  # type: ignore[call-arg]

    def train(self) -> Any:
        """Train here (one device, or a DDP worker) with the pruner, or launch the workers."""
        if self.ddp:  # type: ignore[attr-defined]
            # the launching process: ultralytics pickles vars(self.args) for the workers, so the
            # settings ride along there; elsewhere (validators, checkpoints) they would be an
            # unknown argument, so they are there only while the workers are launched
            args = self.args  # type: ignore[attr-defined]
            setattr(args, SETTINGS_KEY, self.forecastprune)
            try:
                return super().train()  # type: ignore[misc]
            finally:
                delattr(args, SETTINGS_KEY)
        self.pruner = UltralyticsPruner(**pruner_options(self.forecastprune))
        for event, callback in self.pruner.callbacks().items():
            self.add_callback(event, callback)  # type: ignore[attr-defined]
        self.add_callback("on_train_end", self._write_summary)  # type: ignore[attr-defined]
        return super().train()  # type: ignore[misc]

    def _write_summary(self, trainer: Any) -> None:
        if self.pruner is None or not is_rank_zero():
            return
        path = Path(self.save_dir) / SUMMARY_FILE  # type: ignore[attr-defined]
        atomic_write_bytes(path, json.dumps(self.pruner.summary(), indent=2).encode())


class ForecastPruneDetectionTrainer(ForecastPruneTrainerMixin, DetectionTrainer):
    """ultralytics' ``DetectionTrainer`` with the forecastprune pruner, on any device count."""


class ForecastPruneSegmentationTrainer(ForecastPruneTrainerMixin, SegmentationTrainer):
    """ultralytics' ``SegmentationTrainer`` with the forecastprune pruner."""


class ForecastPrunePoseTrainer(ForecastPruneTrainerMixin, PoseTrainer):
    """ultralytics' ``PoseTrainer`` with the forecastprune pruner."""


class ForecastPruneOBBTrainer(ForecastPruneTrainerMixin, OBBTrainer):
    """ultralytics' ``OBBTrainer`` with the forecastprune pruner."""
