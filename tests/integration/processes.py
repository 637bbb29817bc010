"""``pll serve`` as a user runs it: a process of its own (and its workers) on a port of its
own, for the tests that need real processes (several workers, SQLite's locks between them);
and what Linux's ``/proc`` tells about processes and their sockets.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import _drop_postgres_database, _postgres_database

PLL = str(Path(sys.executable).parent / "pll")


def free_port() -> int:
    """A port free at the moment (the server binds it right after)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Served:
    base: str
    data: Path
    url: str  #: the database's URL
    log: Path
    pid: int
    proc: subprocess.Popen[bytes]

    @property
    def metrics(self) -> Path:
        """The workers' metrics files (``pll serve --workers N``, N > 1)."""
        return self.data / "metrics" / str(self.pid)


def clean_env(data: Path, **extra: str) -> dict[str, str]:
    """This environment without the test run's own PLL settings, plus ``extra``."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PLL_") and k != "PROMETHEUS_MULTIPROC_DIR"
    }
    return clean | {"PLL_DATA_DIR": str(data), "PLL_SEAL_INTERVAL": "0"} | extra


@contextmanager
def pll_serve(
    tmp_path: Path,
    backend: str | None = "sqlite",
    *,
    workers: int = 2,
    public_url: bool = False,
    **env: str,
) -> Iterator[Served]:
    """``pll serve --workers N`` on a database of its own (``backend``: SQLite in its data
    folder, or a new PostgreSQL database, dropped afterwards; ``None``: the default, as
    ``env`` or the server chooses), development tokens on, its own address as
    ``PLL_PUBLIC_URL`` with ``public_url``; stopped with SIGTERM. Ready when it answers and,
    with several workers, when each of them listens (:func:`listening`)."""
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    name = f"pll_serve_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    url = ""
    if backend == "sqlite":
        url = f"sqlite:///{data / 'pll.sqlite3'}"
    elif backend == "postgresql":
        url = _postgres_database(name)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    settings = {"PLL_DEV_AUTH": "1"} | ({"PLL_DATABASE_URL": url} if url else {})
    settings |= ({"PLL_PUBLIC_URL": base} if public_url else {}) | env
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [PLL, "serve", "--port", str(port), "--workers", str(workers)],
            env=clean_env(data, **settings),
            stdout=out,
            stderr=out,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        while workers > 1 and len(listening(port)) < workers:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        yield Served(base, data, url, log, proc.pid, proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        if backend == "postgresql":
            _drop_postgres_database(name)


def children(pid: int) -> list[tuple[int, str]]:
    """The live (not zombie) child processes of ``pid``: (pid, command line)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append((int(entry), cmdline.replace(b"\0", b" ").decode()))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.1)


def _tcp(port: int, state: str) -> list[int]:
    """The inodes of the TCP sockets in ``state`` (``/proc/net/tcp``'s hex code) whose own
    port is ``port``."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                found.append(int(fields[9]))
    return found


def listening(port: int) -> list[int]:
    """The sockets listening on ``port`` (their inodes)."""
    return _tcp(port, "0A")


def accepted(port: int) -> list[int]:
    """The connections a server on ``port`` holds open (established, server side)."""
    return [inode for inode in _tcp(port, "01") if inode]  # 0: not accepted yet


def sockets_of(pid: int) -> set[int]:
    """The inodes of the sockets ``pid`` has open."""
    found = set()
    folder = Path(f"/proc/{pid}/fd")
    for fd in folder.iterdir() if folder.exists() else []:
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(int(target[8:-1]))
    return found
