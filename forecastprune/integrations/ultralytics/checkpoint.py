"""Prune a trained ultralytics checkpoint with a forecast from its recorded γ store.

::

    result = prune_ultralytics_checkpoint("runs/detect/train/weights/best.pt",
                                          "runs/yolov8n-gammas.fpstore", "best-pruned.pt",
                                          forecaster="auto", cutoff=0.3,
                                          spec=PruneSpec(ratio=0.3, policy="grouped"))

The forecaster sees the γ history up to ``cutoff`` and predicts every channel's |γ| at the
run's planned last step; the engine picks the channels to cut and physically removes them from
the checkpoint's model (EMA weights when present, as ultralytics itself prefers). It is the
library's offline prune (:func:`~forecastprune.pipeline.offline.prune_from_store`, what
``forecastprune prune`` runs) with ultralytics' checkpoint format around it. The output is
an ordinary ultralytics checkpoint (``YOLO("best-pruned.pt")`` loads, validates and exports it)
written atomically; the input file is only read.

ultralytics checkpoints are pickles of whole modules. They are read with ultralytics' own
loader in its restricted mode (``weights_only=True`` against its allow-list of model classes),
so loading a checkpoint runs no code from it; a file outside that format is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...engine.spec import PruneSpec
from ...errors import ConfigError
from ._deps import import_ultralytics
from .fixups import saveable


@dataclass(frozen=True)
class PrunedCheckpoint:
    """What :func:`prune_ultralytics_checkpoint` wrote.

    Attributes:
        path: the output checkpoint.
        params_before: parameters of the input model.
        params_after: parameters of the pruned model.
        cutoff_step: the last recorded step the forecaster saw.
        target_step: the step whose γ it predicted.
        decision: the engine's decision summary (``PruneDecision.to_json()``).
        blocks: the residual blocks removed (empty without a block spec).
    """

    path: Path
    params_before: int
    params_after: int
    cutoff_step: int
    target_step: int
    decision: dict[str, Any]
    blocks: tuple[str, ...] = ()


def prune_ultralytics_checkpoint(
    checkpoint: str | Path,
    store: str | Path,
    out: str | Path,
    *,
    forecaster: str = "auto",
    cutoff: float | str = 0.3,
    spec: PruneSpec | None = None,
    imgsz: int | None = None,
    overwrite: bool = False,
    blocks: Any = None,
) -> PrunedCheckpoint:
    """Forecast from ``store``, prune the model in ``checkpoint`` and write ``out``.

    Args:
        checkpoint: an ultralytics ``.pt`` checkpoint (not modified).
        store: the γ store recorded while training it (same BatchNorm layers).
        out: the pruned checkpoint to write (must differ from ``checkpoint``).
        forecaster: a forecaster spec (``"auto"``, ``"sma"``, ``"arima(p=2,d=1,q=1)"``, ...);
            ``"auto"`` picks one by an in-history backtest (as everywhere); ``"naive"`` with
            ``cutoff=1.0`` is network slimming's prune by the final |γ|.
        cutoff: the history the forecaster sees: a fraction in (0, 1] of the run or
            ``"step:N"`` (as everywhere in forecastprune).
        spec: how channels are chosen (ratio or threshold, policy, floors); default
            ``PruneSpec()``, the same defaults as ``forecastprune prune``.
        imgsz: the square input size to trace at (default: the store's ``input_shape``, else
            the checkpoint's training ``imgsz``, else 640).
        overwrite: replace an existing ``out``.
        blocks: also remove residual blocks (C3/C2f/C3k2 bottlenecks) picked from the same
            forecast by this :class:`~forecastprune.engine.block_rule.BlockSpec`.

    Returns:
        A :class:`PrunedCheckpoint`.

    Raises:
        ConfigError: on missing files, or ``out`` equal to ``checkpoint`` or already present.
        LayoutError: if the store's layers do not match the checkpoint's model.
        ForecastPruneError: on a bad cutoff, forecaster, ratio or policy, or an impossible cut.
    """
    from ...pipeline.offline import prune_from_store
    from ...store import GammaTrajectoryStore

    source, target = _check_paths(checkpoint, out, overwrite)
    spec = spec if spec is not None else PruneSpec()
    ckpt = _load(source)
    model = _model_of(ckpt, source)
    with GammaTrajectoryStore.open(store) as gammas:
        size = imgsz or _input_size(gammas.metadata, ckpt)
        done = prune_from_store(
            model,
            gammas,
            forecaster,
            cutoff=cutoff,
            spec=spec,
            example_inputs=torch.zeros(1, 3, size, size),
            blocks=blocks,
        )
    pruned = saveable(model, done.model)
    prediction = done.prediction
    summary = {
        "store": str(store),
        "forecaster": prediction.forecaster,
        "cutoff_step": prediction.cutoff_step,
        "target_step": prediction.target_step,
        "policy": spec.policy,
        "decision": done.decision.to_json(),
        "blocks": list(done.blocks.removed) if done.blocks is not None else [],
    }
    # stored as ultralytics stores a finished model: half precision, frozen, no optimizer
    _save(
        {
            **ckpt,
            "model": pruned.half().requires_grad_(False),
            "ema": None,
            "optimizer": None,
            "updates": None,
            "forecastprune": summary,
        },
        target,
    )
    return PrunedCheckpoint(
        target,
        _count(model),
        _count(pruned),
        prediction.cutoff_step,
        prediction.target_step,
        summary["decision"],
        tuple(summary["blocks"]),
    )


def _check_paths(checkpoint: str | Path, out: str | Path, overwrite: bool) -> tuple[Path, Path]:
    source, target = Path(checkpoint), Path(out)
    if not source.is_file():
        # checked here: ultralytics' loader would try to download a missing name
        raise ConfigError(f"no checkpoint file at {source}; pass the path of a trained .pt file")
    if target.resolve() == source.resolve():
        raise ConfigError(
            f"out must differ from the input checkpoint {source}; the input is never modified"
        )
    if target.exists() and not overwrite:
        raise ConfigError(f"{target} exists; pass overwrite=True or choose another path")
    return source, target


def _load(path: Path) -> dict[str, Any]:
    """The checkpoint dict, via ultralytics' restricted (``weights_only``) loader."""
    import_ultralytics()
    from ultralytics.nn.tasks import torch_safe_load

    try:
        ckpt, _ = torch_safe_load(str(path), safe_only=True)
    except TypeError as exc:
        raise ConfigError(
            f"{path} is not an ultralytics checkpoint this loader accepts: {exc}"
        ) from exc
    return ckpt


def _model_of(ckpt: dict[str, Any], path: Path) -> nn.Module:
    model = ckpt.get("ema") or ckpt.get("model")
    if not isinstance(model, nn.Module):
        raise ConfigError(
            f"{path} holds no model under 'ema' or 'model'; expected an "
            "ultralytics training checkpoint such as best.pt"
        )
    return model.float().eval()


def _input_size(metadata: dict[str, Any], ckpt: dict[str, Any]) -> int:
    shape = metadata.get("input_shape")
    if shape:
        return int(shape[-1])
    return int((ckpt.get("train_args") or {}).get("imgsz") or 640)


def _save(ckpt: dict[str, Any], path: Path) -> None:
    from ..._util import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda handle: torch.save(ckpt, handle))


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
