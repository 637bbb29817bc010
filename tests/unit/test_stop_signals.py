"""A long-running command stops on SIGTERM or Ctrl-C whenever the signal comes
(pll.processes.StopSignals): its handler takes no lock, so a signal that arrives while the
main thread holds its stop event's lock (inside the event's ``wait`` or ``set``) cannot
deadlock the process. Before, a ``pll worker`` given two SIGTERMs close together never
stopped."""

from __future__ import annotations

import subprocess
import sys

#: the main thread holds the stop event's lock when the signals come, as inside
#: Event.set or Event.wait (the lock is private to threading.Event: that moment cannot be
#: reached otherwise without a race); a handler that set the event itself would wait for
#: that lock forever
_SCRIPT = """
import os, signal, sys
from pll.processes import StopSignals

signals = StopSignals()
with signals.event._cond:
    os.kill(os.getpid(), signal.SIGTERM)
    os.kill(os.getpid(), signal.SIGINT)
    sum(range(10_000))  # the handler runs here, in this thread
stopped = signals.event.wait(10)
print(stopped, signals.received == [signal.SIGTERM, signal.SIGINT])
"""


def test_signals_while_the_stop_event_is_locked_stop_the_process() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", _SCRIPT],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "True"]


def test_the_previous_handlers_come_back_and_its_thread_ends() -> None:
    script = (
        "import signal, threading, time\nfrom pll.processes import StopSignals\n"
        "s = StopSignals(); s.restore()\n"
        "time.sleep(0.2)\n"
        "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler\n"
        "      and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL\n"
        "      and all(t.name != 'stop-signals' for t in threading.enumerate())\n"
        "      and not s.event.is_set())"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=False
    )
    assert proc.stdout.strip() == "True", proc.stderr
