"""Early channel pruning inside ``YOLO(...).train()``, through ultralytics' own callbacks.

::

    from ultralytics import YOLO
    from forecastprune.integrations.ultralytics import attach

    model = YOLO("yolov8n.yaml")
    pruner = attach(model, forecaster="sma", ratio=0.3, prune_at=0.3, sparsity=1e-3,
                    store_path="runs/yolov8n-gammas.fpstore")
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
* **One prune** — at ``prune_at`` (a fraction of the planned updates, a step, ``"auto"`` or
  ``"early-bird"``) the forecaster predicts every channel's final |γ|, the engine chooses
  the channels (``policy``, ``ratio``) and cuts a copy of the model. The trainer then goes on
  with the smaller model: its optimizer is rebuilt (state cut to the kept channels), the LR
  scheduler is re-bound to it, and the EMA model is cut the same way (the averages of the
  kept channels carry on). From then on there is no L1 and no recording.
* **Checkpoints** — ultralytics keeps saving the EMA model, now the pruned one, so
  ``best.pt``/``last.pt`` load with ``YOLO("best.pt")``, validate and export as usual.

Limits: one device (with several, ultralytics relaunches training in worker processes that
do not carry Python callbacks), no ``time=`` budget (the planned length must be known), no
``resume`` of a run (a resumed trainer rebuilds the unpruned architecture from the yaml), no
``compile``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...errors import ConfigError
from ...engine.rule import MaskRule
from ...pipeline.timing import PruneTiming
from .plan import UpdatePlan, plan_updates, planned_lr_schedule, warmup_iterations
from .fixups import saveable, sync_split_widths


class UltralyticsPruner:
    """Sparse-train, record γ, prune once and keep training, inside an ultralytics trainer.

    Args:
        forecaster: a forecaster spec (``"sma"``, ``"linear"``, ``"arima(p=2,d=1,q=1)"``).
        ratio: fraction of the prunable channels to prune.
        prune_at: a fraction in (0, 1) of the planned optimizer updates, an update number,
            ``"auto"`` or ``"early-bird"`` (see :class:`~forecastprune.pipeline.EarlyPruner`);
            None records (and sparse-trains) the whole run without pruning, for ``compare``.
        sparsity: the L1 strength ``s`` on γ until the prune (0: no penalty).
        policy: ``"seed"`` or ``"grouped"`` (grouped prunes coupled channels together, which
            on C2f/C3k2 detectors is where most channels are).
        store_path: where to keep the γ store (a temporary directory when None).
        record_every: record every this many optimizer updates.
        min_keep: channels each BN layer keeps at least.
        auto_options: options of the ``auto`` timing (``window``, ``tolerance``, ...).
        uncertainty: prune only channels whose forecast upper bound is below the cut too.
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
        forecaster: str = "sma",
        ratio: float = 0.5,
        prune_at: float | int | str | None = 0.3,
        sparsity: float = 1e-3,
        policy: str = "grouped",
        store_path: str | Path | None = None,
        record_every: int = 1,
        min_keep: int = 1,
        auto_options: dict[str, Any] | None = None,
        uncertainty: bool = False,
        overwrite: bool = False,
        blocks: Any = None,
    ) -> None:
        from ...engine.block_rule import BlockSpec
        from ...forecasters import get_forecaster

        if blocks is not None and not isinstance(blocks, BlockSpec):
            raise ConfigError(f"blocks must be a BlockSpec (e.g. BlockSpec(count=2)) or None; "
                              f"got {type(blocks).__name__}")

        get_forecaster(forecaster)  # a bad spec fails here, not after the first epochs
        MaskRule(ratio=ratio, min_keep=min_keep)
        self.options = {
            "forecaster": forecaster, "ratio": ratio,
            "prune_at": RecordOnly() if prune_at is None else prune_at,
            "sparsity": sparsity, "policy": policy, "store_path": store_path,
            "record_every": record_every, "min_keep": min_keep, "auto_options": auto_options,
            "uncertainty": uncertainty, "overwrite": overwrite, "blocks": blocks,
        }
        self.pruner: Any = None  # the EarlyPruner, built when training starts
        self.updates = 0
        self.update_plan: UpdatePlan | None = None
        self.params: tuple[int, int] | None = None
        self._recorded = 0
        self._hooks: list[Any] = []

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
        return {"on_train_start": self.on_train_start,
                "on_train_batch_end": self.on_train_batch_end,
                "on_train_end": self.on_train_end}

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
            nb, trainer.epochs, warmup_iterations(trainer.args.warmup_epochs, trainer.epochs, nb),
            trainer.accumulate)
        group = trainer.optimizer.param_groups[0]
        schedule = planned_lr_schedule(self.update_plan, group.get("initial_lr", group["lr"]),
                                       trainer.lf)
        size = int(trainer.args.imgsz)
        example = torch.zeros(1, 3, size, size, device=trainer.device)
        self.pruner = EarlyPruner(
            trainer.model, trainer.optimizer, total_steps=self.update_plan.total,
            example_inputs=example, steps_per_epoch=self.update_plan.per_epoch,
            lr_schedule=schedule, metadata=_metadata(trainer, size), **self.options)
        self._hooks = [trainer.optimizer.register_step_pre_hook(self._before_step),
                       trainer.optimizer.register_step_post_hook(self._after_step)]

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

    def _swap(self, trainer: Any, before: nn.Module, model: nn.Module,
              optimizer: torch.optim.Optimizer) -> None:
        """Hand the trainer the pruned model, its optimizer and a pruned EMA."""
        from ...engine.surgery import prune_model

        for hook in self._hooks:
            hook.remove()
        # keep counting updates (no more L1): ``updates`` then says how long the run really was
        self._hooks = [optimizer.register_step_post_hook(self._after_step)]
        ema_cut = prune_model(trainer.ema.ema, self.pruner.last_mask.decision,
                              self.pruner.example_inputs, plan=self.pruner.plan)
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


def _check_trainer(trainer: Any) -> None:
    """Refuse the trainer settings the pruner cannot follow, before any update."""
    args = trainer.args
    problems = []
    if getattr(trainer, "world_size", 0) > 1:
        problems.append("training on several devices")
    if getattr(args, "time", None):
        problems.append(f"time={args.time} (the number of epochs must be known in advance)")
    if getattr(trainer, "start_epoch", 0) > 0:
        problems.append("resuming a run")
    if getattr(args, "compile", False):
        problems.append(f"compile={args.compile}")
    if problems:
        raise ConfigError(
            "forecastprune's ultralytics pruner does not support " + ", ".join(problems)
            + "; train on one device for a fixed number of epochs without compile"
        )


def _metadata(trainer: Any, size: int) -> dict[str, Any]:
    yaml = getattr(trainer.model, "yaml", None) or {}
    name = Path(str(yaml.get("yaml_file", "ultralytics"))).name
    # model + nc are what it takes to rebuild the unpruned network for a grouped replay
    return {"model": f"ultralytics:{name}", "nc": int(trainer.data["nc"]),
            "input_shape": [1, 3, size, size], "epochs": int(trainer.epochs),
            "batch": int(trainer.batch_size)}


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
