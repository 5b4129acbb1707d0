"""Early channel pruning inside ``YOLO(...).train()``, through ultralytics' own callbacks.

::

    from ultralytics import YOLO
    from forecastprune.integrations.ultralytics import attach

    model = YOLO("yolov8n.yaml")
    pruner = attach(model, spec=PruneSpec(ratio=0.3, policy="grouped"), prune_at=0.3,
                    sparsity=1e-3, store_path="runs/yolov8n-gammas.fpstore")
    model.train(data="data.yaml", epochs=100, imgsz=640)
    pruner.pruned_at, pruner.params            # when it pruned, parameters before/after

What happens during ``train``:

* **L1 on γ** — ultralytics offers no callback between ``backward`` and the optimizer step,
  so the penalty ``s·sign(γ)`` is added by a step pre-hook on the trainer's optimizer. The
  hook runs inside ``trainer.optimizer_step`` after ``scaler.unscale_`` and gradient
  clipping (max-norm 10), i.e. on the true, unscaled gradients — so it is exactly ``s`` under
  AMP too, is not clipped, and is skipped together with the step when AMP finds inf/NaN.
* **Recording** — after every optimizer update (``on_train_batch_end``; ultralytics
  accumulates several batches per update), γ of every BatchNorm goes into a
  :class:`~forecastprune.store.GammaTrajectoryStore` with the LR and the planned LR schedule
  (:mod:`.plan`). Steps count optimizer updates.
* **One prune** — at ``prune_at`` (a fraction of the planned updates, ``"step:N"``, or a
  timing rule: ``"stability"``, ``"confidence"``, ``"early-bird"``) the forecaster predicts
  every channel's final |γ|, the engine chooses the channels (``spec``: ratio, policy,
  floors) and cuts a copy of the model. The trainer then goes on
  with the smaller model: its optimizer is rebuilt (state cut to the kept channels), the LR
  scheduler is re-bound to it, and the EMA model is cut the same way (the averages of the
  kept channels carry on). From then on there is no L1 and no recording.
* **Checkpoints** — ultralytics keeps saving the EMA model, now the pruned one, so
  ``best.pt``/``last.pt`` load with ``YOLO("best.pt")``, validate and export as usual.

Several devices: ultralytics then trains in ``torchrun`` worker processes that it builds from
the trainer's class and arguments, so a pruner attached to the calling process cannot follow;
:func:`attach`'s pruner refuses to be sent there (a :class:`~forecastprune.errors.ConfigError`
when ultralytics packs the callbacks for the workers). Train with the trainer classes of
:mod:`.trainers` instead, which carry :func:`pruner_settings` in the training arguments.

Limits: no ``time=`` budget (the planned length must be known), no ``resume`` of a run (a
resumed trainer rebuilds the unpruned architecture from the yaml), no ``compile``.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..._util import is_distributed
from ...core.bn_layers import unwrap_model
from ...engine.block_rule import BlockSpec
from ...engine.spec import PruneSpec
from ...engine.surgery import prune_model, surgery_record
from ...errors import ConfigError
from ...pipeline.timing import PruneTiming
from ...runpoint import RunPoint
from .fixups import saveable, sync_split_widths
from .plan import UpdatePlan, plan_updates, planned_lr_schedule, warmup_iterations


class UltralyticsPruner:
    """Sparse-train, record γ, prune once and keep training, inside an ultralytics trainer.

    Args:
        forecaster: a forecaster spec (``"auto"``, ``"linear"``, ``"arima(p=2,d=1,q=1)"``).
        spec: how channels are chosen (default ``PruneSpec()``, as everywhere in
            forecastprune); ``PruneSpec(policy="grouped")`` prunes coupled channels together,
            which on C2f/C3k2 detectors is where most channels are.
        prune_at: where in the run to prune (a :class:`~forecastprune.runpoint.RunPoint`:
            a fraction of the planned optimizer updates, ``"step:N"``, ``"stability"``,
            ``"confidence"`` or ``"early-bird"``); None records (and sparse-trains) the whole
            run without pruning, for ``compare``.
        sparsity: the L1 strength ``s`` on γ until the prune (0: no penalty).
        store_path: where to keep the γ store (a temporary directory when None).
        record_every: record every this many optimizer updates.
        auto_options: options of the timing rules (``window``, ``tolerance``, ...).
        overwrite: replace an existing store at ``store_path``.
        blocks: also remove whole residual blocks (C3/C2f/C3k2 bottlenecks) at the prune point,
            a :class:`~forecastprune.engine.block_rule.BlockSpec` applied to the same forecast;
            the EMA model loses the same blocks. None: channels only.

    Raises:
        ConfigError / ForecasterError / PruningError: on invalid settings (before training).
    """

    def __init__(
        self,
        *,
        forecaster: str = "auto",
        spec: PruneSpec | None = None,
        prune_at: float | str | RunPoint | None = 0.3,
        sparsity: float = 1e-3,
        store_path: str | Path | None = None,
        record_every: int = 1,
        auto_options: dict[str, Any] | None = None,
        overwrite: bool = False,
        blocks: Any = None,
    ) -> None:
        from ...forecasters import get_forecaster

        if blocks is not None and not isinstance(blocks, BlockSpec):
            raise ConfigError(
                f"blocks must be a BlockSpec (e.g. BlockSpec(count=2)) or None; "
                f"got {type(blocks).__name__}"
            )

        get_forecaster(forecaster)  # a bad spec fails here, not after the first epochs
        spec = spec if spec is not None else PruneSpec()
        spec.coupling_policy()  # policy none cannot cut: refused before training
        self.options = {
            "forecaster": forecaster,
            "spec": spec,
            "prune_at": RecordOnly() if prune_at is None else RunPoint.parse(prune_at),
            "sparsity": sparsity,
            "store_path": store_path,
            "record_every": record_every,
            "auto_options": auto_options,
            "overwrite": overwrite,
            "blocks": blocks,
        }
        self.pruner: Any = None  # the EarlyPruner, built when training starts
        self.updates = 0
        self.update_plan: UpdatePlan | None = None
        self.params: tuple[int, int] | None = None
        self._recorded = 0
        self._hooks: list[Any] = []

    def __reduce__(self) -> Any:
        """Refuse to be pickled: ultralytics packs the callbacks this way only to re-create them
        in multi-GPU worker processes, where this pruner would prune unseen and uncoordinated."""
        raise ConfigError(
            "attach() cannot follow training on several devices (ultralytics trains in torchrun "
            "workers that it re-creates from the trainer); train with trainer="
            "ForecastPruneDetectionTrainer (or the Segmentation/Pose/OBB one) and "
            "forecastprune=pruner_settings(...) from forecastprune.integrations.ultralytics, "
            "or on one device"
        )

    # ---------------------------------------------------------------- public state
    @property
    def pruned(self) -> bool:
        """Whether the model has been pruned."""
        return self.pruner is not None and self.pruner.pruned

    @property
    def pruned_at(self) -> int | None:
        """The optimizer update after which the model was pruned."""
        return None if self.pruner is None else self.pruner.pruned_at

    @property
    def store_path(self) -> Path | None:
        """The γ store's directory (once training has started)."""
        return None if self.pruner is None else self.pruner.store_path

    def callbacks(self) -> dict[str, Callable[[Any], None]]:
        """ultralytics event name -> callback (what :func:`attach` registers)."""
        return {
            "on_train_start": self.on_train_start,
            "on_train_batch_end": self.on_train_batch_end,
            "on_train_end": self.on_train_end,
        }

    def summary(self) -> dict[str, Any]:
        """A JSON-ready record: updates made and planned, param counts, what the pruner did."""
        return {
            "updates": self.updates,
            "planned_updates": None if self.update_plan is None else self.update_plan.total,
            "params": None if self.params is None else list(self.params),
            "pruner": None if self.pruner is None else self.pruner.summary(),
        }

    # ---------------------------------------------------------------- ultralytics events
    def on_train_start(self, trainer: Any) -> None:
        """Plan the run, build the pruner and hook the optimizer."""
        from ...pipeline import EarlyPruner

        _check_trainer(trainer)
        nb = len(trainer.train_loader)
        self.update_plan = plan_updates(
            nb,
            trainer.epochs,
            warmup_iterations(trainer.args.warmup_epochs, trainer.epochs, nb),
            trainer.accumulate,
        )
        group = trainer.optimizer.param_groups[0]
        schedule = planned_lr_schedule(
            self.update_plan, group.get("initial_lr", group["lr"]), trainer.lf
        )
        size = int(trainer.args.imgsz)
        example = torch.zeros(1, 3, size, size, device=trainer.device)
        self.pruner = EarlyPruner(
            trainer.model,
            trainer.optimizer,
            total_steps=self.update_plan.total,
            example_inputs=example,
            steps_per_epoch=self.update_plan.per_epoch,
            lr_schedule=schedule,
            metadata=_metadata(trainer, size),
            **self.options,
        )
        self._hooks = [
            trainer.optimizer.register_step_pre_hook(self._before_step),
            trainer.optimizer.register_step_post_hook(self._after_step),
        ]

    def on_train_batch_end(self, trainer: Any) -> None:
        """After an optimizer update: record γ; at the prune point, swap in the smaller model."""
        if self.pruner is None or self.pruned or self.updates == self._recorded:
            return
        self._recorded = self.updates
        before = trainer.model
        model, optimizer = self.pruner.step(self.updates)
        if self.pruned:
            self._swap(trainer, before, model, optimizer)

    def on_train_end(self, trainer: Any) -> None:
        """Flush and close the γ store (already closed when the model was pruned)."""
        if self.pruner is not None:
            self.pruner.close()

    # ---------------------------------------------------------------- internals
    def _before_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self.pruner.regularize(self.updates)

    def _after_step(self, optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> None:
        self.updates += 1

    def _swap(
        self, trainer: Any, before: nn.Module, model: nn.Module, optimizer: torch.optim.Optimizer
    ) -> None:
        """Hand the trainer the pruned model, its optimizer and a pruned EMA."""
        for hook in self._hooks:
            hook.remove()
        # keep counting updates (no more L1): ``updates`` then says how long the run really was
        self._hooks = [optimizer.register_step_post_hook(self._after_step)]
        ema_cut = prune_model(
            trainer.ema.ema, _kept_masks(model), self.pruner.example_inputs, plan=self.pruner.plan
        )
        blocks = self.pruner.prune_info.get("blocks") or ()
        if blocks:
            from ...engine.block_surgery import prune_blocks

            ema_cut = prune_blocks(ema_cut, blocks, self.pruner.example_inputs)
        ema_model = saveable(trainer.ema.ema, ema_cut)
        # ModelEMA copies the model it is given, freezes it and puts it in eval mode
        ema = type(trainer.ema)(ema_model, updates=trainer.ema.updates)
        ema.enabled = trainer.ema.enabled
        # the training model keeps its surgery record (the pruner's state reads it); only the
        # EMA model is pickled into checkpoints
        trainer.model = sync_split_widths(before, model)
        trainer.optimizer = optimizer
        trainer.scheduler.optimizer = optimizer
        trainer.ema = ema
        self.params = (_count(before), _count(model))


class RecordOnly(PruneTiming):
    """A timing that never fires: the run sparse-trains and records γ to the end."""

    def is_check(self, step: int) -> bool:
        return False

    def observe(self, step: int, pruned: Any, ambiguous: float | None) -> bool:
        return False

    def summary(self) -> dict[str, Any]:
        return {"kind": "record-only"}

    def describe(self) -> str:
        return "record only: never prune"


def attach(model: Any, **options: Any) -> UltralyticsPruner:
    """Register an :class:`UltralyticsPruner` on an ultralytics ``YOLO`` model.

    Args:
        model: ``YOLO("yolov8n.yaml")`` (anything with ultralytics' ``add_callback``).
        **options: :class:`UltralyticsPruner` keyword arguments.

    Returns:
        The pruner; read ``pruned_at``, ``params`` and ``store_path`` after ``train``.

    Raises:
        ConfigError: if ``model`` is not an ultralytics model.
    """
    if not callable(getattr(model, "add_callback", None)):
        raise ConfigError(
            f"attach expects an ultralytics model such as YOLO('yolov8n.yaml'); got "
            f"{type(model).__name__}, which has no add_callback"
        )
    pruner = UltralyticsPruner(**options)
    for event, callback in pruner.callbacks().items():
        model.add_callback(event, callback)
    return pruner


def pruner_settings(**options: Any) -> dict[str, Any]:
    """:func:`attach`'s keyword arguments as the plain dict the multi-GPU trainer classes carry.

    The one place those keywords become the ``forecastprune`` training argument of
    :mod:`.trainers`: ultralytics writes it into the script its worker processes run, so only
    plain values travel — the :class:`PruneSpec` as its fields, ``prune_at`` as its text.
    :func:`pruner_options` turns it back.

    Args:
        **options: :class:`UltralyticsPruner` keyword arguments (``forecaster``, ``spec``,
            ``prune_at``, ``sparsity``, ``store_path``, ...); ``spec`` may also be given as
            the dict this function returns.

    Returns:
        The settings, checked now (a bad forecaster or spec fails here, not in the workers).

    Raises:
        ConfigError / ForecasterError / PruningError: on invalid settings.
    """
    known = [name for name in inspect.signature(UltralyticsPruner).parameters]
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"unknown pruner settings {unknown}; expected some of {known}")
    options = pruner_options(options)
    UltralyticsPruner(**options)
    plain = {
        key: str(value) if isinstance(value, (Path, RunPoint)) else value
        for key, value in options.items()
    }
    for key in ("spec", "blocks"):  # frozen dataclasses travel as their fields
        if options.get(key) is not None:
            plain[key] = dataclasses.asdict(options[key])
    return plain


