"""What PostgreSQL's busy sessions were waiting for during a measurement (issue 20).

A run whose machine was not busy yet answered slowly (the 100,000-patient read at 0.81
cores, p99 387 ms, bench/README.md) was waiting on something other than CPU: a lock, the WAL
flush of a commit, a read from disk. :class:`WaitSampler` asks ``pg_stat_activity`` every
``interval`` seconds which of the database's active sessions wait, and for what
(``wait_event_type:wait_event``; ``CPU`` for an active session that waits for nothing), and
reports each as the average number of sessions in that state: 3.2 ``IO:WALSync`` means that
on average three sessions were waiting for a WAL flush.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import psycopg

_ACTIVE = """
    SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU'), count(*)
    FROM pg_stat_activity
    WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()
    GROUP BY 1
"""


class WaitSampler:
    """Use as a context manager around a measurement; :attr:`waits` afterwards."""

    def __init__(self, conninfo: str, interval: float = 0.1) -> None:
        self.conninfo = conninfo
        self.interval = interval
        self.waits: dict[str, float] = {}
        self._counts: Counter[str] = Counter()
        self._samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> WaitSampler:
        self._thread = threading.Thread(target=self._run, name="pg-waits", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        n = max(self._samples, 1)
        top = self._counts.most_common(8)
        self.waits = {name: round(count / n, 2) for name, count in top}

    def _run(self) -> None:
        try:
            with psycopg.connect(self.conninfo, autocommit=True, connect_timeout=5) as conn:
                while not self._stop.wait(self.interval):
                    for name, count in conn.execute(_ACTIVE).fetchall():
                        self._counts[str(name)] += int(count)
                    self._samples += 1
        except psycopg.Error as exc:  # the measurement goes on; the result says why
            self._counts[f"(sampling failed: {type(exc).__name__})"] += 0

    def result(self) -> dict[str, Any]:
        return {"samples": self._samples, "average_sessions": self.waits}
