"""Read replicas: PostgreSQL hot standbys that serve list reads (issue 21, DESIGN §6).

``PLL_READ_DATABASE_URL`` names one or more asynchronous streaming replicas of the primary
(``PLL_DATABASE_URL``), separated by spaces (a URL may itself be a libpq multi-host URL, whose
commas would make a comma a poor separator). Each server process spreads its replica-served
reads over the replicas that are *serving*, in turn (round robin); a replica stops serving
when it lags more than ``PLL_READ_MAX_LAG`` seconds, cannot be reached or a read on it fails,
and serves again once a check finds it reachable and less than half the limit behind. With
no replica serving, reads go to the primary.

**How lag is measured.** A replay timestamp (``pg_last_xact_replay_timestamp()``) is the
commit time of the last transaction replayed, so on an idle primary it grows old while the
replica is fully caught up. Here a checker thread samples the primary's flushed WAL position
(``pg_current_wal_flush_lsn()``) every check interval and asks each replica how far it has
replayed (``pg_last_wal_replay_lsn()``); a replica's lag is the age of the oldest sample
holding WAL it has not replayed (:class:`LagSamples`), zero when it has replayed all the
primary held. An idle primary's position stands still, so a caught-up replica shows no lag
however long nothing happens. The figure is a lower bound, exact to one check interval: a
replica serving a read lagged at most ``max_lag`` plus two check intervals at that moment.

**After a failover.** An asynchronous replica may have replayed WAL that the synchronous
standby, now the primary, never flushed: a commit the old primary wrote but never
acknowledged. Its data then parts from the primary's, whatever its lag reads. So each check
also reads the primary's timeline (a promotion starts a new one) and the timeline the
replica's WAL receiver streams on (``pg_stat_wal_receiver.received_tli``); a replica serves
only on the primary's timeline. PostgreSQL lets a standby follow a new timeline only when it
has not replayed past the point where that timeline forked, so a replica that streams on it
again holds nothing the primary lacks (https://www.postgresql.org/docs/15/warm-standby.html#STANDBY-SERVER-OPERATION).

Only PostgreSQL can have replicas; the read path that uses them is
:class:`pll.store.audited_read.AuditedListReader` (asyncpg), and
:meth:`ReplicaSet.snapshot` gives the synchronous reads (``$getMedication``) a read-only
transaction on one.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import psycopg

log = logging.getLogger("pll.replicas")

#: Seconds to wait for a replica's connection, and for one statement on it, before the read
#: goes to the primary instead: a read normally takes milliseconds.
CONNECT_TIMEOUT = 2
STATEMENT_TIMEOUT = 2.0


def check_interval(max_lag: float) -> float:
    """How often the lag is checked: a quarter of the limit, between 50 ms and one second."""
    return min(1.0, max(0.05, max_lag / 4))


def timeline_of(walfile: str) -> int:
    """The timeline a WAL file name starts with (``000000020000000000000003``: 2)."""
    return int(walfile[:8], 16)


def parse_lsn(text: str) -> int:
    """A WAL position as PostgreSQL writes it (``16/B374D848``) as a number."""
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) | int(low, 16)


class LagSamples:
    """The primary's flushed WAL position over time, to tell a replica's lag in seconds.

    ``lag(replayed, now)`` is how long ago the primary first held WAL the replica has not
    replayed: ``now`` minus the time of the oldest sample past ``replayed``, or 0 when no
    sample is. Samples older than ``keep`` seconds are dropped; a replica behind all of them
    is reported as at least ``keep`` seconds behind.
    """

    def __init__(self, keep: float) -> None:
        self._keep = keep
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, at: float, lsn: int) -> None:
        self._samples.append((at, lsn))
        while self._samples and self._samples[0][0] < at - self._keep:
            self._samples.popleft()

    def lag(self, replayed: int, now: float) -> float:
        for at, lsn in self._samples:
            if lsn > replayed:
                return max(0.0, now - at)
        return 0.0


@dataclass
class Replica:
    """One replica as this process sees it."""

    index: int
    #: libpq URL (asyncpg, psycopg)
    url: str
    #: host:port/database, without the password: for logs and metrics
    name: str
    serving: bool = False
    #: seconds behind the primary at the last check (``None``: not known)
    lag: float | None = None
    #: why it is not serving, in a few words
    problem: str | None = "not checked yet"
    #: the timeline its WAL receiver last streamed on (``None``: not seen streaming yet)
    timeline: int | None = None


@dataclass
class ReadCounts:
    """Where this process's replica-eligible reads went, and why they went to the primary."""

    #: served by a replica
    replica: int = 0
    #: no replica was serving
    no_replica: int = 0
    #: the replica's copy was older than the client asked for (``X-PLL-Min-Version``)
    behind: int = 0
    #: not on the replica (not replicated yet, or not there at all)
    missing: int = 0
    #: the read failed on the replica
    failed: int = 0
    #: told of each read counted, by the name of its count (the metrics, pll.api.metrics)
    hook: Callable[[str], None] | None = field(default=None, compare=False, repr=False)

    def add(self, kind: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        if self.hook is not None:
            self.hook(kind)


@dataclass
class _Checker:
    thread: threading.Thread
    stop: threading.Event = field(default_factory=threading.Event)


class ReplicaSet:
    """The replicas of one server process: their health, who serves next, their engines.

    :meth:`start` runs the checker thread (:meth:`check` every :func:`check_interval`);
    until its first check a replica does not serve. Safe to use from several threads and
    from the event loop: :meth:`pick` reads a tuple the checker replaces whole.
    """

    def __init__(self, primary_url: str, urls: Sequence[str], max_lag: float) -> None:
        if not urls:
            raise ValueError("a replica set needs at least one replica URL")
        self.max_lag = max_lag
        self.interval = check_interval(max_lag)
        self.replicas = tuple(
            Replica(i, libpq(url), _name(url)) for i, url in enumerate(urls, start=1)
        )
        self.counts = ReadCounts()
        self._primary_url = libpq(primary_url)
        self._samples = LagSamples(keep=max_lag + 2 * self.interval)
        self._serving: tuple[Replica, ...] = ()
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self._checker: _Checker | None = None
        self._connections: dict[int, psycopg.Connection[tuple[object, ...]]] = {}

    # -- choosing -------------------------------------------------------------------------

    def pick(self) -> Replica | None:
        """The next serving replica, in turn; ``None`` when none serves (read the primary)."""
        serving = self._serving
        if not serving:
            self.counts.add("no_replica")
            return None
        return serving[next(self._turn) % len(serving)]

    def failed(self, replica: Replica, exc: BaseException) -> None:
        """A read on ``replica`` failed: it stops serving until a check finds it well."""
        self.counts.add("failed")
        with self._lock:
            if replica.serving:
                log.warning("read replica %s stops serving: %s", replica.name, _why(exc))
            replica.serving = False
            replica.problem = f"a read failed: {_why(exc)}"
            self._publish()

    # -- checking -------------------------------------------------------------------------

    def start(self) -> None:
        """Run the checker thread (once)."""
        if self._checker is not None:
            return
        checker = _Checker(threading.Thread(target=self._run, name="pll-replicas", daemon=True))
        self._checker = checker
        checker.thread.start()

    def stop(self) -> None:
        """Stop the checker and close every connection and engine."""
        checker, self._checker = self._checker, None
        if checker is not None:
            checker.stop.set()
            checker.thread.join(timeout=10)
        for conn in self._connections.values():
            conn.close()
        self._connections.clear()

    def _run(self) -> None:
        checker = self._checker
        while checker is not None and not checker.stop.is_set():
            try:
                self.check()
            except Exception:  # never let the checker die: reads would stay where they are
                log.exception("read replica check failed")
            checker.stop.wait(self.interval)

    def check(self) -> None:
        """Sample the primary's WAL position, then ask each replica how far it has replayed;
        take out those that lag, fail or are no standby, and put back those caught up."""
        try:
            flushed, walfile = self._primary()
        except psycopg.Error as exc:
            # Without the primary neither lag nor timeline can be told: after a failover a
            # replica may hold commits the new primary lacks, and its lag, sampled before,
            # reads 0. A read needs the primary for its audit record anyway, so the replicas
            # stop serving until the primary answers a check again.
            log.warning("read replicas: the primary's WAL position is unknown: %s", _why(exc))
            for replica in self.replicas:
                self._set(replica, serving=False, lag=None, problem="the primary is unknown")
            with self._lock:
                self._publish()
            return
        self._samples.add(time.monotonic(), parse_lsn(str(flushed)))
        for replica in self.replicas:
            self._check_one(replica, timeline_of(str(walfile)))
        with self._lock:
            self._publish()

    def _primary(self) -> tuple[object, ...]:
        """The primary's flushed WAL position and the name of its WAL file (its timeline),
        asked once more on a new connection when the one held fails: after a failover the
        connection held is to the server that died."""
        sql = "SELECT pg_current_wal_flush_lsn()::text, pg_walfile_name(pg_current_wal_flush_lsn())"
        try:
            return self._query(0, self._primary_url, sql)
        except psycopg.Error:
            return self._query(0, self._primary_url, sql)  # the failed one was closed

    def _check_one(self, replica: Replica, primary_timeline: int) -> None:
        try:
            standby, replayed, timeline, receivers = self._query(
                replica.index,
                replica.url,
                "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text,"
                " (SELECT received_tli FROM pg_stat_wal_receiver),"
                " (SELECT count(*) FROM pg_stat_wal_receiver)",
            )
        except psycopg.Error as exc:
            self._set(replica, serving=False, lag=None, problem=f"unreachable: {_why(exc)}")
            return
        if not standby or replayed is None:
            # promoted, or a primary named by mistake: its data may part from ours
            self._set(replica, serving=False, lag=None, problem="not a standby in recovery")
            return
        if isinstance(timeline, int) and timeline > 0:
            replica.timeline = timeline
        elif receivers and timeline is None:
            # PostgreSQL shows a receiver's details only to pg_read_all_stats
            problem = "its WAL receiver is hidden: grant pg_monitor to the role PLL reads as"
            self._set(replica, serving=False, lag=None, problem=problem)
            return
        # (a receiver between connections shows no row: the last timeline seen stands)
        if replica.timeline != primary_timeline:
            seen = (
                "not seen streaming"
                if replica.timeline is None
                else f"on timeline {replica.timeline}"
            )
            self._set(
                replica,
                serving=False,
                lag=None,
                problem=f"{seen}, the primary is on timeline {primary_timeline}",
            )
            return
        lag = self._samples.lag(parse_lsn(str(replayed)), time.monotonic())
        if lag > self.max_lag:
            self._set(replica, serving=False, lag=lag, problem=f"{lag:.1f} s behind")
        elif replica.serving or lag <= self.max_lag / 2:
            self._set(replica, serving=True, lag=lag, problem=None)
        else:
            self._set(replica, serving=False, lag=lag, problem=f"{lag:.1f} s behind, catching up")

    def _set(
        self, replica: Replica, *, serving: bool, lag: float | None, problem: str | None
    ) -> None:
        with self._lock:
            if serving and not replica.serving:
                log.warning("read replica %s serves reads (%.2f s behind)", replica.name, lag or 0)
            elif replica.serving and not serving:
                log.warning("read replica %s stops serving: %s", replica.name, problem)
            replica.serving, replica.lag, replica.problem = serving, lag, problem

    def _publish(self) -> None:
        self._serving = tuple(r for r in self.replicas if r.serving)

    def _query(self, key: int, url: str, sql: str) -> tuple[object, ...]:
        conn = self._connections.get(key)
        if conn is None or conn.closed:
            conn = psycopg.connect(
                url,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT,
                options=f"-c statement_timeout={int(STATEMENT_TIMEOUT * 1000)}",
            )
            self._connections[key] = conn
        try:
            row = conn.execute(sql).fetchone()
        except psycopg.Error:
            conn.close()
            raise
        if row is None:  # pragma: no cover - these functions always return a row
            raise psycopg.DataError("no row")
        return tuple(row)


def split_urls(raw: str | None) -> tuple[str, ...]:
    """``PLL_READ_DATABASE_URL``: URLs separated by whitespace."""
    return tuple((raw or "").split())


def libpq(url: str) -> str:
    """A PostgreSQL URL as libpq takes it (``postgresql://``), whatever driver it named.
    Text only, so that multi-host URLs pass unchanged."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.split("+")[0] not in ("postgresql", "postgres"):
        raise ValueError(f"a read replica must be a PostgreSQL URL (postgresql://...), not {url!r}")
    return "postgresql://" + rest


def _name(url: str) -> str:
    parts = urlsplit(url)
    return parts.netloc.rpartition("@")[2] + parts.path


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
