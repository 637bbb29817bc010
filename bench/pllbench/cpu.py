"""CPU use of the processes in a measurement, from /proc (read only), sampled in a thread.

Groups: the server (``pll serve`` and every process under it: its request workers and, on
PostgreSQL, the ``pll worker`` it starts for the sealer, the statistics and the dispatcher;
the command lines are kept in ``server_processes``), the load driver (wrk or pgbench),
PostgreSQL (every process named ``postgres``) and the whole machine. Reported as cores busy
on average (CPU seconds / wall seconds), so on this 2-core machine 2.0 is full.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[str, int, float] | None:
    """(comm, ppid, cpu seconds) of a process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is state (field 3); utime/stime are fields 14/15
    return comm, int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def _cmdline(pid: int) -> str:
    """A process's command line without its interpreter (``pll serve --port 8000``,
    ``-m pll worker --parent 123``), or "" if it is gone."""
    try:
        parts = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return ""
    parts = [p for p in parts if p]
    if parts and Path(parts[0]).name.startswith("python"):
        parts = parts[1:]
    if parts:
        parts[0] = Path(parts[0]).name
    return " ".join(parts)[:120]


def _machine() -> tuple[float, float, float, float]:
    """(busy, total, irq+softirq, steal) CPU seconds of the whole machine."""
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in parts[:8]]
    # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    total = sum(values)
    return (total - idle) / TICK, total / TICK, (values[5] + values[6]) / TICK, values[7] / TICK


def _server_part(cmdline: str) -> str:
    """Which part of ``pll serve`` a process of it is, by its command line."""
    if "serve_workers" in cmdline:
        return "request workers"
    if "pll worker" in cmdline:
        return "pll worker"
    return "supervisor"


class CpuSampler:
    """Use as a context manager around a measurement."""

    def __init__(self, server_pid: int | None, driver_pid_getter, interval: float = 0.25) -> None:  # type: ignore[no-untyped-def]
        self.server_pid = server_pid
        self.driver_pid_getter = driver_pid_getter
        self.interval = interval
        self._stop = threading.Event()
        self._base: dict[int, float] = {}
        self._last: dict[int, tuple[str, float]] = {}
        self._group: dict[int, str] = {}
        self.result: dict[str, float] = {}
        self.top_others: dict[str, float] = {}
        #: the command line of each process counted as the server's, as first seen
        self.server_processes: list[str] = []
        #: the server's cores by part: request workers, the background ``pll worker``, the
        #: supervisor (``pll serve`` itself)
        self.server_parts: dict[str, float] = {}
        self._part: dict[int, str] = {}

    def _classify(self, pid: int, comm: str, parents: dict[int, int]) -> str:
        if comm == "postgres":
            return "postgres"
        driver = self.driver_pid_getter()
        if driver is not None and pid == driver:
            return "driver"
        if self.server_pid is not None:
            p, hops = pid, 0
            while p > 1 and hops < 10:
                if p == self.server_pid:
                    return "server"
                p = parents.get(p, 0)
                hops += 1
        return "other:" + comm

    def _sample(self, first: bool) -> None:
        stats = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                s = _stat(int(entry))
                if s is not None:
                    stats[int(entry)] = s
        parents = {pid: s[1] for pid, s in stats.items()}
        for pid, (comm, _, cpu) in stats.items():
            group = self._group.get(pid)
            if group is None:
                group = self._group[pid] = self._classify(pid, comm, parents)
                if group == "server":
                    line = _cmdline(pid) or comm
                    self.server_processes.append(line)
                    self._part[pid] = _server_part(line)
            if pid not in self._base:
                self._base[pid] = cpu if first else 0.0
            self._last[pid] = (group, cpu)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample(False)

    def __enter__(self) -> CpuSampler:
        self._t0 = time.perf_counter()
        self._m0 = _machine()
        self._sample(True)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample(False)
        wall = time.perf_counter() - self._t0
        busy0, total0, irq0, steal0 = self._m0
        busy1, total1, irq1, steal1 = _machine()
        used: dict[str, float] = {"server": 0.0, "driver": 0.0, "postgres": 0.0}
        others: dict[str, float] = {}
        parts: dict[str, float] = {}
        for pid, (group, cpu) in self._last.items():
            delta = max(0.0, cpu - self._base.get(pid, 0.0))
            if group.startswith("other:"):
                others[group[6:]] = others.get(group[6:], 0.0) + delta
            else:
                used[group] += delta
            if group == "server":
                part = self._part.get(pid, "supervisor")
                parts[part] = parts.get(part, 0.0) + delta
        self.server_parts = {k: round(v / wall, 2) for k, v in sorted(parts.items())}
        self.result = {k: round(v / wall, 2) for k, v in used.items()}
        top = sorted(others.items(), key=lambda kv: -kv[1])[:4]
        self.top_others = {k: round(v / wall, 2) for k, v in top if v / wall >= 0.01}
        ncpu = os.cpu_count() or 1
        machine = (busy1 - busy0) / max(total1 - total0, 1e-9) * ncpu
        self.result["machine"] = round(machine, 2)
        span = max(total1 - total0, 1e-9)
        self.result["irq"] = round((irq1 - irq0) / span * ncpu, 2)
        self.result["steal"] = round((steal1 - steal0) / span * ncpu, 2)
        # everything else on the machine (other programs; also this benchmark's own sampling)
        self.result["other"] = round(max(0.0, machine - sum(used.values()) / wall), 2)


def wait_quiet(limit: float, threshold: float = 0.3, window: float = 1.0) -> tuple[bool, float]:
    """Wait (at most ``limit`` seconds) for a ``window`` in which the machine as a whole uses
    less than ``threshold`` cores; returns (quiet, cores busy in the last window)."""
    ncpu = os.cpu_count() or 1
    deadline = time.monotonic() + limit
    busy = 0.0
    while True:
        b0, t0, _, _ = _machine()
        time.sleep(window)
        b1, t1, _, _ = _machine()
        busy = (b1 - b0) / max(t1 - t0, 1e-9) * ncpu
        if busy < threshold:
            return True, round(busy, 2)
        if time.monotonic() >= deadline:
            return False, round(busy, 2)
