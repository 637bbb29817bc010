"""``pll serve --workers N``: each request worker listens on a socket of its own, so that the
kernel spreads connections over them, and ``pll serve`` keeps them running (issue 20;
pll.api.serve_workers). Real processes on real sockets, read through Linux's ``/proc``.

With uvicorn's shared listening socket the workers raced for each connection, and one of
two could take all 32 of a benchmark's connections.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.integration.processes import (
    PLL,
    Served,
    accepted,
    alive,
    children,
    clean_env,
    listening,
    pll_serve,
    sockets_of,
    wait_for,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="reads Linux's /proc"),
]

CONNECTIONS = 32


def request_workers(served: Served) -> list[int]:
    return sorted(pid for pid, cmd in children(served.pid) if "-m pll.api.serve_workers" in cmd)


def owners(inodes: list[int], pids: list[int]) -> Counter[int]:
    """How many of the sockets ``inodes`` each of ``pids`` holds."""
    held = {pid: sockets_of(pid) for pid in pids}
    return Counter(pid for inode in inodes for pid in pids if inode in held[pid])


def port(served: Served) -> int:
    return int(served.base.rsplit(":", 1)[1])


def requests_counted(served: Served) -> float:
    """``GET /healthz`` answers counted in ``/metrics``, all workers together."""
    text = httpx.get(f"{served.base}/metrics", timeout=30).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith('pll_http_requests_total{method="GET",route="/healthz"')
    )


def test_connections_spread_over_the_workers_which_pll_serve_keeps_running_and_stops(
    tmp_path: Path,
) -> None:
    with pll_serve(tmp_path, "postgresql", workers=2) as served:
        workers = request_workers(served)
        assert len(workers) == 2, children(served.pid)
        # a listening socket each (with uvicorn's workers=N, one shared by both)
        sockets = listening(port(served))
        assert len(sockets) == 2
        assert owners(sockets, workers) == Counter(workers)

        # 32 keep-alive connections, opened and used at the same moment
        clients = [httpx.Client(base_url=served.base, timeout=30) for _ in range(CONNECTIONS)]
        start = threading.Barrier(CONNECTIONS)
        statuses: list[int] = []

        def first_request(client: httpx.Client) -> None:
            start.wait()
            statuses.append(client.get("/healthz").status_code)

        threads = [threading.Thread(target=first_request, args=(c,)) for c in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert statuses == [200] * CONNECTIONS
        share = owners(accepted(port(served)), workers)
        assert sum(share.values()) == CONNECTIONS, share
        # The kernel picks a worker for each connection by a hash of its ports: a fair coin
        # per connection. Fewer than 4 of 32 on one worker has odds of about 1 in 400,000.
        assert min(share[pid] for pid in workers) >= 4, share
        for client in clients:
            client.close()

        # a second server on the same port would quietly take half of the connections: it
        # is refused, with one line, before it touches anything
        second = tmp_path / "second"
        done = subprocess.run(
            [PLL, "serve", "--port", str(port(served)), "--workers", "2"],
            env=clean_env(second, PLL_DEV_AUTH="1"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 1
        assert f"Error: cannot serve on 127.0.0.1:{port(served)}: " in done.stderr, done.stderr
        assert "Address already in use" in done.stderr
        assert not (second / "pll.sqlite3").exists()

        # a worker that dies is replaced; the counts of the dead one stay in /metrics
        killed = workers[0]
        os.kill(killed, signal.SIGKILL)
        wait_for(
            lambda: len(request_workers(served)) == 2 and killed not in request_workers(served),
            30,
            "a new request worker",
        )
        wait_for(lambda: len(listening(port(served))) == 2, 30, "the new worker listening")
        now = request_workers(served)
        assert owners(listening(port(served)), now) == Counter(now)
        assert requests_counted(served) >= CONNECTIONS
        assert "request worker " + str(killed) + " ended (-9)" in served.log.read_text()

        # SIGTERM stops them all and pll serve exits 0
        everyone = [pid for pid, _ in children(served.pid)]
        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(timeout=60) == 0, served.log.read_text()
        wait_for(lambda: not any(alive(pid) for pid in everyone), 30, "every child stopped")
        assert listening(port(served)) == []
