"""``pll worker``: the background work as a process of its own (issue 20), and the one child
``pll serve`` starts when ``PLL_BACKGROUND=process`` (:class:`WorkerChild`).

What the worker runs, and why several at once are safe, is :mod:`pll.events.worker`.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time

import click

from pll import cli_common as common
from pll.processes import StopSignals, die_with

log = logging.getLogger("pll.worker")

#: How often a worker started by ``pll serve`` looks whether its parent is still there (the
#: kernel tells it at once on Linux; this is for the systems where it does not).
PARENT_CHECK = 1.0
#: How long ``pll serve`` waits after its worker died before it starts another, and how long
#: it gives a worker to finish its batch when stopping it before it kills it (seconds).
RESTART_AFTER = 5.0
STOP_WITHIN = 40.0


@click.command()
@click.option(
    "--parent",
    type=int,
    default=None,
    hidden=True,
    help="stop when this process ends (set by pll serve for the worker it starts)",
)
def worker(parent: int | None) -> None:
    """Run the background work until stopped (SIGTERM or Ctrl-C): the audit sealer, the
    statistics consumer and the event dispatcher. Several may run at once."""
    from pll.cli_clients import case_base
    from pll.cli_guard import refuse_unfinished_load, start_serving
    from pll.events.worker import background

    if parent is not None:
        die_with(parent)
    settings = common.settings()
    database = common.database(settings)
    # held until this process ends: no bulk import loads beside it (pll.store.load_guard)
    stop_serving = start_serving(database.url, "worker", child=parent is not None)
    database.upgrade()
    refuse_unfinished_load(database)
    # the jobs log their failures (pll.worker, pll.events); the migrations' chatter is not
    # wanted here, so this comes after them
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    work = background(case_base(database, settings), settings)
    stop = StopSignals().event
    if settings.inline and parent is None:
        click.echo(
            "note: PLL_BACKGROUND is inline, so pll serve runs this work too (safe, but "
            "twice the work): set PLL_BACKGROUND=external for the servers.",
            err=True,
        )
    click.echo(f"pll worker {os.getpid()}: {', '.join(work.jobs) or 'nothing to run'}")
    threads = work.start(stop)
    while not stop.wait(PARENT_CHECK):
        if parent is not None and os.getppid() != parent:
            log.warning("pll serve (%d) is gone; stopping", parent)
            stop.set()
    for thread in threads:
        thread.join(STOP_WITHIN - 10)
    database.dispose()
    stop_serving()
    click.echo(f"pll worker {os.getpid()}: stopped")


class WorkerChild:
    """The one ``pll worker`` that ``pll serve`` runs beside its request workers
    (``PLL_BACKGROUND=process``): started before them, started again if it dies, stopped
    (SIGTERM, then SIGKILL after :data:`STOP_WITHIN` seconds) when ``pll serve`` stops. If
    ``pll serve`` itself is killed, the child is told by the kernel and stops too."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._watch: threading.Thread | None = None

    def start(self) -> None:
        self._spawn()
        self._watch = threading.Thread(target=self._supervise, name="worker-child", daemon=True)
        self._watch.start()

    def _spawn(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            # its own session: a Ctrl-C in the terminal reaches pll serve, which stops it in
            # order, instead of both at once. (The kernel's death signal follows the thread
            # that started it: this one at first, the supervising thread for a restart; both
            # live until pll serve stops it or dies.)
            self.proc = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
                [sys.executable, "-m", "pll", "worker", "--parent", str(os.getpid())],
                start_new_session=True,
            )

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            proc = self.proc
            if proc is None:
                return
            code = proc.wait()
            if self._stopping.is_set():
                return
            click.echo(
                f"pll worker {proc.pid} ended ({code}); starting another in {RESTART_AFTER:.0f} s",
                err=True,
            )
            if self._stopping.wait(RESTART_AFTER):
                return
            self._spawn()

    def stop(self) -> None:
        """Stop the worker (it finishes its batch) and wait for it."""
        with self._lock:
            self._stopping.set()
            proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_WITHIN
        try:
            proc.wait(max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            click.echo(f"pll worker {proc.pid} did not stop in time; killed", err=True)
            proc.kill()
            proc.wait()
