"""Child processes that must not outlive the ``pll serve`` that started them (its ``pll
worker`` and its request workers, :mod:`pll.cli_worker` and :mod:`pll.api.serve_workers`),
and long-running commands stopped by SIGTERM or Ctrl-C (:class:`StopSignals`)."""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import sys
import threading
from types import FrameType


def die_with(parent: int, sig: signal.Signals = signal.SIGTERM) -> None:
    """Have the kernel send this process ``sig`` when ``parent`` dies (Linux,
    ``PR_SET_PDEATHSIG``), and leave at once if it has died already: a child outliving its
    ``pll serve`` would be an orphan nobody stops.

    The kernel sends the signal when the *thread* that started this process ends, so the
    parent starts such children from a thread that lives as long as it does."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, sig)
    if os.getppid() != parent:
        sys.exit(0)


class StopSignals:
    """``event`` is set once SIGTERM or SIGINT arrives; ``received`` lists the signals in
    the order they came (a second one may mean "now, not in order").

    The handler only notes the signal and hands it to a thread of its own, which sets the
    event. Python runs a handler in the main thread between two of its bytecodes, which may
    be inside a :class:`threading.Event`'s ``wait`` or ``set`` while that thread holds the
    event's lock: a handler that sets the event itself then waits for a lock its own thread
    holds, forever (seen: a ``pll worker`` that had two SIGTERMs close together, the test's
    and the kernel's when its ``pll serve`` died, and never stopped). The hand-over is a
    :class:`queue.SimpleQueue`, whose ``put`` may be called from a signal handler (its
    documentation says so). Install it in the main thread; :meth:`restore` puts the
    previous handlers back and ends the thread."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.received: list[int] = []
        self._queue: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        # the thread first: were the handlers installed and it not started, no signal
        # would ever stop the process
        threading.Thread(target=self._watch, name="stop-signals", daemon=True).start()
        self._previous = {
            sig: signal.signal(sig, self._note) for sig in (signal.SIGTERM, signal.SIGINT)
        }

    def _note(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)  # no lock is taken: see the class's docstring
        self._queue.put_nowait(signum)

    def _watch(self) -> None:
        while self._queue.get() is not None:
            self.event.set()

    def restore(self) -> None:
        """Put back the handlers there were before (the event stays as it is)."""
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._queue.put_nowait(None)
