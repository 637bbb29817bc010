"""A NATS JetStream cluster of real ``nats-server`` processes on loopback, for the tests that
kill its nodes. Each node has its own ports (picked free) and its own store folder; all of it
is stopped and removed afterwards, even when the test fails. The local single server
(127.0.0.1:4222) is never touched.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

NATS_SERVER = "/usr/sbin/nats-server"
T = TypeVar("T")


def free_ports(n: int) -> list[int]:
    """``n`` different ports free at the moment (all held open together while picked)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


def until(what: str, check: Callable[[], T | None], within: float = 60.0) -> T:
    """Poll ``check`` until it returns something other than ``None`` or ``False``; fail with
    ``what`` (and the last error) after ``within`` seconds. Not a timed assertion: the deadline
    only bounds a wait for something that must happen."""
    deadline = time.monotonic() + within
    last: BaseException | None = None
    while True:
        try:
            got = check()
            if got is not None and got is not False:
                return got
        except Exception as exc:  # a node that is starting or electing answers with errors
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {within:.0f} s for {what}; last error: {last!r}")
        time.sleep(0.05)


@dataclass
class Node:
    name: str
    port: int
    route_port: int
    monitor_port: int
    store: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def monitor(self, path: str) -> dict[str, Any]:
        """A monitoring endpoint's JSON (``/jsz``, ``/connz``, ...)."""
        answer = httpx.get(f"http://127.0.0.1:{self.monitor_port}{path}", timeout=2)
        answer.raise_for_status()
        data: dict[str, Any] = answer.json()
        return data


@dataclass
class Cluster:
    nodes: list[Node]
    name: str
    log: list[str] = field(default_factory=list)

    @property
    def urls(self) -> str:
        """The cluster as ``PLL_NATS_URL`` names it."""
        return ",".join(n.url for n in self.nodes)

    @property
    def live_urls(self) -> list[str]:
        return [n.url for n in self.nodes if n.alive]

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)

    def start(self, node: Node) -> None:
        routes = ",".join(f"nats://127.0.0.1:{n.route_port}" for n in self.nodes if n is not node)
        with node.log.open("ab") as out:
            node.proc = subprocess.Popen(
                [
                    NATS_SERVER,
                    "-a", "127.0.0.1", "-p", str(node.port),
                    "-n", node.name,
                    "-js", "-sd", str(node.store),
                    "--cluster_name", self.name,
                    "--cluster", f"nats://127.0.0.1:{node.route_port}",
                    "--routes", routes,
                    "-m", str(node.monitor_port),
                ],
                stdout=out,
                stderr=out,
            )  # fmt: skip

    def kill(self, node: Node) -> None:
        """SIGKILL: the node dies as in a power cut of its machine, with no goodbye."""
        assert node.proc is not None
        node.proc.send_signal(signal.SIGKILL)
        node.proc.wait(timeout=10)
        self.log.append(f"killed {node.name}")

    def meta_leader(self) -> str | None:
        """The JetStream meta leader every live node agrees on, once there is one and every
        node of the cluster is known to it."""
        leaders = set()
        for node in self.nodes:
            if node.alive:
                meta = node.monitor("/jsz").get("meta_cluster") or {}
                if meta.get("cluster_size") != len(self.nodes):
                    return None
                leaders.add(meta.get("leader") or "")
        return leaders.pop() if len(leaders) == 1 and "" not in leaders else None

    def connected(self, connection: str) -> Node | None:
        """The live node the client connection named ``connection`` is on."""
        for node in self.nodes:
            if node.alive:
                conns = node.monitor("/connz").get("connections") or []
                if any(c.get("name") == connection for c in conns):
                    return node
        return None

    def logs(self) -> str:
        return "\n".join(
            f"--- {n.name}\n{n.log.read_text(errors='replace')[-3000:]}"
            for n in self.nodes
            if n.log.exists()
        )


@contextmanager
def nats_cluster(tmp_path: Path, size: int = 3) -> Iterator[Cluster]:
    """``size`` JetStream nodes clustered on loopback, with the meta leader elected."""
    ports = free_ports(3 * size)
    home = tmp_path / f"nats-{uuid.uuid4().hex[:6]}"
    home.mkdir()
    cluster = Cluster(
        [
            Node(
                f"n{i + 1}",
                ports[3 * i],
                ports[3 * i + 1],
                ports[3 * i + 2],
                home / f"n{i + 1}",
                home / f"n{i + 1}.log",
            )
            for i in range(size)
        ],
        name=f"plltest{uuid.uuid4().hex[:6]}",
    )
    try:
        for node in cluster.nodes:
            cluster.start(node)
        until("the JetStream meta leader", cluster.meta_leader)
        yield cluster
    finally:
        for node in cluster.nodes:
            if node.proc is not None and node.proc.poll() is None:
                node.proc.kill()
                node.proc.wait(timeout=10)
        shutil.rmtree(home, ignore_errors=True)
