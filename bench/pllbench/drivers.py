"""The server under test, the HTTP load generator (wrk) and pgbench."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pllbench.cpu import CpuSampler
from pllbench.waits import WaitSampler

BENCH = Path(__file__).resolve().parent.parent
LUA = BENCH / "lua"


def libpq(url: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg://``) as libpq takes it."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep and scheme.startswith("postgres") else url


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _descendants(root: int) -> list[int]:
    """``root`` and every process under it, parents first (from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue  # ended meanwhile
            parents[int(entry)] = int(stat.rpartition(")")[2].split()[1])
    found, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        found += frontier
    return found


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
        os.kill(pid, sig)


class Server:
    """``pll serve`` as a subprocess in its own process group (stopped by that group's id)."""

    def __init__(self, pll: Path, url: str, data_dir: Path, workers: int, log: Path) -> None:
        self.pll = pll
        self.port = free_port()
        # No sealer while measuring: pgbench runs only the per-request SQL, so the server
        # does too; run_bench.py times the sealing of the same records afterwards.
        self.env = dict(
            os.environ,
            PLL_DATABASE_URL=url,
            PLL_DATA_DIR=str(data_dir),
            PLL_DEV_AUTH="1",
            PLL_SEAL_INTERVAL="0",
        )
        self.workers = workers
        self.log_path = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> None:
        self.log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [str(self.pll), "serve", "--port", str(self.port), "--workers", str(self.workers)],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"pll serve exited with {self.proc.returncode}; see {self.log_path}"
                )
            try:
                if httpx.get(self.base + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass  # not listening yet: ask again after a moment
            time.sleep(0.3)
        raise RuntimeError(
            f"pll serve did not answer /healthz within {timeout}s; see {self.log_path}"
        )

    @contextmanager
    def paused(self) -> Iterator[None]:
        """The server's processes stopped for the block (SIGSTOP to each, then SIGCONT):
        pgbench measures PostgreSQL alone. Running, the server's ``pll worker``
        counted pgbench's audit records as they came (about 0.15 cores), taking the machine
        from pgbench. Its database connections stay open and idle meanwhile."""
        if self.proc is None or self.proc.poll() is not None:
            yield
            return
        # every process under pll serve: its pll worker runs in a session of its own
        stopped = _descendants(self.proc.pid)
        for pid in stopped:
            _signal(pid, signal.SIGSTOP)
        try:
            yield
        finally:
            for pid in reversed(stopped):
                _signal(pid, signal.SIGCONT)

    def token(self) -> str:
        out = subprocess.run(
            [str(self.pll), "token", "--persona", "gp"],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()

    def seal(self) -> dict[str, float]:
        """Seal every audit record the measurements left (``pll audit seal``), timed."""
        started = time.perf_counter()
        out = subprocess.run(
            [str(self.pll), "audit", "seal"],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        records = int(re.search(r"sealed (\d+)", out.stdout).group(1))  # type: ignore[union-attr]
        return {
            "records": records,
            "seconds": round(seconds, 2),
            "records_per_second": round(records / seconds) if seconds else 0,
        }

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.log.close()


@dataclass
class Measured:
    rate: float  # requests or transactions per second
    count: int
    errors: int
    p50_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    cpu: dict[str, float] = field(default_factory=dict)
    detail: dict[str, Any] = field(default_factory=dict)


def run_wrk(
    server: Server,
    script: str,
    args: list[str],
    seconds: int,
    connections: int,
    threads: int,
    log: Path | None,
) -> Measured:
    cmd = [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA / script),
        server.base,
        "--",
        *args,
    ]
    env = dict(os.environ, PLL_BENCH_LUA=str(LUA))
    holder: dict[str, int] = {}
    split: list[int] = []
    with (
        WaitSampler(libpq(server.env["PLL_DATABASE_URL"])) as waits,
        CpuSampler(server.proc.pid if server.proc else None, lambda: holder.get("pid")) as cpu,
    ):
        proc = subprocess.Popen(
            cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        holder["pid"] = proc.pid
        if server.proc is not None and seconds >= 2:
            time.sleep(1)  # wrk has opened its connections
            split = connections_per_process(server.port, server.proc.pid)
        out, err = proc.communicate(timeout=seconds + 60)
    if log is not None:
        log.write_text(out + err)
    m = re.search(r"^WRK_JSON (\{.*\})$", out, re.M)
    if proc.returncode != 0 or not m:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err.strip() or out.strip()}")
    data = json.loads(m.group(1))
    seconds_run = data["duration_us"] / 1e6
    errors = (
        data["non2xx"]
        + data["connect_errors"]
        + data["read_errors"]
        + data["write_errors"]
        + data["timeouts"]
    )
    return Measured(
        rate=data["requests"] / seconds_run,
        count=data["requests"],
        errors=errors,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        mean_ms=data["latency_mean_us"] / 1000,
        cpu=cpu.result,
        detail={
            **data,
            "other_processes": cpu.top_others,
            "postgres_waits": waits.result(),
            "server_processes": cpu.server_processes,
            "server_cpu_parts": cpu.server_parts,
            "connections_per_worker": split,
        },
    )


def connections_per_process(port: int, root: int) -> list[int]:
    """How many connections to ``port`` each request worker under ``root`` holds, most
    first: the processes that listen on ``port`` or hold connections to it, but ``root``
    itself unless it serves (one worker). Read from Linux's ``/proc`` (empty elsewhere)."""
    sockets: dict[str, str] = {}  # inode -> state
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            # this side's port the server's: established (01) or listening (0A)
            if fields[3] in ("01", "0A") and int(fields[1].rsplit(":", 1)[1], 16) == port:
                sockets[fields[9]] = fields[3]
    counts = []
    for pid in _descendants(root):
        states = []
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in sockets:
                states.append(sockets[target[8:-1]])
        held = states.count("01")
        if held or (states and pid != root):
            counts.append(held)
    return sorted(counts, reverse=True)


def _descendants(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat[stat.rindex(")") + 2 :].split()[1])
    found, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        found += frontier
    return found


@dataclass
class PgConn:
    host: str
    port: str
    user: str
    dbname: str
    password: str = ""

    def args(self) -> list[str]:
        return ["-h", self.host, "-p", self.port, "-U", self.user, self.dbname]

    def conninfo(self) -> str:
        """The same connection as libpq keywords (for the wait sampler)."""
        parts = {"host": self.host, "port": self.port, "user": self.user, "dbname": self.dbname}
        if self.password:
            parts["password"] = self.password
        return " ".join(f"{k}={v}" for k, v in parts.items())

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.password:
            env["PGPASSWORD"] = self.password
        return env


def run_pgbench(
    pg: PgConn,
    script: Path,
    defines: dict[str, str],
    seconds: int,
    clients: int,
    threads: int,
    log_dir: Path | None,
) -> Measured:
    cmd = [
        "pgbench",
        "-n",
        "-M",
        "prepared",
        "-c",
        str(clients),
        "-j",
        str(threads),
        "-T",
        str(seconds),
        "-f",
        str(script),
    ]
    for k, v in defines.items():
        cmd += ["-D", f"{k}={v}"]
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        cmd += ["-l", "--log-prefix", str(log_dir / "pgbench_log")]
    cmd += pg.args()
    holder: dict[str, int] = {}
    with (
        WaitSampler(pg.conninfo()) as waits,
        CpuSampler(None, lambda: holder.get("pid")) as cpu,
    ):
        proc = subprocess.Popen(
            cmd,
            env=pg.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=log_dir or None,
        )
        holder["pid"] = proc.pid
        out, err = proc.communicate(timeout=seconds + 120)
    if log_dir is not None:
        (log_dir / "pgbench.out").write_text(out + err)

    def grab(pattern: str) -> str | None:
        m = re.search(pattern, out)
        return m.group(1) if m else None

    tps = grab(r"tps = ([\d.]+) \(without initial connection time\)")
    if tps is None:
        raise RuntimeError(f"pgbench failed ({proc.returncode}): {err.strip() or out.strip()}")
    processed = int(grab(r"number of transactions actually processed: (\d+)") or 0)
    failed = int(grab(r"number of failed transactions: (\d+)") or 0)
    aborted = len(re.findall(r"client \d+ .*aborted|error: client", err))
    lat = grab(r"latency average = ([\d.]+) ms")
    p50 = p99 = None
    if log_dir is not None:
        times = []
        for f in log_dir.glob("pgbench_log.*"):
            for line in f.read_text().splitlines():
                parts = line.split()
                if len(parts) >= 3 and parts[2].isdigit():
                    times.append(int(parts[2]))
        if times:
            times.sort()
            p50 = times[len(times) // 2] / 1000
            p99 = times[min(len(times) - 1, int(len(times) * 0.99))] / 1000
            for f in log_dir.glob("pgbench_log.*"):
                f.unlink()  # large and no longer needed
            mean_from_log = statistics.fmean(times) / 1000
        else:
            mean_from_log = None
    else:
        mean_from_log = None
    return Measured(
        rate=float(tps),
        count=processed,
        errors=failed + aborted,
        p50_ms=p50,
        p99_ms=p99,
        mean_ms=float(lat) if lat else mean_from_log,
        cpu=cpu.result,
        detail={
            "other_processes": cpu.top_others,
            "postgres_waits": waits.result(),
            "failed": failed,
            "aborted_clients": aborted,
            "stderr": err.strip()[-2000:],
            "returncode": proc.returncode,
        },
    )
