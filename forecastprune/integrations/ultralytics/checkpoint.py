"""Prune a trained ultralytics checkpoint with a forecast from its recorded γ store.

::

    result = prune_ultralytics_checkpoint("runs/detect/train/weights/best.pt",
                                          "runs/yolov8n-gammas.fpstore", "best-pruned.pt",
                                          forecaster="sma", cutoff=0.3, ratio=0.3)

The forecaster sees the γ history up to ``cutoff`` and predicts every channel's |γ| at the
run's planned last step; the engine picks the channels to cut and physically removes them from
the checkpoint's model (EMA weights when present, as ultralytics itself prefers). The output is
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

from ...errors import ConfigError
from ._deps import import_ultralytics
from .fixups import finish_pruned


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
    """

    path: Path
    params_before: int
    params_after: int
    cutoff_step: int
    target_step: int
    decision: dict[str, Any]


def prune_ultralytics_checkpoint(
    checkpoint: str | Path,
    store: str | Path,
    out: str | Path,
    *,
    forecaster: str = "sma",
    cutoff: float | int = 0.3,
    ratio: float = 0.5,
    policy: str = "grouped",
    min_keep: int = 1,
    imgsz: int | None = None,
    overwrite: bool = False,
) -> PrunedCheckpoint:
    """Forecast from ``store``, prune the model in ``checkpoint`` and write ``out``.

    Args:
        checkpoint: an ultralytics ``.pt`` checkpoint (not modified).
        store: the γ store recorded while training it (same BatchNorm layers).
        out: the pruned checkpoint to write (must differ from ``checkpoint``).
        forecaster: a forecaster spec (``"sma"``, ``"arima(p=2,d=1,q=1)"``, ...).
        cutoff: the history the forecaster sees: a fraction in (0, 1) of the store's last
            step, or a step.
        ratio: fraction of the prunable channels to prune.
        policy: ``"seed"`` or ``"grouped"``.
        min_keep: channels each BN layer keeps at least.
        imgsz: the square input size to trace at (default: the store's ``input_shape``, else
            the checkpoint's training ``imgsz``, else 640).
        overwrite: replace an existing ``out``.

    Returns:
        A :class:`PrunedCheckpoint`.

    Raises:
        ConfigError: on missing files, ``out`` equal to ``checkpoint`` or already present, or
            a history too short for the forecaster.
        LayoutError: if the store's layers do not match the checkpoint's model.
        PruningError: if the cut is impossible.
    """
    from ...engine.coupling import check_layout, plan_channels
    from ...engine.surgery import prune_model
    from ...pipeline.decision import MaskRule, forecast_mask
    from ...pipeline.timing import resolve_step
    from ...store import GammaTrajectoryStore

    source, target = _check_paths(checkpoint, out, overwrite)
    rule = MaskRule(ratio=ratio, min_keep=min_keep)
    ckpt = _load(source)
    model = _model_of(ckpt, source)
    with GammaTrajectoryStore.open(store) as gammas:
        check_layout(model, gammas.layout)
        final_step = int(gammas.steps[-1]) if len(gammas) else 0
        if final_step < 1:
            raise ConfigError(f"the γ store {store} holds no snapshots after step 0")
        cut = resolve_step(cutoff, final_step, "cutoff")
        steps, values = gammas.history(until_step=cut)
        total = int(gammas.metadata.get("total_steps") or final_step)
        size = imgsz or _input_size(gammas.metadata, ckpt)
        example = torch.zeros(1, 3, size, size)
        plan = plan_channels(model, example, gammas.layout, policy=policy)
        mask = forecast_mask(_forecaster(forecaster, len(steps)), steps, values, total, plan,
                             rule, _clock(forecaster, gammas))
    pruned = finish_pruned(model, prune_model(model, mask.decision, example, plan=plan))
    summary = {"store": str(store), "forecaster": str(forecaster), "cutoff_step": int(steps[-1]),
               "target_step": total, "policy": policy, "decision": mask.decision.to_json()}
    # stored as ultralytics stores a finished model: half precision, frozen, no optimizer
    _save({**ckpt, "model": pruned.half().requires_grad_(False), "ema": None, "optimizer": None,
           "updates": None, "forecastprune": summary}, target)
    return PrunedCheckpoint(target, _count(model), _count(pruned), int(steps[-1]), total,
                            summary["decision"])


def _check_paths(checkpoint: str | Path, out: str | Path, overwrite: bool) -> tuple[Path, Path]:
    source, target = Path(checkpoint), Path(out)
    if not source.is_file():
        # checked here: ultralytics' loader would try to download a missing name
        raise ConfigError(f"no checkpoint file at {source}; pass the path of a trained .pt file")
    if target.resolve() == source.resolve():
        raise ConfigError(f"out must differ from the input checkpoint {source}; the input is "
                          "never modified")
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
        raise ConfigError(f"{path} is not an ultralytics checkpoint this loader accepts: {exc}"
                          ) from exc
    return ckpt


def _model_of(ckpt: dict[str, Any], path: Path) -> nn.Module:
    model = ckpt.get("ema") or ckpt.get("model")
    if not isinstance(model, nn.Module):
        raise ConfigError(f"{path} holds no model under 'ema' or 'model'; expected an "
                          "ultralytics training checkpoint such as best.pt")
    return model.float().eval()


def _input_size(metadata: dict[str, Any], ckpt: dict[str, Any]) -> int:
    shape = metadata.get("input_shape")
    if shape:
        return int(shape[-1])
    return int((ckpt.get("train_args") or {}).get("imgsz") or 640)


def _forecaster(spec: str, n_history: int) -> Any:
    from ...forecasters import get_forecaster

    model = get_forecaster(spec)
    if n_history < model.min_history:
        raise ConfigError(
            f"forecaster {spec!r} needs at least {model.min_history} snapshots; the cutoff "
            f"leaves {n_history}. Choose a later cutoff or a forecaster with a shorter history"
        )
    return model


def _clock(spec: str, store: Any) -> Any:
    from ...forecasters import get_forecaster
    from ...timeaxis import clock_for_store

    on_lr = getattr(get_forecaster(spec), "time_axis", "step") == "lr"
    return clock_for_store(store) if on_lr else None


def _save(ckpt: dict[str, Any], path: Path) -> None:
    from ...store.format import atomic_write

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda handle: torch.save(ckpt, handle))


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
