"""``pll serve`` as a user runs it: a process of its own (and its workers) on a port of its
own, for the tests that need real processes (several workers, SQLite's locks between them).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
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
    ``PLL_PUBLIC_URL`` with ``public_url``; stopped with SIGTERM."""
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
        yield Served(base, data, url, log, proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        if backend == "postgresql":
            _drop_postgres_database(name)
