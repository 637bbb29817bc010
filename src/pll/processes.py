"""Child processes that must not outlive the ``pll serve`` that started them (its ``pll
worker`` and its request workers, :mod:`pll.cli_worker` and :mod:`pll.api.serve_workers`)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys


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
