"""The :class:`GammaRecorder`: snapshots every selected BN channel's γ into a store.

Two plain calls join a user's loop (scoring apart from cutting, as in Torch-Pruning)::

    recorder = GammaRecorder(model, "runs/x/gammas", every=2, optimizer=opt, total_steps=n)
    for it, (x, y) in enumerate(batches, start=1):
        loss = criterion(model(x), y)
        opt.zero_grad(); loss.backward(); opt.step()
        recorder.step(it)      # after optimizer.step(), before scheduler.step()
        scheduler.step()
    recorder.close()

``it`` counts completed optimizer updates, so the LR read at a snapshot is the one that update
used (see :mod:`forecastprune.core.lr_clock` for the time axis built on it). Call
``recorder.step(0)``
before the loop to also record the initial γ.

Recording is cheap: snapshots stay on the model's device and go to the host every
``host_every`` snapshots, where a background thread appends them to the store
(:mod:`.snapshot_buffer`). Read :attr:`GammaRecorder.store` only after
:meth:`~GammaRecorder.flush` or :meth:`~GammaRecorder.close`. The store is opened
lazily on the first :meth:`GammaRecorder.step`, which is what lets a resumed run call
:meth:`GammaRecorder.load_state_dict` first and keep appending to the same store. Under
``torch.distributed`` only rank 0 writes; the other ranks' recorders do nothing, since DDP keeps
every rank's γ identical.
"""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any

import torch
from torch import nn

from .._util import check_step, is_rank_zero, positive_int
from ..core.bn_layers import Selection, layout_of, model_fingerprint, select_bn_layers, unwrap_model
from ..core.layout import ChannelLayout
from ..core.lr_clock import check_lr_schedule, planned_lr_schedule
from ..errors import ConfigError, StoreError
from ..store import GammaTrajectoryStore
from ..store.format import DEFAULT_FLUSH_EVERY
from .snapshot_buffer import DeviceSnapshotBuffer, StoreWriter

STATE_FORMAT = 1


