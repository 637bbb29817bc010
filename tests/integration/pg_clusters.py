"""PostgreSQL 15 clusters of a test's own: a primary, standbys made from it by streaming
replication, and what a failover does to them (issue 21).

The clusters live in a temporary folder on loopback ports picked free, apart from the main
cluster on 127.0.0.1:5432, which is never touched. Each postmaster is started directly
(``postgres -D``, not ``pg_ctl start``) as a child of the test process, with the kernel told
to kill it if the thread that started it ends (``setpriv --pdeathsig``: a test process that
is itself killed leaves no server behind; so start clusters from the main thread), and
:func:`pg_clusters` kills every postmaster and its children and removes the folder when the
block ends, whether it ended cleanly or not. As root, the clusters run as the ``postgres``
user (PostgreSQL refuses to run as root).

A standby is a base backup of its primary (``pg_basebackup -R``: it starts streaming from
it at once). A synchronous one is named in the primary's ``synchronous_standby_names``
(``FIRST n (...)``, in the order added) with ``synchronous_commit = on``: a commit is
acknowledged only once the standby has flushed its WAL, and a promoted standby replays
all it has flushed before it accepts a write, so a commit the primary acknowledged is on the
standby when it takes over (https://www.postgresql.org/docs/15/warm-standby.html#SYNCHRONOUS-REPLICATION).
``remote_apply`` would add the wait for the standby to *replay* each commit: that only
matters to reads from the standby itself, and PLL sends none there (read replicas are
asynchronous and fall back to the primary, docs/operations.md).

Use::

    with pg_clusters() as pg:
        primary = pg.make_primary()
        standby = pg.add_standby(primary, sync=True)
        replica = pg.add_standby(primary, sync=False)   # an asynchronous read replica
        primary.create_database("pll")
        url = multi_host_url([primary, standby], "pll")  # for PLL_DATABASE_URL
        ...
        primary.kill()                # SIGKILL: the server is gone at once
        standby.promote()             # pg_ctl promote; now the primary
        pg.add_standby(standby)       # a new synchronous standby from the new primary
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from tests.integration.processes import free_port

#: Where PostgreSQL 15's programs are (Debian's layout); ``PLL_PG_BIN`` names another.
PG_BIN = Path(os.environ.get("PLL_PG_BIN", "/usr/lib/postgresql/15/bin"))
#: How long a cluster may take to start, promote or catch up before the helper gives up (s).
PATIENCE = 60.0

#: The settings every cluster starts with. Small, since tests run beside others on a busy
#: machine; ``fsync`` stays on unless a caller turns it off (a SIGKILLed server loses nothing
#: from the kernel's page cache either way, a powered-off machine would).
BASE_SETTINGS: dict[str, str] = {
    "listen_addresses": "127.0.0.1",
    "shared_buffers": "32MB",
    "max_connections": "100",
    "wal_level": "replica",
    "max_wal_senders": "10",
    "wal_keep_size": "64MB",
    # small WAL files, not zero-filled, few kept for reuse: a test's cluster writes little,
    # and creating and removing 16 MB files is most of its disk work
    "wal_init_zero": "off",
    "min_wal_size": "4MB",
    "max_wal_size": "64MB",
    "hot_standby": "on",
    "synchronous_commit": "on",
    # a dead primary's standby notices within seconds, not the default minute
    "wal_receiver_timeout": "5s",
    "wal_sender_timeout": "5s",
    "log_min_messages": "warning",
    "logging_collector": "off",
}


class ClusterError(RuntimeError):
    """A cluster did not do what was asked in time; the message holds the end of its log."""


def available() -> bool:
    """PostgreSQL's programs are here (tests skip, or fail in CI, without them)."""
    return (PG_BIN / "initdb").exists() and (PG_BIN / "pg_basebackup").exists()


def _as_postgres() -> dict[str, Any]:
    """Run a program as ``postgres`` when the tests run as root (initdb and postgres refuse
    root)."""
    return {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}