def pruner_options(settings: dict[str, Any]) -> dict[str, Any]:
    """The :class:`UltralyticsPruner` keyword arguments a :func:`pruner_settings` dict holds."""
    options = dict(settings)
    if isinstance(options.get("spec"), dict):
        options["spec"] = PruneSpec.from_mapping(options["spec"], source="pruner settings")
    if isinstance(options.get("blocks"), dict):
        options["blocks"] = BlockSpec(**options["blocks"])
    return options


def _check_trainer(trainer: Any) -> None:
    """Refuse the trainer settings the pruner cannot follow, before any update."""
    args = trainer.args
    problems = []
    if getattr(trainer, "world_size", 0) > 1 and not is_distributed():
        problems.append("training on several devices outside a torch.distributed worker")
    if getattr(args, "time", None):
        problems.append(f"time={args.time} (the number of epochs must be known in advance)")
    if getattr(trainer, "start_epoch", 0) > 0:
        problems.append("resuming a run")
    if getattr(args, "compile", False):
        problems.append(f"compile={args.compile}")
    if problems:
        raise ConfigError(
            "forecastprune's ultralytics pruner does not support "
            + ", ".join(problems)
            + "; train on one device for a fixed number of epochs without compile"
        )


def _metadata(trainer: Any, size: int) -> dict[str, Any]:
    yaml = getattr(unwrap_model(trainer.model), "yaml", None) or {}
    name = Path(str(yaml.get("yaml_file", "ultralytics"))).name
    # model + nc are what it takes to rebuild the unpruned network for a grouped replay
    return {
        "model": f"ultralytics:{name}",
        "nc": int(trainer.data["nc"]),
        "input_shape": [1, 3, size, size],
        "epochs": int(trainer.epochs),
        "batch": int(trainer.batch_size),
    }


def _kept_masks(pruned: nn.Module) -> dict[str, np.ndarray]:
    """The channels the cut kept, as masks, from the pruned model's surgery record.

    Every rank has the record (only rank 0 forecasts; the others receive the decision).
    """
    record = surgery_record(pruned)
    return {
        name: np.isin(np.arange(record.sizes[name]), kept) for name, kept in record.keep.items()
    }


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
