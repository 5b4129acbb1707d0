"""Flush and close recordings when the process is told to stop (SIGTERM, SIGINT).

Schedulers (Slurm, Kubernetes, spot instances) send SIGTERM before they kill a job. Python's
default action for SIGTERM ends the process on the spot: no ``finally`` block runs, so the γ
snapshots a recorder still buffers — up to a flush interval, in memory and in its writer
thread — are lost. :func:`flush_on_signals` turns the signal into an exception instead::

    with flush_on_signals(recorder, store):
        trainer.fit()

The exception unwinds the training loop like ``KeyboardInterrupt`` does, every ``finally`` and
``with`` on the way runs, and the block's exit closes the given objects in order (a recorder's
``close`` flushes its buffer to disk; a store's ``close`` commits and releases its lock). The
process then exits with status ``128 + signal`` (143 for SIGTERM), as shells report a
signal-killed job.

The exception is raised from a signal handler rather than flushing inside the handler: the
handler runs between two bytecodes of the main thread, which may be holding the recorder's queue
lock at that moment, so flushing there could deadlock; unwinding first releases every lock.

Chaining: a signal whose previous disposition was *ignore* stays ignored (``nohup``, background
jobs). A previous Python handler is called instead of raising: Python's own SIGINT handler
raises ``KeyboardInterrupt`` (which unwinds and flushes the same way), and a handler that
returns normally — a framework's "stop gracefully at the next step" flag — keeps its meaning.
Only where the default action would have killed the process does the block raise
:class:`Preempted`. Handlers are installed only from the main thread (Python delivers signals
there alone); elsewhere the block still closes its objects on exit. The previous handlers are
restored on exit, and once a signal has ended the run, repeated ones are ignored until the
block has closed everything, so a second Ctrl-C cannot cut a flush in half.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Any, Protocol

from ..errors import ConfigError

__all__ = ["Preempted", "flush_on_signals"]

#: the signals a job scheduler or a terminal sends to stop a run
STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)


class Closable(Protocol):
    """Anything with an idempotent ``close()`` (a recorder, a store, an EarlyPruner)."""

    def close(self) -> None: ...


class Preempted(SystemExit):
    """Raised in the main thread when a stop signal arrives whose default action is to exit.

    A :class:`SystemExit` with code ``128 + signum``, so an uncaught one ends the process with
    the status a shell reports for that signal, and ``except Exception`` does not swallow it.

    Attributes:
        signum: the signal received.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(128 + int(signum))
        self.signum = int(signum)

    def __str__(self) -> str:
        return f"stopped by {signal.Signals(self.signum).name}"


@contextmanager
def flush_on_signals(
    *closables: Closable, signals: Sequence[signal.Signals] = STOP_SIGNALS
) -> Iterator[None]:
    """Turn stop signals into an exception inside the block; close ``closables`` on exit.

    Args:
        *closables: objects whose ``close()`` flushes them; closed in the order given on every
            exit of the block (normal, exception or signal). ``close`` must be safe to call
            twice, since code inside the block may close them first.
        signals: the signals to handle.

    Yields:
        Nothing; run the training inside the block.

    Raises:
        ConfigError: if an object has no ``close()`` method.
        Preempted: when a handled signal whose default action ends the process arrives.
    """
    for item in closables:
        if not callable(getattr(item, "close", None)):
            raise ConfigError(
                f"flush_on_signals needs objects with a close() method (a GammaRecorder, a "
                f"store, an EarlyPruner); got {type(item).__name__}"
            )
    guard = _Guard(signals)
    guard.install()
    try:
        yield
    finally:
        guard.closing = True  # from here on a repeated signal must not interrupt the flush
        try:
            _close_all(closables)
        finally:
            guard.restore()


class _Guard:
    """The handlers of one ``flush_on_signals`` block and the ones they replaced."""

    def __init__(self, signals: Sequence[signal.Signals]) -> None:
        self.signals = tuple(signals)
        self.previous: dict[int, Any] = {}
        self.closing = False

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal.signal works only there; the block still closes on exit
        for signum in self.signals:
            current = signal.getsignal(signum)
            if current == signal.SIG_IGN:
                continue  # ignored on purpose (nohup, background job): keep it so
            self.previous[signum] = current
            signal.signal(signum, self.handle)

    def restore(self) -> None:
        for signum, handler in self.previous.items():
            # None: installed outside Python; the closest restorable disposition is the default
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
        self.previous.clear()

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.closing:
            return
        previous = self.previous.get(signum)
        try:
            if callable(previous):
                previous(signum, frame)  # e.g. KeyboardInterrupt for SIGINT; may also return
                return
            raise Preempted(signum)
        except BaseException:
            # the run is ending: a repeated signal must not interrupt the unwinding's flushes
            self.closing = True
            raise


def _close_all(closables: Sequence[Closable]) -> None:
    """Close every object even if one fails; re-raise the first failure."""
    error: BaseException | None = None
    for item in closables:
        try:
            item.close()
        except BaseException as exc:  # the others must still be flushed
            error = error or exc
    if error is not None:
        raise error
