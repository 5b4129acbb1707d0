"""EarlyPruner: forecast-driven early channel pruning in any training loop, with two calls.

::

    pruner = EarlyPruner(model, optimizer, forecaster="auto", spec=PruneSpec(ratio=0.5),
                         prune_at=0.3, total_steps=n_steps, example_inputs=x[:1])
    for step in range(1, n_steps + 1):
        loss = criterion(model(x), y)
        optimizer.zero_grad(); loss.backward()
        pruner.regularize(step)                     # L1 on γ while sparse-training
        optimizer.step()
        model, optimizer = pruner.step(step)        # records γ; prunes once at the prune point

Before the prune point, :meth:`EarlyPruner.step` records every BN channel's γ into a
:class:`~forecastprune.store.GammaTrajectoryStore`. At the prune point it fits the forecaster
on the |γ| history, predicts each channel's |γ| at the planned final step, thresholds the
prediction with the engine, removes the channels physically and rebuilds the optimizer. From
then on the run is plain training: :meth:`regularize` and :meth:`step` do nothing.

**The model after pruning is a new object.** Surgery never touches the model you passed in
(its architecture and weights stay as they were at the prune point); keep using the model
:meth:`step` returns. Learning-rate schedulers hold the *old* optimizer: point them at the new
one (``scheduler.optimizer = optimizer``; the rebuilt optimizer keeps every group's ``lr`` and
``initial_lr``, so the schedule continues where it was — the Trainer does this in ``swap``).

**Stopping and resuming.** ``with EarlyPruner(...) as pruner:`` closes the γ store on every
exit of the block and turns SIGTERM/SIGINT into an exception that unwinds the loop, so a
preempted run keeps every snapshot it took (:mod:`~forecastprune.record.signals`).
:meth:`EarlyPruner.state_dict` holds everything a resumed run needs — counters, the timing
rule's remembered masks, the recorder's position before the prune, the kept channels after it —
as plain containers that load with ``torch.load(..., weights_only=True)``. A fresh pruner, built
as the first one was, takes it with :meth:`EarlyPruner.load_state_dict`: before the prune it
keeps recording into the same store; after it, it rebuilds the smaller model from the kept
channels and an optimizer over it, into which the saved model and optimizer states then load.

**Distributed runs.** Under ``torch.distributed`` every rank calls both methods. Only rank 0
records and forecasts; it broadcasts the prune decision, every rank performs the same surgery,
and a model given as ``DistributedDataParallel`` is re-wrapped in a new DDP (same device ids,
output device and process group): DDP registers its gradient hooks on the parameters that
exist when it is built, so the old wrapper cannot train the new, smaller parameters.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

import torch
from torch import nn

from .._util import is_rank_zero, positive_int
from ..core.bn_layers import unwrap_model as unwrap
from ..engine.spec import PruneSpec
from ..errors import ConfigError
from ..record.signals import flush_on_signals
from ..runpoint import RunPoint
from .decision import ForecastMask, forecast_mask
from .distributed import broadcast_object, rewrap
from .timing import (
    DEFAULT_DEADLINE,
    DEFAULT_MIN_CONFIDENCE,
    FixedTiming,
    PruneTiming,
    auto_timing,
    early_bird_timing,
)

Timing = float | str | RunPoint | PruneTiming

#: tags the dict of :meth:`EarlyPruner.state_dict`; bumped when an older reader would misread it
STATE_FORMAT = "forecastprune.early-pruner"
STATE_VERSION = 1


class EarlyPruner:
    """Sparse-train while recording γ, then prune once at a fixed or automatic point.

    Args:
        model: the model being trained (a plain module or DDP-wrapped).
        optimizer: its optimizer; rebuilt for the smaller model after pruning.
        forecaster: a forecaster spec from the registry (``"sma"``, ``"linear"``,
            ``"arima(p=2,d=1,q=1)"``); ``"naive"`` prunes on the current |γ|.
        spec: how channels are chosen — ratio or threshold, coupling policy (``seed`` never
            prunes coupled layers, ``grouped`` prunes coupled channels together), floors and
            the uncertainty rule (default ``PruneSpec()``).
        prune_at: where in the run to prune, as everywhere in forecastprune (a
            :class:`~forecastprune.runpoint.RunPoint`): a fraction of the run in (0, 1],
            ``"step:N"``, a timing rule — ``"stability"`` (our forecast-stability rule, see
            :mod:`~forecastprune.pipeline.timing`), ``"confidence"`` (stability plus the
            forecaster's in-history backtest), ``"early-bird"`` — or a
            :class:`~forecastprune.pipeline.timing.PruneTiming`.
        sparsity: the L1 strength ``s`` on γ during the sparse phase (0 disables it).
        record_every: record γ every this many steps.
        total_steps: the planned length of the run — forecasts target this step.
        example_inputs: an input batch used to trace the model for coupling and surgery.
        store_path: the γ store's directory (in a temporary directory, removed with the
            pruner, when None).
        check_every: steps between checks of the ``auto`` / ``early-bird`` rules (default:
            ``steps_per_epoch`` when given, else 2 % of the run).
        steps_per_epoch: the loop's steps per epoch, written to the store's metadata.
        auto_options: options of the ``stability`` and ``confidence`` timing rules
            (:func:`~forecastprune.pipeline.timing.auto_timing`: ``window``, ``tolerance``,
            ``max_ambiguous``, ``min_step``, ``deadline`` — these two run points — and
            ``min_confidence``, the backtested IoU the ``confidence`` rule needs, 0.9 by
            default; see :mod:`~forecastprune.pipeline.confidence`).
        lr_schedule: the planned LR schedule (``[[step, lr], ...]`` or a torch scheduler
            stepped per iteration), stored for forecasters on the cumulative-LR time axis.
        metadata: extra store metadata (model name, seed, ...).
        overwrite: replace an existing store at ``store_path``.
        blocks: also remove whole residual blocks at the prune point (depth pruning): a
            :class:`~forecastprune.engine.block_rule.BlockSpec` (how many, and the mean or max
            of each block's scoring-BN |γ|) applied to the same forecast; None: channels only.

    Raises:
        ConfigError: on an invalid ``prune_at``, ``total_steps`` or ``record_every``.
        ForecasterError: on an unknown or malformed forecaster spec.
        PruningError: on policy ``none`` (a cut needs the model's coupling) or inputs the
            model cannot be traced with.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        forecaster: str = "auto",
        spec: PruneSpec | None = None,
        prune_at: Timing = 0.3,
        sparsity: float = 5e-3,
        record_every: int = 1,
        total_steps: int,
        example_inputs: torch.Tensor,
        store_path: str | Path | None = None,
        check_every: int | None = None,
        steps_per_epoch: int | None = None,
        auto_options: dict[str, Any] | None = None,
        lr_schedule: Any = None,
        metadata: dict[str, Any] | None = None,
        overwrite: bool = False,
        blocks: Any = None,
    ) -> None:
        from ..engine.coupling import plan_channels
        from ..forecasters import get_forecaster
        from ..record.sparsity import BNSparsity

        positive_int(total_steps, "total_steps")
        positive_int(record_every, "record_every")
        self.model, self.optimizer = model, optimizer
        self.forecaster = forecaster
        self.total_steps = int(total_steps)
        self.record_every = int(record_every)
        self.example_inputs = example_inputs
        self.spec = spec if spec is not None else PruneSpec()
        policy = self.spec.coupling_policy()
        get_forecaster(forecaster)  # an unknown or malformed spec fails now, not mid-run
        self.check_every = int(check_every or steps_per_epoch or max(1, self.total_steps // 50))
        self.timing = self._make_timing(prune_at, auto_options or {})
        self.pruned_at: int | None = None
        self._steps_seen = 0
        self.fired_by: str | None = None
        self.last_mask: ForecastMask | None = None
        self.prune_info: dict[str, Any] = {}
        self._recorder_state: dict[str, Any] | None = None  # kept when the recorder closes
        self._recorder_closed = False
        self._signals: Any = None
        inner = unwrap(model)
        self.sparsity = BNSparsity(inner, sparsity) if sparsity else None
        self.recorder = self._make_recorder(
            inner,
            store_path,
            overwrite,
            lr_schedule,
            {"sparsity": sparsity, "steps_per_epoch": steps_per_epoch, **(metadata or {})},
        )
        self.plan = plan_channels(inner, example_inputs, self.recorder.layout, policy=policy)
        self.blocks = blocks
        self.block_plan = None
        self._pending_blocks: tuple[str, ...] = ()
        if blocks is not None:
            from ..engine.blocks import plan_blocks

            self.block_plan = plan_blocks(inner, example_inputs, self.recorder.layout)

    def _make_recorder(
        self,
        inner: nn.Module,
        store_path: str | Path | None,
        overwrite: bool,
        lr_schedule: Any,
        metadata: dict[str, Any],
    ) -> Any:
        """The γ recorder, writing to ``store_path`` or to a store in a private temp dir."""
        from ..record.recorder import GammaRecorder

        # the temporary directory lives (and is removed) with the pruner
        self._tmp = (
            None if store_path is not None else tempfile.TemporaryDirectory(prefix="forecastprune-")
        )
        self.store_path = (
            Path(store_path)
            if store_path is not None
            else (Path(self._tmp.name) / "gammas.fpstore")
        )
        return GammaRecorder(
            inner,
            self.store_path,
            every=self.record_every,
            optimizer=self.optimizer,
            total_steps=self.total_steps,
            lr_schedule=lr_schedule,
            overwrite=overwrite,
            metadata=metadata,
        )

    # ---------------------------------------------------------------- the two calls
    @property
    def pruned(self) -> bool:
        """Whether the model has been pruned."""
        return self.pruned_at is not None

    def regularize(self, step: int | None = None) -> None:
        """Add the L1 sub-gradient ``s·sign(γ)`` to the γ gradients (call after ``backward``).

        A no-op once the model is pruned (the rest of the run is normal training) or when the
        pruner was built with ``sparsity=0``.

        Args:
            step: optimizer updates completed before this one (default: as counted by
                :meth:`step`); the constant L1 strength does not depend on it.
        """
        if self.sparsity is not None and not self.pruned:
            self.sparsity.apply(self._steps_seen if step is None else step)

    def step(self, step: int) -> tuple[nn.Module, torch.optim.Optimizer]:
        """Record γ and, at the prune point, prune (call after ``optimizer.step()``).

        Args:
            step: the number of optimizer steps taken so far (1 after the first).

        Returns:
            ``(model, optimizer)``: new, smaller objects on the step that prunes; the current
            ones otherwise.
        """
        self._steps_seen = step
        if self.pruned:
            return self.model, self.optimizer
        self.recorder.step(step)
        if self.timing.is_check(step):
            decision = broadcast_object(self._check(step) if is_rank_zero() else None)
            if isinstance(decision, str):
                raise ConfigError(decision)
            if decision is not None:
                blocks = (
                    broadcast_object(self._pending_blocks if is_rank_zero() else None)
                    if self.blocks is not None
                    else ()
                )
                self._prune(step, decision, tuple(blocks))
        return self.model, self.optimizer

    # ---------------------------------------------------------------- deciding (rank 0)
    def _check(self, step: int) -> Any:
        """Evaluate the timing rule: the decision to apply now, None, or an error message.

        Errors travel as messages so that every rank raises, not only rank 0 (which would leave
        the others waiting in a collective forever).
        """
        mask = self._forecast(step)
        if mask is None:
            # a fixed timing fires at its first check; a mask timing only at its deadline
            deadline = getattr(self.timing, "deadline", None)
            if not self.timing.needs_masks or (deadline is not None and step >= deadline):
                return (
                    f"cannot prune at step {step}: forecaster {self.forecaster!r} needs more "
                    "γ snapshots than were recorded by then; prune later or record more often"
                )
            return None
        self.last_mask = mask
        # masks are compared on the prunable channels only: the others never change, and
        # counting them would dilute the distance by the share of non-prunable channels
        candidates = mask.decision.pruned[self.plan.prunable]
        extra = (
            {"confidence": lambda: self._confidence(step)} if (self.timing.needs_confidence) else {}
        )
        fire = self.timing.observe(step, candidates, mask.ambiguous, **extra)
        if fire and self.blocks is not None:
            from ..engine.block_rule import select_blocks

            self._pending_blocks = select_blocks(
                self.block_plan, mask.predicted, self.plan.layout, self.blocks
            ).removed
        return mask.decision if fire else None

    def _confidence(self, step: int) -> Any:
        """The forecaster's backtested confidence on the history so far (see
        :func:`~forecastprune.pipeline.confidence.backtest_confidence`)."""
        from ..predict import build_forecaster, forecaster_clock
        from .confidence import backtest_confidence

        store = self.recorder.store  # flushed by _forecast at this same check
        clock = forecaster_clock(store, build_forecaster(self.forecaster))
        return backtest_confidence(
            self.forecaster,
            store.steps,
            store.view(),
            self.total_steps,
            self.plan,
            self.spec,
            clock,
        )

    def _forecast(self, step: int) -> ForecastMask | None:
        """The forecast mask from the history so far (None while it is too short)."""
        from ..predict import build_forecaster, forecaster_clock

        self.recorder.flush()
        store = self.recorder.store
        model = build_forecaster(self.forecaster)
        if store is None or len(store) < model.get_tag("min_history"):  # None: nothing recorded
            return None
        steps, gammas = store.steps, store.view()  # the forecaster reads only what it needs
        clock = forecaster_clock(store, model)
        return forecast_mask(model, steps, gammas, self.total_steps, self.plan, self.spec, clock)

    # ---------------------------------------------------------------- pruning (every rank)
    def _prune(self, step: int, decision: Any, blocks: tuple[str, ...] = ()) -> None:
        self._cut(decision, blocks)
        self.pruned_at = step
        self.fired_by = getattr(self.timing, "fired_by", None) or "fixed"
        # through JSON: plain Python types only, so checkpoints load with weights_only=True
        self.prune_info = json.loads(
            json.dumps(
                {
                    "step": step,
                    "decision": decision.to_json(),
                    "fired_by": self.fired_by,
                    "blocks": list(blocks),
                },
                default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v),
            )
        )
        self._close_recorder(keep_state=False)

    def _cut(self, keep: Any, blocks: tuple[str, ...] = ()) -> None:
        """Swap in the smaller model without the channels ``keep`` drops (and the residual
        ``blocks``), and its optimizer."""
        from ..engine.optim import rebuild_optimizer
        from ..engine.surgery import prune_model

        inner = unwrap(self.model)
        smaller = prune_model(inner, keep, self.example_inputs, plan=self.plan)
        smaller.train(inner.training)
        self.optimizer = rebuild_optimizer(self.optimizer, smaller)
        if blocks:
            from ..engine.block_surgery import prune_blocks

            # each cut's record points at the model it was cut from: rebuild once per cut
            smaller = prune_blocks(smaller, blocks, self.example_inputs)
            self.optimizer = rebuild_optimizer(self.optimizer, smaller)
        self.model = rewrap(self.model, smaller)

    def _make_timing(self, prune_at: Timing, auto: dict[str, Any]) -> PruneTiming:
        if isinstance(prune_at, PruneTiming):
            return prune_at
        point = RunPoint.parse(prune_at)
        if point.rule == "early-bird":
            return early_bird_timing(self.check_every)
        if point.is_rule:
            return self._rule_timing(point.rule, dict(auto))
        return FixedTiming(self._step_of(point, "prune_at"))

    def _rule_timing(self, rule: str | None, options: dict[str, Any]) -> PruneTiming:
        """The ``stability`` or ``confidence`` timing with the run's own options."""
        confidence = options.pop("min_confidence", DEFAULT_MIN_CONFIDENCE)
        if options.get("min_step") is None:  # auto_min_fraction 0: check from the start
            options.pop("min_step", None)
        for key in ("min_step", "deadline"):
            if options.get(key) is not None:
                options[key] = self._step_of(
                    RunPoint.parse(options[key], rules=False, what=f"auto.{key}"), f"auto.{key}"
                )
        options.setdefault(
            "deadline", self._step_of(RunPoint(fraction=DEFAULT_DEADLINE), "deadline")
        )
        return auto_timing(
            self.check_every, **options, min_confidence=confidence if rule == "confidence" else None
        )

    def _step_of(self, point: RunPoint, what: str) -> int:
        """The step of a fraction or step of the run, checked to lie inside it."""
        step = point.resolve(self.total_steps, what)
        if not 1 <= step <= self.total_steps:
            raise ConfigError(
                f"{what}={point} is not a step of the run; expected step:1 to "
                f"step:{self.total_steps} (or a fraction in (0, 1])"
            )
        return step

    # ---------------------------------------------------------------- state
    def summary(self) -> dict[str, Any]:
        """A JSON-ready record of what the pruner did: timing, prune step and decision."""
        return {
            "forecaster": str(self.forecaster),
            "spec": self.spec.to_json(),
            "total_steps": self.total_steps,
            "store_path": str(self.store_path),
            "pruned_at": self.pruned_at,
            "fired_by": self.fired_by,
            "timing": self.timing.summary(),
            "prune": self.prune_info,
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs, as plain containers (``weights_only``-loadable).

        Flushes the recorder first, so the store on disk holds every snapshot the state counts.
        The model's and optimizer's own states are not included: save those next to it
        (the :class:`~forecastprune.pipeline.trainer.Trainer` does).
        """
        state: dict[str, Any] = {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            **self.summary(),
            "steps_seen": self._steps_seen,
            "timing": self.timing.state_dict(),
        }
        if self.pruned:
            from ..engine.surgery import surgery_record

            record = surgery_record(self.model)
            assert record is not None  # every pruned model comes from prune_model
            state["keep"] = {name: [int(i) for i in kept] for name, kept in record.keep.items()}
            state["sizes"] = {name: int(size) for name, size in record.sizes.items()}
            state["blocks"] = list(record.blocks)
        else:
            state["recorder"] = self._recorder_state_now()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue a run from :meth:`state_dict` output, in a pruner built like the first.

        Call it before the first :meth:`step`. Before the prune, recording continues in the
        store at this pruner's ``store_path`` (the same store, or a copy of it). After the prune,
        :attr:`model` and :attr:`optimizer` become the smaller model rebuilt from the kept
        channels and a new optimizer over it, with the structure the first run's had; load the
        saved model and optimizer states into *those*.

        Args:
            state: a dict from :meth:`state_dict` (e.g. ``torch.load(path, weights_only=True)``).

        Raises:
            ConfigError: on a state of another format, from another forecaster or plan length,
                or after this pruner has started; or a state from before the prune when this
                pruner records into a temporary store.
            LayoutError: if the saved kept channels name other BN layers than the model has.
        """
        self._check_state(state)
        self.timing.load_state_dict(state["timing"])
        self._steps_seen = int(state["steps_seen"])
        self.fired_by, self.prune_info = state["fired_by"], dict(state["prune"])
        if state["pruned_at"] is None:
            self.recorder.load_state_dict(state["recorder"])
            return
        from ..engine.persist import kept_masks

        self._close_recorder(keep_state=False)  # the store is complete; nothing more to record
        self._cut(kept_masks(state["keep"], state["sizes"]), tuple(state.get("blocks", ())))
        self.pruned_at = int(state["pruned_at"])

    def _check_state(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ConfigError(
                "not an EarlyPruner state (missing format tag "
                f"{STATE_FORMAT!r}); pass the dict EarlyPruner.state_dict() made"
            )
        if int(state.get("version", 0)) > STATE_VERSION:
            raise ConfigError(
                f"the EarlyPruner state has version {state['version']}; this "
                f"forecastprune reads up to {STATE_VERSION}: upgrade it"
            )
        if self._steps_seen or self.pruned or self.recorder.last_step is not None:
            raise ConfigError(
                "call load_state_dict() on a fresh EarlyPruner, before its first step()"
            )
        saved = (state["forecaster"], int(state["total_steps"]))
        if saved != (str(self.forecaster), self.total_steps):
            raise ConfigError(
                f"the saved state comes from forecaster {saved[0]!r} over {saved[1]} steps; "
                f"this pruner has {self.forecaster!r} over {self.total_steps}: build it with "
                "the same settings to resume"
            )
        if state["pruned_at"] is None and self._tmp is not None:
            raise ConfigError(
                "this pruner records into a temporary store, so the γ history of the run "
                "being resumed is gone; pass store_path= (in both runs) to resume before the "
                "prune"
            )

    # ---------------------------------------------------------------- closing
    def close(self) -> None:
        """Flush the recorded γ to disk and close the store; safe to call twice."""
        self._close_recorder(keep_state=True)

    def __enter__(self) -> EarlyPruner:
        """Close on exit, and stop on SIGTERM/SIGINT with the store flushed (see the module)."""
        self._signals = flush_on_signals(self)
        self._signals.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        guard, self._signals = self._signals, None
        if guard is None:
            self.close()
        else:
            guard.__exit__(exc_type, exc, tb)

    def _close_recorder(self, keep_state: bool) -> None:
        if self._recorder_closed:
            return
        try:
            if keep_state:  # a closed recorder cannot report its position any more
                self._recorder_state = self.recorder.state_dict()
        finally:
            self._recorder_closed = True
            self.recorder.close()

    def _recorder_state_now(self) -> dict[str, Any]:
        if not self._recorder_closed:
            return self.recorder.state_dict()
        if self._recorder_state is None:
            raise ConfigError("the recorder was closed without saving its state")
        return self._recorder_state
