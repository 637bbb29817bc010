"""A throwaway PostgreSQL 15 primary with asynchronous streaming replicas (issue 21).

Built with the machine's own binaries (``initdb``, ``pg_basebackup -R``) in a temporary
folder, on loopback ports picked free, and removed afterwards even when the block fails.
The main cluster (127.0.0.1:5432) is never touched. Run as root, the commands run as the
``postgres`` user (PostgreSQL refuses root). Used by the replica tests and by
``bench/replica_bench.py``; all the cluster code of the replica work is here, in one place.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

BIN = Path(os.environ.get("PLL_PG_BIN", "/usr/lib/postgresql/15/bin"))
DATABASE = "pll"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _run(cmd: list[str]) -> None:
    done = subprocess.run(_as_owner(cmd), capture_output=True, text=True, timeout=180, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:2])} failed: {done.stderr.strip() or done.stdout}")


@dataclass
class Node:
    """One PostgreSQL server of the set."""

    directory: Path
    port: int
    running: bool = False

    @property
    def url(self) -> str:
        """The PLL database on this server (SQLAlchemy and libpq take it)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def start(self) -> None:
        log = self.directory.parent / f"{self.directory.name}.log"
        _run(
            [
                str(BIN / "pg_ctl"),
                "-D",
                str(self.directory),
                "-l",
                str(log),
                "-w",
                "-t",
                "120",
                "start",
            ]
        )
        self.running = True

    def stop(self, mode: str = "fast") -> None:
        # also when start() failed half-way: a postmaster may be up all the same
        if self.running or (self.directory / "postmaster.pid").exists():
            _run([str(BIN / "pg_ctl"), "-D", str(self.directory), "-m", mode, "-w", "stop"])
        self.running = False

    def sql(self, statement: str, database: str = DATABASE) -> tuple[object, ...] | None:
        url = f"postgresql://postgres@127.0.0.1:{self.port}/{database}"
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            cur = conn.execute(statement)
            row = cur.fetchone() if cur.description else None
            return tuple(row) if row is not None else None


@dataclass
class ReplicaCluster:
    """A primary and its hot standbys, each with the database ``pll``."""

    root: Path
    primary: Node
    replicas: list[Node] = field(default_factory=list)

    def add_replica(self) -> Node:
        """A new hot standby made with ``pg_basebackup -R`` from the primary, started."""
        node = Node(self.root / f"replica{len(self.replicas) + 1}", free_port())
        _run(
            [
                str(BIN / "pg_basebackup"),
                "-D",
                str(node.directory),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.primary.port),
                "-U",
                "postgres",
                "-X",
                "stream",
                "-R",
                "--no-sync",
                "-c",
                "fast",
            ]
        )
        _append_conf(node, hot_standby="on")
        self.replicas.append(node)
        node.start()
        return node

    def pause(self, replica: Node) -> None:
        """Stop replaying WAL on ``replica`` (it still receives it)."""
        replica.sql("SELECT pg_wal_replay_pause()")

    def resume(self, replica: Node) -> None:
        replica.sql("SELECT pg_wal_replay_resume()")

    def caught_up(self, replica: Node, timeout: float = 60) -> None:
        """Wait until ``replica`` has replayed all the primary has flushed now."""
        target = self.primary.sql("SELECT pg_current_wal_flush_lsn()::text")
        assert target is not None
        deadline = time.monotonic() + timeout
        while True:
            row = replica.sql(f"SELECT pg_last_wal_replay_lsn() >= '{target[0]}'::pg_lsn")
            if row is not None and row[0]:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"replica on port {replica.port} did not catch up")
            time.sleep(0.02)


def _append_conf(node: Node, **settings: str) -> None:
    lines = [
        f"port = {node.port}",
        "listen_addresses = '127.0.0.1'",
        f"unix_socket_directories = '{node.directory}'",
        *(f"{k} = {v}" for k, v in settings.items()),
    ]
    conf = node.directory / "postgresql.conf"
    with conf.open("a") as out:
        out.write("\n# replica_cluster.py\n" + "\n".join(lines) + "\n")


def _scratch() -> str | None:
    """Where the tests' clusters live: in memory (``/dev/shm``) when it has room, as making
    and removing thousands of files on a disk other work keeps busy takes seconds."""
    shm = Path("/dev/shm")
    try:
        return str(shm) if shutil.disk_usage(shm).free > 2**30 else None
    except OSError:
        return None


@contextlib.contextmanager
def replica_cluster(replicas: int = 1, where: Path | None = None) -> Iterator[ReplicaCluster]:
    """A primary with ``replicas`` streaming hot standbys and an empty database ``pll``
    (the caller migrates it), in a new folder inside ``where`` (by default in memory when
    there is room, else the temporary folder); everything is stopped and removed when the
    block ends."""
    root = Path(tempfile.mkdtemp(prefix="pll-replicas-", dir=where or _scratch()))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(root, owner.pw_uid, owner.pw_gid)
    cluster = ReplicaCluster(root, Node(root / "primary", free_port()))
    try:
        _run(
            [
                str(BIN / "initdb"),
                "-D",
                str(cluster.primary.directory),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
                "--no-instructions",
                # small WAL files: the set is made and removed for a few minutes' use
                "--wal-segsize=1",
            ]
        )
        _append_conf(
            cluster.primary,
            wal_level="replica",
            max_wal_senders="10",
            wal_keep_size="'64MB'",
            min_wal_size="'4MB'",
            max_wal_size="'64MB'",
            hot_standby="on",
            shared_buffers="'32MB'",
            max_connections="100",
            # dynamic shared memory in files of the data folder, removed with it even after
            # a crash (an immediate stop), never left behind in /dev/shm
            dynamic_shared_memory_type="mmap",
        )
        cluster.primary.start()
        cluster.primary.sql(f'CREATE DATABASE "{DATABASE}"', database="postgres")
        for _ in range(replicas):
            cluster.add_replica()
        yield cluster
    finally:
        for node in (*cluster.replicas, cluster.primary):
            with contextlib.suppress(Exception):
                node.stop("fast")
        shutil.rmtree(root, ignore_errors=True)
