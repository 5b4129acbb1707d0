"""Fine-tune a pruned checkpoint without ultralytics rebuilding the unpruned network.

``YOLO("pruned.pt").train(...)`` builds a fresh model from the checkpoint's yaml — the
*original* widths — and copies over only the tensors whose shapes still match, so a pruned
checkpoint would silently train as a mostly re-initialised full-size model. This trainer
trains the checkpoint's own (pruned) module instead::

    from forecastprune.integrations.ultralytics import PrunedDetectionTrainer

    YOLO("best-pruned.pt").train(data="data.yaml", epochs=20, trainer=PrunedDetectionTrainer)

Importing this module imports ultralytics.
"""

from __future__ import annotations

import copy
from typing import Any

from torch import nn

from ...errors import ConfigError
from ._deps import import_ultralytics

import_ultralytics()

from ultralytics.models.yolo.detect import DetectionTrainer  # noqa: E402


class PrunedDetectionTrainer(DetectionTrainer):
    """A ``DetectionTrainer`` that trains the loaded checkpoint's module as it is."""

    def get_model(
        self, cfg: Any = None, weights: nn.Module | None = None, verbose: bool = True
    ) -> nn.Module:
        """A trainable copy of ``weights`` (the model ``YOLO("pruned.pt")`` loaded).

        Raises:
            ConfigError: without a loaded checkpoint, or when its classes differ from the data's.
        """
        if not isinstance(weights, nn.Module):
            raise ConfigError(
                "PrunedDetectionTrainer fine-tunes a loaded checkpoint; start from "
                "YOLO('pruned.pt'), not from a yaml, and do not pass pretrained=False"
            )
        if int(weights.nc) != int(self.data["nc"]):
            raise ConfigError(
                f"the checkpoint detects {weights.nc} classes but the dataset has "
                f"{self.data['nc']}; fine-tune a pruned model on data with the same classes"
            )
        model = copy.deepcopy(weights).float()
        model.requires_grad_(True)  # saved EMA weights are frozen
        return self.set_model_names_for_load(model)
