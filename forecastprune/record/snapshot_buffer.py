"""The recorder's data path: γ snapshots on the device, batched to the host, written by a thread.

Each snapshot is one ``torch.cat`` of the γ tensors into a preallocated buffer on the model's
device; the buffer goes to the host only when it is full (or on a flush), so on an accelerator
there is no host synchronisation per step. Host batches are appended to the store by a
background thread: the store's flushes (segment writes, fsync) would otherwise stall the
training loop for milliseconds each, and fsync releases the GIL, so the disk work overlaps
training.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from ..errors import ConfigError
from ..store import GammaTrajectoryStore


class StoreWriter:
    """Appends host batches to a store on a daemon thread, in submission order.

    The queue is bounded, so a disk slower than training applies back-pressure instead of
    growing memory. An error (a snapshot the store rejects) is kept and raised in the training
    thread by the next :meth:`raise_error`; the rest of that batch is dropped.
    """

    def __init__(self, store: GammaTrajectoryStore, max_batches: int = 8) -> None:
        self._store = store
        self._queue: queue.Queue[tuple[str, Any] | None] = queue.Queue(maxsize=max_batches)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="gamma-recorder", daemon=True)
        self._thread.start()

    def submit(self, steps: list[int], lrs: list[Any], rows: Any) -> None:
        self.raise_error()
        self._queue.put(("append", (steps, lrs, rows)))

    def sync(self) -> None:
        """Wait until everything submitted is appended and flushed to disk."""
        self._queue.put(("flush", None))
        self._queue.join()
        self.raise_error()

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()

    def raise_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self._handle(*item)
            except BaseException as exc:  # handed to the training thread, never lost
                self._error = exc
            finally:
                self._queue.task_done()
        self._queue.task_done()

    def _handle(self, kind: str, payload: Any) -> None:
        if kind == "flush":
            self._store.flush()
            return
        for step, lr, row in zip(*payload):
            # float() of a tensor LR syncs its device: done here, off the training thread
            self._store.append(step, row, None if lr is None else float(lr))


class DeviceSnapshotBuffer:
    """Pending snapshots on the model's device, handed to a :class:`StoreWriter` in batches.

    Args:
        bns: the recorded BatchNorm layers, in layout order.
        rows: snapshots kept on the device between host transfers.
        writer: receives each host batch.
    """

    def __init__(self, bns: Sequence[nn.Module], rows: int, writer: StoreWriter) -> None:
        self._bns = list(bns)
        self._rows = rows
        self._width = sum(int(bn.weight.numel()) for bn in self._bns)
        self._writer = writer
        self._buffer: torch.Tensor | None = None
        self._steps: list[int] = []
        self._lrs: list[Any] = []

    def __len__(self) -> int:
        """Snapshots on the device, not yet handed to the writer."""
        return len(self._steps)

    def capture(self, step: int, lr: Any) -> None:
        """Copy γ into the device buffer (one cat, no host sync); a full buffer goes to the
        host."""
        weights = [bn.weight for bn in self._bns]
        if self._buffer is None or self._buffer.device != weights[0].device:
            self.to_host()  # the model moved: what was captured on the old device goes first
            self._buffer = self._allocate(weights[0].device)
        with torch.no_grad():  # no graph, so no per-tensor detach() calls either
            torch.cat(weights, out=self._buffer[len(self._steps)])
        self._steps.append(step)
        self._lrs.append(lr)
        if len(self._steps) == len(self._buffer):
            self.to_host()

    def to_host(self) -> None:
        """One device-to-host copy of every pending snapshot, handed to the writer thread."""
        n = len(self._steps)
        if n == 0 or self._buffer is None:
            return
        # a copy even on CPU: the buffer is reused while the writer still reads the rows
        rows = self._buffer[:n].to("cpu", copy=True).numpy()
        steps, lrs = self._steps, self._lrs
        self._steps, self._lrs = [], []
        self._writer.submit(steps, lrs, rows)

    def _allocate(self, device: torch.device) -> torch.Tensor:
        devices = {bn.weight.device for bn in self._bns}
        if len(devices) > 1:
            raise ConfigError(
                f"the selected BN layers live on several devices {sorted(map(str, devices))}; "
                "record them with one GammaRecorder per device (layers=...)"
            )
        return torch.empty((self._rows, self._width), dtype=torch.float32, device=device)
