"""forecastprune for ultralytics detectors (extra: ``pip install "forecastprune[ultralytics]"``).

* :func:`attach` / :class:`UltralyticsPruner` — sparse-train, record γ, prune once early and
  keep training, inside ``YOLO("yolov8n.yaml").train(...)`` (see :mod:`.callbacks`);
* :func:`prune_ultralytics_checkpoint` — prune a trained checkpoint from its recorded γ store;
  :class:`PrunedDetectionTrainer` fine-tunes the result as it is (``train(trainer=...)``);
* :class:`ForecastPruneDetectionTrainer` (and the Segmentation/Pose/OBB ones) with
  :func:`pruner_settings` — the same, on several GPUs (``train(trainer=..., forecastprune=...)``);
* :func:`make_shapes_dataset` — a small YOLO-format detection dataset drawn on the spot;
  :func:`make_clutter_dataset` — a harder one (six classes, several scales, occlusion, clutter);
* :func:`offline` — run ultralytics without any network access attempt.

ultralytics is licensed AGPL-3.0; it is imported only when one of these needs it, so
``import forecastprune`` never requires it. Names are imported on first use.
"""

from __future__ import annotations

from ..._util import lazy_attributes

_LAZY = {
    "attach": "callbacks",
    "UltralyticsPruner": "callbacks",
    "prune_ultralytics_checkpoint": "checkpoint",
    "PrunedCheckpoint": "checkpoint",
    "PrunedDetectionTrainer": "finetune",
    "pruner_settings": "callbacks",
    "ForecastPruneDetectionTrainer": "trainers",
    "ForecastPruneSegmentationTrainer": "trainers",
    "ForecastPrunePoseTrainer": "trainers",
    "ForecastPruneOBBTrainer": "trainers",
    "make_shapes_dataset": "shapes",
    "make_clutter_dataset": "clutter",
    "offline": "_deps",
    "import_ultralytics": "_deps",
}

__all__ = sorted(_LAZY)


__getattr__ = lazy_attributes(__name__, _LAZY)
