"""Bounding work that may hang: user code (plugins, forecasters) with a deadline that holds.

Two tools, one per situation:

- :func:`start_child` forks a worker that can always be stopped: it leads its own process
  group, so stopping it kills whatever it spawned too (a plugin's helper processes), and on
  Linux it dies with its parent (``PR_SET_PDEATHSIG``), so a ``compare`` killed by SIGKILL
  leaves no orphan behind. :func:`run_isolated` runs one function that way and returns its
  result: ``forecast`` and ``prune`` call forecasters through it.
- :func:`time_limit` bounds work that must happen in this process (importing a plugin, whose
  registrations the process needs) with ``SIGALRM``: Python code and sleeps are interrupted at
  the deadline; code stuck inside one C call is interrupted when it returns.

Where ``fork`` does not exist (Windows) :func:`run_isolated` runs the function in-process, and
where ``SIGALRM`` does not exist or outside the main thread :func:`time_limit` does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import multiprocessing as mp
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

from .errors import ForecasterError, ForecastPruneError

#: seconds per forecaster, all cutoffs together: long enough for every built-in on a COCO-length
#: YOLOv3 store, short enough that a hung plugin cannot stall a comparison for good
DEFAULT_TIMEOUT = 300.0
#: the longest timeout accepted (a year): beyond it the OS timers overflow; None means no limit
MAX_TIMEOUT = 365 * 24 * 3600.0

#: ``prctl`` option that sends a signal to this process when its parent exits (Linux)
_PR_SET_PDEATHSIG = 1


def can_fork() -> bool:
    """Whether workers can be forked here."""
    return "fork" in mp.get_all_start_methods()


def start_child(target: Callable[..., None], args: tuple) -> Callable[[], None]:
    """Fork ``target(*args)`` as a stoppable worker; return the function that stops it.

    The returned ``stop()`` kills the worker's whole process group (if still running) and reaps
    the worker; calling it after the worker finished only reaps it. Until then a SIGTERM to
    this process kills the group first and is then handled as it would have been (by default
    it ends the process, which runs no cleanup that could stop the worker).
    """
    parent = os.getpid()
    process = mp.get_context("fork").Process(
        target=_child, args=(parent, target, args), daemon=True
    )
    process.start()
    # also done by the child, whoever runs first: an error means it did (or has exited)
    with contextlib.suppress(OSError):
        os.setpgid(process.pid, process.pid)
    restore = _kill_on_sigterm(process.pid)

    def stop() -> None:
        restore()
        kill_group(process.pid, leader_alive=process.exitcode is None)
        process.join()

    return stop


def _kill_on_sigterm(pid: int) -> Callable[[], None]:
    """Until the returned function is called, SIGTERM kills group ``pid`` before its usual
    effect (main thread only: elsewhere signal handlers cannot be set)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = signal.getsignal(signal.SIGTERM)

    def handle(signum: int, frame: Any) -> None:
        kill_group(pid)
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            os.kill(os.getpid(), signum)  # the default action: end with SIGTERM's status

    signal.signal(signal.SIGTERM, handle)
    return lambda: signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


def kill_group(pid: int, leader_alive: bool = True) -> None:
    """SIGKILL the process group ``pid`` leads: the worker and everything it spawned (also
    after the worker itself has exited: the group lives on while any member does)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        if leader_alive:  # it never got its own group: kill it alone
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _child(parent: int, target: Callable[..., None], args: tuple) -> None:
    with suppress(OSError):
        os.setpgid(0, 0)
    _die_with_parent(parent)
    target(*args)


def _die_with_parent(parent: int) -> None:
    """Ask Linux to SIGKILL this process when its parent exits (best effort elsewhere)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)


def run_isolated(function: Callable[[], Any], *, timeout: float | None, what: str) -> Any:
    """Run ``function()`` in a stoppable worker and return its (picklable) result.

    Args:
        function: the work; it sees this process's state as of the call (fork).
        timeout: seconds before the worker is killed (None: no limit).
        what: names the work in messages, e.g. ``"forecaster 'sma'"``.

    Returns:
        What ``function`` returned.

    Raises:
        ForecastPruneError: the one ``function`` raised, unchanged.
        ForecasterError: on the deadline, on any other exception (type and message kept), on
            ``sys.exit`` inside the work, or when the worker died without an answer.
    """
    if not can_fork():  # pragma: no cover - Windows
        return function()
    receiver, sender = mp.Pipe(duplex=False)
    stop = start_child(_answer, (sender, function))
    sender.close()  # only the worker holds the write end: its death reads as EOF
    try:
        if not receiver.poll(None if timeout is None else max(0.0, timeout)):
            raise ForecasterError(
                f"{what} did not finish within {timeout:g} s and was stopped; raise --timeout "
                "or choose a faster forecaster"
            )
        try:
            kind, value = receiver.recv()
        except (EOFError, OSError):
            raise ForecasterError(
                f"{what} ended its worker process without an answer (a "
                "crash, or the process was killed)"
            ) from None
    finally:
        receiver.close()
        stop()
    if kind == "ok":
        return value
    if kind == "user":
        raise value
    raise ForecasterError(f"{what} {value}")


def _answer(sender: Any, function: Callable[[], Any]) -> None:
    """Worker body: send ("ok", result) or why there is none, whatever the work does."""
    try:
        message: tuple[str, Any] = ("ok", function())
    except ForecastPruneError as exc:
        message = ("user", _portable(exc))
    except SystemExit as exc:  # a plugin calling sys.exit() must not look like success
        message = ("failed", f"called sys.exit({exc.code!r}) instead of returning a forecast")
    except Exception as exc:  # noqa: BLE001 - user code may fail in any way; report it
        message = ("failed", f"failed: {type(exc).__name__}: {exc}")
    try:
        sender.send(message)
    except Exception as exc:  # noqa: BLE001 - e.g. an exception that cannot be pickled
        sender.send(("failed", f"failed: {type(exc).__name__}: {exc}"))
    finally:
        sender.close()


def _portable(exc: ForecastPruneError) -> ForecastPruneError:
    """``exc`` if it survives pickling (a custom ``__init__`` may not), else its message as a
    plain :class:`ForecasterError`."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - any failure means: send the message instead
        return ForecasterError(str(exc))
    return exc


class _Expired(BaseException):
    """Raised by the alarm; a BaseException so a plugin's ``except Exception`` cannot eat it."""


@contextmanager
def time_limit(seconds: float | None, what: str) -> Iterator[None]:
    """Interrupt the block after ``seconds`` (None or 0: no limit).

    An alarm already pending outside (a caller's own deadline) is kept: if it falls due first
    its handler runs as it would have, and it is re-armed for its remaining time afterwards.

    Raises:
        ForecasterError: ``what`` and the limit, when the block ran past it.
    """
    usable = (
        seconds
        and math.isfinite(seconds)
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return
    started = time.monotonic()
    outer_handler = signal.getsignal(signal.SIGALRM)
    outer_delay, _ = signal.getitimer(signal.ITIMER_REAL)
    outer_due = [bool(outer_delay)]

    def expire(signum: int, frame: Any) -> None:
        if outer_due[0] and time.monotonic() - started >= outer_delay - 1e-3:
            outer_due[0] = False  # the caller's deadline, not ours: its handler decides
            if callable(outer_handler):
                outer_handler(signum, frame)
            return
        raise _Expired

    signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, min(seconds, outer_delay or seconds))
    try:
        yield
    except _Expired:
        raise ForecasterError(
            f"{what} did not finish within {seconds:g} s; fix it, or raise --timeout"
        ) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, outer_handler)
        if outer_due[0]:
            left = outer_delay - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-3))
