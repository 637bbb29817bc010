"""``pll serve --workers N`` on Linux: N request workers, each listening on a socket of its own
on the same address (``SO_REUSEPORT``), so that the kernel spreads new connections over them.

Why not uvicorn's own ``workers=N`` (issue 20): its workers share one listening socket, and
the worker whose event loop wakes first accepts every connection waiting, so keep-alive
clients pile onto one process. Measured with 32 connections on two workers: 23/9, 27/5 and
32/0. The busy worker's requests queue behind each other while the other's core idles, which
is the long tail of the read benchmark. With a socket per worker, Linux picks the socket for
each new connection by a hash of its addresses and ports: each worker gets about 1/N of
them, at random (with 32 connections on two workers, a split of 16/16 ± 3; see
``man 7 socket``, ``SO_REUSEPORT``).

:class:`RequestWorkers` is the small supervisor ``pll serve`` runs for N > 1:

- each request worker is ``python -m pll.api.serve_workers HOST PORT PARENT``: it binds its
  socket and serves on it (:func:`serve_here`: ``uvicorn.Server(uvicorn.Config(...))
  .run(sockets=[...])``, uvicorn's public API); uvicorn listens on it only once the
  application has started, so no connection is queued on a worker that is not ready;
- a worker that dies is started again after :data:`RESTART_AFTER` seconds; one that cannot
  start the first time (exit :data:`NOT_STARTED`) stops ``pll serve`` with an error, as it
  would not start the next time either;
- SIGTERM or SIGINT stops them all: each finishes the requests it has (uvicorn's graceful
  shutdown) and is killed after :data:`STOP_WITHIN` seconds, or at once on a second signal;
- each runs in a session of its own (a Ctrl-C in the terminal reaches ``pll serve``, which
  stops them in order) and dies with ``pll serve`` (:func:`pll.processes.die_with`);
- a worker that ended is marked dead for the metrics (prometheus_client's multiprocess mode,
  ``PROMETHEUS_MULTIPROC_DIR``, docs/operations.md "Several workers"); its counts stay.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import uvicorn
from prometheus_client import multiprocess

from pll.processes import StopSignals, die_with

#: The application every request worker serves.
APP = "pll.api.app:create_app"
#: How a request worker that could not start exits (bind its socket, build the application).
NOT_STARTED = 3
#: Seconds between a request worker's end and its replacement.
RESTART_AFTER = 1.0
#: Seconds a request worker gets to finish its requests when stopped, before it is killed.
STOP_WITHIN = 30.0
#: How often the supervisor looks at its workers (seconds).
POLL = 0.2
_MODULE = "pll.api.serve_workers"


def supported() -> bool:
    """Whether this system spreads connections over sockets sharing a port (Linux does;
    elsewhere ``SO_REUSEPORT`` may exist but give every connection to one socket)."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def bind(host: str, port: int, *options: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (IPv6 when ``host`` has a colon, as uvicorn
    decides) with the ``SOL_SOCKET`` ``options`` on, not yet listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        for option in options:
            sock.setsockopt(socket.SOL_SOCKET, option, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def worker_socket(host: str, port: int) -> socket.socket:
    """A request worker's socket: one of the group on ``host:port`` (``SO_REUSEPORT``), and
    bound although connections of the last run linger in TIME_WAIT (``SO_REUSEADDR``)."""
    return bind(host, port, socket.SO_REUSEADDR, socket.SO_REUSEPORT)


def claim(host: str, port: int) -> socket.socket:
    """A socket that holds ``host:port`` for this ``pll serve`` while its workers run, once
    it is known that no one else has it. So a second ``pll serve`` on the same port, started
    while the first one starts or runs, is refused (``OSError``) instead of quietly taking
    half of its connections. With port 0, the one the system picks.

    Linux's rules (``man 7 socket``) make it so: the probe, bound without ``SO_REUSEPORT``,
    fails where any socket listens, or where a socket without ``SO_REUSEADDR`` (a claim) is
    bound. The claim has ``SO_REUSEPORT`` so that the workers' sockets bind beside it, and
    never listens, so it takes no connection."""
    with bind(host, port, socket.SO_REUSEADDR) as probe:
        chosen: int = probe.getsockname()[1]
    return bind(host, chosen, socket.SO_REUSEPORT)


@dataclass
class _Slot:
    """One request worker's place: its process, and when to start the next one."""

    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0
    due: float = 0.0


class RequestWorkers:
    """``count`` request workers on ``host:port`` until SIGTERM or SIGINT (module docstring).
    ``say`` reports what happens to them (a line on stderr)."""

    def __init__(self, count: int, host: str, port: int, say: Callable[[str], None]) -> None:
        self.count, self.host, self.port, self.say = count, host, port, say
        self._slots: list[_Slot] = []
        self._signals: list[int] = []

    def run(self) -> int:
        """Run the workers until asked to stop; 0, or 1 when one could not start."""
        signals = StopSignals()
        self._signals = signals.received
        stop = signals.event
        self._slots = [_Slot() for _ in range(self.count)]
        failed = False
        try:
            for slot in self._slots:
                self._start(slot)
            while not stop.wait(POLL):
                failed = self._look()
                if failed:
                    break
        finally:
            self._stop()
            signals.restore()
        return 1 if failed else 0

    def _start(self, slot: _Slot) -> None:
        # From the main thread, which lives as long as pll serve: the kernel's death signal
        # follows the thread that started the child (pll.processes.die_with).
        slot.proc = subprocess.Popen(  # noqa: S603 - this interpreter, fixed arguments
            [sys.executable, "-m", _MODULE, self.host, str(self.port), str(os.getpid())],
            start_new_session=True,
        )
        slot.starts += 1

    def _look(self) -> bool:
        """Start again the workers that ended; True if one could not start at all."""
        now = time.monotonic()
        for slot in self._slots:
            proc = slot.proc
            if proc is None:
                if now >= slot.due:
                    self._start(slot)
                continue
            code = proc.poll()
            if code is None:
                continue
            _mark_dead(proc.pid)
            slot.proc = None
            if code == NOT_STARTED and slot.starts == 1:
                self.say(f"request worker {proc.pid} could not start; stopping")
                return True
            self.say(
                f"request worker {proc.pid} ended ({code}); starting another in "
                f"{RESTART_AFTER:.0f} s"
            )
            slot.due = now + RESTART_AFTER
        return False

    def _stop(self) -> None:
        """SIGTERM to every worker, then wait for them; SIGKILL after :data:`STOP_WITHIN`
        seconds or on another signal."""
        seen = len(self._signals)
        procs = [slot.proc for slot in self._slots if slot.proc is not None]
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_WITHIN
        while any(proc.poll() is None for proc in procs):
            if time.monotonic() >= deadline or len(self._signals) > seen:
                for proc in procs:
                    if proc.poll() is None:
                        self.say(f"request worker {proc.pid} had not stopped; killed")
                        proc.kill()
                        proc.wait()
            time.sleep(POLL / 4)
        for proc in procs:
            _mark_dead(proc.pid)


def _mark_dead(pid: int) -> None:
    """Tell the metrics that ``pid`` is gone: its live gauges go; its counts stay."""
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if folder:
        multiprocess.mark_process_dead(pid, folder)  # type: ignore[no-untyped-call]


def serve_here(host: str, port: int, sock: socket.socket | None = None) -> bool:
    """Serve the application in this process until SIGTERM or SIGINT: on ``sock`` (bound,
    not yet listening) if given, else on ``host:port``. False if it did not start.

    Everything the application holds once built lives as long as the process, so it is
    moved out of the garbage collector's way (``gc.freeze``) before serving: a full
    collection then walks only what requests made since, not the ~143,000 objects of the
    application and its libraries, which took ~75 ms of CPU on the benchmark machine, a
    pause for every request in flight in the worker (issue 20, bench/README.md)."""
    config = uvicorn.Config(
        APP, factory=True, host=host, port=port, log_level="warning", access_log=False
    )
    config.load()  # builds the application (create_app)
    gc.collect()
    gc.freeze()
    server = uvicorn.Server(config)
    try:
        server.run(sockets=None if sock is None else [sock])
    except SystemExit:
        # uvicorn exits when the application fails its startup
        if not server.started:
            return False
        raise
    return server.started


def serve_one(host: str, port: int, parent: int) -> None:
    """One request worker: the application on a socket of its own until SIGTERM, or exit
    :data:`NOT_STARTED` if it could not start."""
    die_with(parent)
    try:
        sock = worker_socket(host, port)
    except OSError as exc:
        sys.stderr.write(f"request worker {os.getpid()}: {host}:{port}: {exc}\n")
        sys.exit(NOT_STARTED)
    try:
        started = serve_here(host, port, sock)
    except SystemExit as exc:
        # uvicorn exits when the application cannot be imported (config.load)
        sys.exit(exc.code if exc.code == 0 else NOT_STARTED)
    if not started:
        sys.exit(NOT_STARTED)


if __name__ == "__main__":
    serve_one(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