def _dying_with_parent() -> list[str]:
    """The start of a command that runs the rest as ``postgres`` when the tests run as root,
    killed by the kernel when the thread that started it ends (util-linux's ``setpriv``,
    which sets the death signal after the switch of user, as a switch clears it)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:  # pragma: no cover - util-linux is on every Debian system
        if os.geteuid() == 0:
            raise ClusterError("setpriv (util-linux) is needed to run PostgreSQL as postgres")
        return []
    command = [setpriv, "--pdeathsig", "KILL"]
    if os.geteuid() == 0:
        command += ["--reuid", "postgres", "--regid", "postgres", "--init-groups"]
    return command


def _run(*args: str | Path, log: Path | None = None) -> None:
    out = subprocess.run(
        [str(a) for a in args], capture_output=True, check=False, timeout=PATIENCE, **_as_postgres()
    )
    if out.returncode != 0:
        text = (out.stdout + out.stderr).decode(errors="replace")
        if log is not None and log.exists():
            text += "\n" + _tail(log)
        raise ClusterError(f"{Path(str(args[0])).name} failed ({out.returncode}): {text}")


def _tail(log: Path, chars: int = 3000) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


@dataclass
class Cluster:
    """One PostgreSQL server: its name (its ``cluster_name``, and as a standby the
    ``application_name`` the primary knows it by), port and data folder."""

    name: str
    port: int
    data: Path
    log: Path
    #: the cluster it streams from; None for a primary (and once promoted)
    upstream: Cluster | None = None
    #: the standbys whose flush a commit here waits for, in ``FIRST n`` order
    sync_standbys: list[str] = field(default_factory=list)
    settings: dict[str, str] = field(default_factory=dict)
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def host(self) -> str:
        """``127.0.0.1:port``, as a multi-host URL names it."""
        return f"127.0.0.1:{self.port}"

    def url(self, database: str = "postgres") -> str:
        """A libpq URL for ``database`` on this cluster alone (superuser, trust)."""
        return f"postgresql://postgres@{self.host}/{database}"

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while it runs."""
        if self._proc is None or self._proc.poll() is not None:
            return None
        return self._proc.pid

    @property
    def running(self) -> bool:
        return self.pid is not None

    # -- life --------------------------------------------------------------------------

    def start(self) -> None:
        """Start the postmaster and wait until it accepts connections (a standby: read-only
        ones)."""
        if self.running:
            return
        given = {
            **self.settings,
            "port": str(self.port),
            "cluster_name": self.name,
            "unix_socket_directories": str(self.data),
        }
        args = [*_dying_with_parent(), str(PG_BIN / "postgres"), "-D", str(self.data)]
        for key, value in given.items():
            args += ["-c", f"{key}={value}"]
        with self.log.open("ab") as out:
            # setpriv execs postgres: the process is the postmaster itself
            self._proc = subprocess.Popen(args, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
        self._wait(lambda: self.query("SELECT 1") == [(1,)], "accept connections")

    def kill(self) -> None:
        """SIGKILL the postmaster, then whatever of its processes are left: the server is
        gone at once, as if its machine died. Nothing is shut down, flushed or told."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        children = _children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=PATIENCE)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)

    def stop(self) -> None:
        """Shut down cleanly (``pg_ctl stop -m fast``)."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        _run(PG_BIN / "pg_ctl", "stop", "-D", self.data, "-m", "fast", "-w", log=self.log)
        proc.wait(timeout=PATIENCE)

    def promote(self) -> None:
        """Make this standby a primary (``pg_ctl promote``, which waits until it accepts
        writes). It then has no standby of its own, so its commits wait for none until
        :meth:`Clusters.add_standby` gives it one."""
        if self.upstream is None:
            raise ClusterError(f"{self.name} is a primary already")
        _run(PG_BIN / "pg_ctl", "promote", "-D", self.data, "-w", "-t", "60", log=self.log)
        self._wait(lambda: not self.in_recovery(), "leave recovery")
        self.upstream = None

    # -- looking --------------------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] = (), database: str = "postgres") -> list[Any]:
        """Run one statement in autocommit; its rows (empty for a statement without)."""
        with psycopg.connect(self.url(database), autocommit=True, connect_timeout=5) as conn:
            cur = conn.execute(sql.encode(), params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def create_database(self, name: str) -> None:
        self.query(f'CREATE DATABASE "{name}"')

    def in_recovery(self) -> bool:
        """True while a standby (``pg_is_in_recovery()``)."""
        return bool(self.query("SELECT pg_is_in_recovery()")[0][0])

    def current_lsn(self) -> str:
        """How far this primary's WAL goes (``pg_current_wal_lsn()``)."""
        return str(self.query("SELECT pg_current_wal_lsn()")[0][0])

    def replay_lsn(self) -> str:
        """How far this standby has replayed (``pg_last_wal_replay_lsn()``)."""
        return str(self.query("SELECT pg_last_wal_replay_lsn()")[0][0])

    def wait_for_replay(self, lsn: str, timeout: float = PATIENCE) -> None:
        """Wait until this standby has replayed the WAL up to ``lsn``."""
        self._wait(
            lambda: self.query("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,))[0][0],
            f"replay up to {lsn}",
            timeout,
        )

    def pause_replay(self) -> None:
        """Hold this standby's replay where it is (``pg_wal_replay_pause()``): it goes on
        receiving WAL, and a synchronous one goes on confirming it, but its readers see an
        ever older state (a lagging replica)."""
        self.query("SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        self.query("SELECT pg_wal_replay_resume()")

    def replication(self) -> dict[str, tuple[str, str]]:
        """This primary's standbys as it sees them: name -> (state, sync_state), such as
        ``("streaming", "sync")`` (``pg_stat_replication``)."""
        rows = self.query("SELECT application_name, state, sync_state FROM pg_stat_replication")
        return {name: (state, sync) for name, state, sync in rows}

    def _wait(self, done: Any, what: str, timeout: float = PATIENCE) -> None:
        deadline = time.monotonic() + timeout
        last: BaseException | None = None
        while time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise ClusterError(
                    f"{self.name} exited while waiting to {what}:\n{_tail(self.log)}"
                )
            try:
                if done():
                    return
            except psycopg.Error as exc:
                last = exc
            time.sleep(0.05)
        raise ClusterError(
            f"{self.name} did not {what} in {timeout:.0f} s ({last}):\n{_tail(self.log)}"
        )


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command may hold spaces and parentheses: the fields after its last ")"
        fields = stat[stat.rfind(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return found


class Clusters:
    """The clusters of one block of :func:`pg_clusters`, in one temporary folder."""

    def __init__(self, root: Path, settings: Mapping[str, str]) -> None:
        self.root = root
        self.settings = {**BASE_SETTINGS, **settings}
        self.all: list[Cluster] = []

    def _new(self, name: str, port: int | None = None) -> Cluster:
        if any(c.name == name for c in self.all):
            raise ValueError(f"there is a cluster named {name} already")
        if port is not None and any(c.port == port and c.running for c in self.all):
            raise ValueError(f"a running cluster has port {port}")
        cluster = Cluster(
            name,
            port or free_port(),
            self.root / name,
            self.root / f"{name}.log",
            settings=self.settings,
        )
        self.all.append(cluster)
        return cluster

    def make_primary(self, name: str = "primary") -> Cluster:
        """A new cluster (``initdb``, trust for local and replication connections), started."""
        cluster = self._new(name)
        _run(
            PG_BIN / "initdb",
            "-D",
            cluster.data,
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",  # a test's cluster: an OS crash need not keep it
            "--wal-segsize=1",  # MB (see BASE_SETTINGS)
            "-E",
            "UTF8",
            "--locale=C",
        )
        cluster.start()
        return cluster

    def add_standby(
        self,
        primary: Cluster,
        name: str | None = None,
        *,
        sync: bool = True,
        port: int | None = None,
    ) -> Cluster:
        """A standby of ``primary`` (``pg_basebackup -R``), started and streaming. With
        ``sync`` the primary's commits from now on wait for its flush (it is added to the
        primary's ``synchronous_standby_names``); without, it is an asynchronous replica.
        ``port``: the port of a cluster that has died, so that a URL naming it goes on to
        name the servers (the failed machine rebuilt as the new standby); a free one if
        None."""
        cluster = self._new(name or f"standby{len(self.all)}", port)
        cluster.upstream = primary
        _run(
            PG_BIN / "pg_basebackup",
            "-D",
            cluster.data,
            "-h",
            "127.0.0.1",
            "-p",
            str(primary.port),
            "-U",
            "postgres",
            "-R",  # standby.signal and primary_conninfo: it streams from the primary
            "-X",
            "stream",
            "-c",
            "fast",  # an immediate checkpoint, not one spread over minutes
            "--no-sync",
            log=primary.log,
        )
        # The copy holds the primary's postgresql.auto.conf: its list of synchronous
        # standbys is the primary's business, and a promoted standby starts with none.
        auto = cluster.data / "postgresql.auto.conf"
        kept = [
            line
            for line in auto.read_text().splitlines()
            if not line.startswith("synchronous_standby_names")
        ]
        auto.write_text("\n".join(kept) + "\n")
        cluster.start()
        if sync:
            primary.sync_standbys.append(cluster.name)
            _set_sync_standbys(primary)
        cluster._wait(
            lambda: (
                primary.replication().get(cluster.name, ("", ""))[0] == "streaming"
                and (not sync or primary.replication()[cluster.name][1] in ("sync", "quorum"))
            ),
            f"stream from {primary.name}" + (" synchronously" if sync else ""),
        )
        return cluster

    def close(self) -> None:
        for cluster in self.all:
            cluster.kill()


def _set_sync_standbys(primary: Cluster) -> None:
    names = ", ".join(f'"{n}"' for n in primary.sync_standbys)
    value = f"FIRST {len(primary.sync_standbys)} ({names})" if names else ""
    primary.query(f"ALTER SYSTEM SET synchronous_standby_names = '{value}'")
    primary.query("SELECT pg_reload_conf()")


def multi_host_url(
    clusters: Sequence[Cluster], database: str, target_session_attrs: str = "read-write"
) -> str:
    """The URL PLL connects with (``PLL_DATABASE_URL``): every host, and the kind of session
    wanted, so a new connection goes to whichever is the primary now."""
    hosts = ",".join(c.host for c in clusters)
    return (
        f"postgresql://postgres@{hosts}/{database}"
        f"?target_session_attrs={target_session_attrs}&connect_timeout=5"
    )


@contextlib.contextmanager
def pg_clusters(settings: Mapping[str, str] | None = None) -> Iterator[Clusters]:
    """Clusters in a new temporary folder; all killed and the folder removed when the block
    ends, however it ends. ``settings`` are added to every cluster's :data:`BASE_SETTINGS`."""
    # /tmp itself, not pytest's folder: as root that is closed to the postgres user
    root = Path(tempfile.mkdtemp(prefix="pll-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    clusters = Clusters(root, settings or {})
    try:
        yield clusters
    finally:
        try:
            clusters.close()
        finally:
            _remove(root)


def _remove(root: Path) -> None:
    """Remove ``root`` after the block: renamed at once, then deleted by an ``rm`` that runs
    on by itself (a test's clusters are some 100 MB, seconds to delete on a busy machine)."""
    trash = root.with_name(root.name + "-removed")
    try:
        root.rename(trash)
        subprocess.run(["/bin/sh", "-c", 'rm -rf -- "$0" &', str(trash)], check=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(trash, ignore_errors=True)


if __name__ == "__main__":  # pragma: no cover - a quick look by hand
    with pg_clusters() as pg:
        p = pg.make_primary()
        s = pg.add_standby(p)
        sys.stdout.write(f"{p.replication()}\n{multi_host_url([p, s], 'postgres')}\n")