class GammaRecorder:
    """Records the raw signed γ of the selected BatchNorm layers every ``every`` iterations.

    Args:
        model: the model being trained (possibly wrapped in DDP/DataParallel); never modified.
        store_or_path: a store directory to create (or, after :meth:`load_state_dict`, to
            reopen for appending), or an already open, writable
            :class:`~forecastprune.store.GammaTrajectoryStore` with the same layout.
        every: snapshot when ``iteration % every == 0``.
        optimizer: the LR at each snapshot is read from ``param_groups[0]["lr"]``; without one
            the store's LR column is NaN.
        layers: BN names or fnmatch patterns to record (default: every affine BatchNorm).
        exclude: BN names or patterns to leave out.
        metadata: extra training metadata for the store; these keys win over the recorder's
            own (``model``, ``record_every``, ``lr``, ``total_steps``, ``lr_schedule``).
        flush_every: snapshots the store buffers before writing a segment.
        total_steps: planned number of optimizer updates, stored in the metadata.
        lr_schedule: the planned schedule as ``[[step, lr], ...]``, or a torch LR scheduler
            stepped once per iteration (needs ``total_steps``). For a scheduler stepped per
            epoch, pass ``planned_lr_schedule(scheduler, total_steps, steps_per_epoch)`` from
            :mod:`forecastprune.core.lr_clock`.
        host_every: snapshots kept on the device between host transfers (default:
            ``flush_every``, so each transfer fills one store segment). A NaN/Inf γ is
            rejected by the store; the :class:`~forecastprune.errors.StoreError` (snapshots
            before the bad one kept, the rest of its batch dropped) is raised by the next
            :meth:`step`, :meth:`flush` or :meth:`close` after the writer meets it.
        overwrite: replace an existing store at ``store_or_path``.

    Raises:
        ConfigError: on bad arguments.
        LayoutError: when the layer selection is empty or a pattern matches nothing, or a
            given store's layout differs from the selection.
    """

    def __init__(
        self,
        model: nn.Module,
        store_or_path: GammaTrajectoryStore | str | Path,
        every: int = 1,
        optimizer: torch.optim.Optimizer | None = None,
        layers: Selection = None,
        exclude: Selection = None,
        metadata: dict[str, Any] | None = None,
        flush_every: int = DEFAULT_FLUSH_EVERY,
        total_steps: int | None = None,
        lr_schedule: Any = None,
        host_every: int | None = None,
        overwrite: bool = False,
    ) -> None:
        self.every = positive_int(every, "every")
        self.flush_every = positive_int(flush_every, "flush_every")
        self.host_every = None if host_every is None else positive_int(host_every, "host_every")
        selected = select_bn_layers(model, layers, exclude)
        self._bns = [bn for _, bn in selected]
        self.layout: ChannelLayout = layout_of(selected)
        self.fingerprint = model_fingerprint(model, layers, exclude)
        self._optimizer = optimizer
        self.metadata = self._build_metadata(model, metadata, total_steps, lr_schedule)
        self._overwrite = overwrite
        self._store, self._path = self._resolve_store(store_or_path)
        self._owns_store = self._store is None
        self._writer: StoreWriter | None = None
        self._pending: DeviceSnapshotBuffer | None = None  # created with the writer
        self._started = self._closed = self._resumed = False
        self._active = True
        self._last_step: int | None = None
        self._resume_floor = -1
        self._count = 0

    # ---------------------------------------------------------------- the two loop calls
    def step(self, iteration: int) -> bool:
        """Snapshot if ``iteration`` is a multiple of ``every``.

        Args:
            iteration: completed optimizer updates so far (0 = before training).

        Returns:
            True if a snapshot was taken (always False on ranks other than 0).
        """
        if check_step(iteration, "iteration") % self.every:
            return False
        return self.snapshot(iteration)

    def snapshot(self, step: int) -> bool:
        """Snapshot now, whatever the interval (e.g. the last step of a run).

        Args:
            step: the step to record it under; must exceed the previous snapshot's.

        Returns:
            True if recorded; False on ranks other than 0, or for a step the store already
            held when a resumed run reopened it (the first run's snapshot is kept).

        Raises:
            ConfigError: if the recorder is closed or ``step`` does not increase.
        """
        step = check_step(step)
        if self._closed:
            raise ConfigError("this GammaRecorder is closed; create a new one to keep recording")
        if not self._started:
            self._start()
        if not self._active:
            return False
        assert self._writer is not None  # started on the writing rank
        self._writer.raise_error()
        if self._last_step is not None and step <= self._last_step:
            if step <= self._resume_floor:
                return False
            raise ConfigError(
                f"snapshot steps must increase; got step {step} after step {self._last_step}. "
                "Pass the global iteration count, not the index within an epoch"
            )
        assert self._pending is not None  # created with the writer
        self._pending.capture(step, self._current_lr())
        self._last_step = step
        self._count += 1
        return True

    # ---------------------------------------------------------------- persistence
    def flush(self) -> None:
        """Move pending snapshots to the host and commit them to disk; waits for the writer.

        Raises:
            StoreError: if the store rejected a snapshot (e.g. NaN/Inf γ) since the last call.
        """
        if self._pending is not None:
            self._pending.to_host()
        if self._writer is not None:
            self._writer.sync()

    def close(self) -> None:
        """Flush, and close the store if this recorder opened it; safe to call twice."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            if self._writer is not None:
                self._writer.stop()
            if self._owns_store and self._store is not None:
                self._store.close()

    def state_dict(self) -> dict[str, Any]:
        """Progress to save in a checkpoint; flushes first so the store matches it on disk."""
        self.flush()
        return {
            "format": STATE_FORMAT,
            "layout": self.layout.to_json(),
            "fingerprint": self.fingerprint,
            "every": self.every,
            "last_step": self._last_step,
            "snapshots": self._count,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume: the store is reopened for appending on the next :meth:`step`.

        Snapshots at steps the store already holds (a run resumed from a checkpoint older
        than its last flush) are skipped rather than rejected.

        Args:
            state: a dict from :meth:`state_dict`.

        Raises:
            ConfigError: if called after recording started, or ``state`` is malformed or comes
                from a different model.
            LayoutError: if ``state`` was recorded for other BN layers.
        """
        if self._started:
            raise ConfigError("call load_state_dict() before the first step() of the recorder")
        missing = {"format", "layout", "fingerprint", "last_step", "snapshots"} - set(state)
        if missing or state["format"] != STATE_FORMAT:
            raise ConfigError(
                f"not a GammaRecorder state (format {STATE_FORMAT}); missing keys "
                f"{sorted(missing)} or format {state.get('format')!r}"
            )
        self.layout.check_same(ChannelLayout.from_json(state["layout"]), "the saved state")
        if state["fingerprint"] != self.fingerprint:
            raise ConfigError(
                "the saved recorder state comes from a different model architecture "
                f"({state['fingerprint']} vs {self.fingerprint}); resume with the same model"
            )
        last = state["last_step"]
        self._last_step = None if last is None else int(last)
        self._resume_floor = -1 if last is None else int(last)
        self._count = int(state["snapshots"])
        self._resumed = True

    @property
    def store(self) -> GammaTrajectoryStore | None:
        """The store written to (None before the first step, or on ranks other than 0).

        A background thread appends to it: call :meth:`flush` before reading it.
        """
        return self._store

    @property
    def num_pending(self) -> int:
        """Snapshots still in the device buffer, not yet handed to the store."""
        return 0 if self._pending is None else len(self._pending)

    @property
    def last_step(self) -> int | None:
        return self._last_step

    @property
    def num_snapshots(self) -> int:
        """Snapshots taken, including any from before a resume."""
        return self._count

    def __enter__(self) -> GammaRecorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self._path if self._path is not None else self._store
        return (
            f"GammaRecorder({len(self.layout)} BN layers, {self.layout.total} channels, "
            f"every={self.every}, store={where})"
        )

    # ---------------------------------------------------------------- internals
    def _current_lr(self) -> Any:
        if self._optimizer is None:
            return None
        lr = self._optimizer.param_groups[0]["lr"]
        # a tensor LR is updated in place by schedulers and read on the host only in batches
        return lr.detach().clone() if isinstance(lr, torch.Tensor) else float(lr)

    def _start(self) -> None:
        """Open the store and the writer on rank 0; other ranks become inert."""
        if not is_rank_zero():
            self._started, self._active = True, False
            return
        if self._store is None:
            self._store = self._open_path()
        if self._resumed and len(self._store):
            floor = int(self._store.steps[-1])
            self._resume_floor = max(self._resume_floor, floor)
            self._last_step = max(self._last_step or -1, floor)
        self._writer = StoreWriter(self._store)
        self._pending = DeviceSnapshotBuffer(
            self._bns, self.host_every or self.flush_every, self._writer
        )
        self._started = True

    def _open_path(self) -> GammaTrajectoryStore:
        assert self._path is not None  # set whenever no store object was given
        if not self._resumed:
            return GammaTrajectoryStore.create(
                self._path,
                self.layout,
                metadata=self.metadata,
                fingerprint=self.fingerprint,
                flush_every=self.flush_every,
                overwrite=self._overwrite,
            )
        store = GammaTrajectoryStore.open(self._path, mode="a")
        try:
            self.layout.check_same(store.layout, f"the store at {self._path}")
            if store.fingerprint not in (None, self.fingerprint):
                raise StoreError(
                    f"the store at {self._path} was recorded from a different model "
                    f"architecture (fingerprint {store.fingerprint}, this model "
                    f"{self.fingerprint}); resume with the same model or record into a new store"
                )
        except BaseException:
            store.close()
            raise
        return store

    def _resolve_store(self, store_or_path: Any) -> tuple[GammaTrajectoryStore | None, Path | None]:
        if isinstance(store_or_path, GammaTrajectoryStore):
            if store_or_path.mode != "a" or store_or_path.closed:
                raise ConfigError(
                    f"the store at {store_or_path.path} is not open for writing; pass an open "
                    "store from GammaTrajectoryStore.create(...) or open(path, mode='a')"
                )
            self.layout.check_same(store_or_path.layout, f"the store at {store_or_path.path}")
            return store_or_path, None
        if isinstance(store_or_path, (str, Path)):
            return None, Path(store_or_path)
        raise ConfigError(
            "store_or_path must be a GammaTrajectoryStore or a directory path; got "
            f"{type(store_or_path).__name__}"
        )

    def _build_metadata(
        self,
        model: nn.Module,
        extra: dict[str, Any] | None,
        total_steps: int | None,
        lr_schedule: Any,
    ) -> dict[str, Any]:
        meta: dict[str, Any] = {"model": type(unwrap_model(model)).__name__}
        meta["record_every"] = self.every
        if self._optimizer is not None:
            meta["lr"] = float(self._optimizer.param_groups[0]["lr"])
        if total_steps is not None:
            meta["total_steps"] = positive_int(total_steps, "total_steps")
        if lr_schedule is not None:
            meta["lr_schedule"] = _schedule_list(lr_schedule, total_steps)
        meta.update(extra or {})
        return meta


def _schedule_list(lr_schedule: Any, total_steps: int | None) -> list[list[float]]:
    """A planned ``[[step, lr], ...]`` list from a list or a torch LR scheduler."""
    if isinstance(lr_schedule, torch.optim.lr_scheduler.LRScheduler):
        if total_steps is None:
            raise ConfigError(
                "planning the LR schedule from a scheduler needs total_steps=<planned updates>"
            )
        return planned_lr_schedule(lr_schedule, total_steps)
    return check_lr_schedule(lr_schedule)
