"""One corpus run of an ultralytics detector: trained by ultralytics, γ recorded by attach.

``YOLO("yolov8n.yaml")`` (no weights) trains on a :func:`make_shapes_dataset` set drawn in the
run's work folder, with ultralytics' defaults for everything the recipe does not name — so the
optimizer is ``auto`` (AdamW for runs this short), with its warm-up and linear LR decay, and
γ starts at 1.0. :func:`~forecastprune.integrations.ultralytics.attach` with ``prune_at=None``
adds the L1 term and records γ after every ``every``-th update; it never prunes. Nothing is
downloaded (``offline``, plots off, AMP off: its check fetches weights) and validation runs
once, after the last epoch, for the run's mAP50.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: ultralytics train arguments a recipe may set; the rest stay ultralytics' defaults
TRAIN_OVERRIDES = ("optimizer", "lr0", "momentum")


def record_detector(settings: dict[str, Any], work: Path) -> tuple[Path, float, dict[str, Any]]:
    """Train one detector run in ``work`` and record its γ.

    Args:
        settings: the run's settings from the corpus table (``model``, ``epochs``, ``imgsz``,
            ``batch``, ``nbs``, ``n_train``, ``n_val``, ``sparsity``, ``seed``, ``every``, and
            any of :data:`TRAIN_OVERRIDES`).
        work: an empty folder for the data set, ultralytics' outputs and the store.

    Returns:
        The recorded (float32) store's path, the final mAP50 on the validation images, and
        metadata worth keeping with the run (the optimizer ultralytics chose, its LR).
    """
    import torch

    from ..integrations.ultralytics import attach, make_shapes_dataset, offline

    data = make_shapes_dataset(
        work / "data",
        n_train=settings["n_train"],
        n_val=settings["n_val"],
        imgsz=settings["imgsz"],
        seed=settings["seed"],
    )
    with offline(), _quiet():
        from ultralytics import YOLO

        torch.manual_seed(settings["seed"])
        model = YOLO(settings["model"])
        pruner = attach(
            model,
            forecaster="naive",
            prune_at=None,
            sparsity=settings["sparsity"],
            store_path=work / "gammas.fpstore",
            record_every=settings["every"],
        )
        model.train(
            **{key: settings[key] for key in TRAIN_OVERRIDES if key in settings},
            data=str(data),
            epochs=settings["epochs"],
            imgsz=settings["imgsz"],
            batch=settings["batch"],
            nbs=settings["nbs"],
            workers=0,
            plots=False,
            val=False,
            device="cpu",
            amp=False,
            seed=settings["seed"],
            deterministic=True,
            verbose=False,
            project=str(work / "runs"),
            name="train",
            exist_ok=True,
        )
    trainer = model.trainer
    group = trainer.optimizer.param_groups[0]
    extra = {
        "optimizer": type(trainer.optimizer).__name__,
        "lr": float(group.get("initial_lr", group["lr"])),
        "updates": pruner.updates,
    }
    return Path(pruner.store_path), float(trainer.metrics.get("metrics/mAP50(B)", 0.0)), extra


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """ultralytics' logger at warnings only (it prints every layer and epoch otherwise), so a
    corpus build shows its own progress bar."""
    logger = logging.getLogger("ultralytics")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
