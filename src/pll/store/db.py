"""Connecting to SQLite (embedded default) or PostgreSQL, and running the migrations.

Writes to a list are serialised per list: on PostgreSQL by ``SELECT ... FOR UPDATE`` on the
list row, on SQLite by ``BEGIN IMMEDIATE`` (SQLite has one writer at a time anyway, and an
immediate transaction cannot fail half-way on a lock upgrade). Audited reads write too, so
on SQLite they are immediate transactions as well. SQLite runs in WAL mode with
``synchronous=FULL`` so an acknowledged change survives a power cut (DESIGN §3 rule 7).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
from sqlalchemy import Connection, Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import ConnectionPoolEntry

if TYPE_CHECKING:
    from alembic.config import Config


def normalise_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and use the psycopg 3 driver for them.

    A URL may name several servers as libpq does, ``postgresql://h1:p1,h2:p2/pll``
    (https://www.postgresql.org/docs/15/libpq-connect.html#LIBPQ-MULTIPLE-HOSTS), usually
    with ``target_session_attrs=read-write`` so that a new connection goes to whichever of
    them is the primary now. SQLAlchemy takes several servers only as repeated ``host``
    parameters (``postgresql+psycopg://user@/pll?host=h1:p1&host=h2:p2``, its psycopg
    dialect's "multiple fallback hosts"), so such a URL is rewritten to that form; psycopg
    hands libpq every host, and libpq tries them in order.
    """
    for prefix in ("postgresql://", "postgres://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            return _hosts_as_parameters("postgresql+psycopg://" + url[len(prefix) :])
    return url


def _hosts_as_parameters(url: str) -> str:
    scheme, _, rest = url.partition("://")
    ends = [i for i in (rest.find("/"), rest.find("?")) if i >= 0]
    netloc, tail = rest[: min(ends, default=len(rest))], rest[min(ends, default=len(rest)) :]
    userinfo, at, hostspec = netloc.rpartition("@")
    if "," not in hostspec:
        return url
    path, _, query = tail.partition("?")
    hosts = "&".join(f"host={host}" for host in hostspec.split(",") if host)
    return f"{scheme}://{userinfo}{at}{path or '/'}?{hosts}{'&' + query if query else ''}"


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'pll.sqlite3').resolve()}"


class DatabaseUnavailable(Exception):
    """PostgreSQL could not be reached, or the connection broke mid-transaction: its server
    is down, or a failover is under way (docs/operations.md). Nothing is wrong with the
    request, and it may be repeated once a server answers. ``maybe_done``: the transaction
    had reached the server and may have committed before its answer was lost (a change
    repeated with its ``If-Match`` is then applied once or refused with 412); False when no
    statement had been sent, so nothing was changed."""

    def __init__(self, reason: str, *, maybe_done: bool) -> None:
        super().__init__(reason)
        self.maybe_done = maybe_done


#: SQLSTATEs of a server that has gone or cannot serve this session: connection exceptions
#: (class 08), shut down or crashed (57P01-57P03), and a read-only server where the primary
#: was (25006: a standby, as an old primary comes back). https://www.postgresql.org/docs/15/errcodes-appendix.html
_GONE = ("08", "57P01", "57P02", "57P03", "25006")


def connection_lost(exc: DBAPIError) -> bool:
    """The error is about the connection to PostgreSQL, not about what was sent on it."""
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    state = getattr(orig, "sqlstate", None)
    if state is None:
        # libpq's own errors have none: refused, closed, no server with the wanted attributes
        return isinstance(orig, psycopg.OperationalError | psycopg.InterfaceError)
    return str(state).startswith(_GONE)


class Database:
    """An engine plus the two kinds of transaction the services use."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = normalise_url(url)
        self.is_sqlite = self.url.startswith("sqlite")
        self._sqlite_lock = threading.Lock() if self.is_sqlite else None
        if self.is_sqlite:
            self.engine: Engine = create_engine(
                self.url, connect_args={"check_same_thread": False, "timeout": 30}
            )
            event.listen(self.engine, "connect", _sqlite_on_connect)
            event.listen(self.engine, "begin", _sqlite_on_begin)
        else:
            # More connections than request threads (PLL_THREADS) are never in use at once;
            # only ``pool_size`` stay open, as PostgreSQL allows 100 in all and each worker
            # process has its own pool.
            self.engine = create_engine(
                self.url, pool_size=pool_size, max_overflow=40 - pool_size, pool_pre_ping=False
            )

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A transaction that will change data; committed when the block ends cleanly.
        Raises :class:`DatabaseUnavailable` when the server cannot be reached or is lost."""
        with self._turn(), self._connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A transaction for reads (and their audit rows); committed when the block ends.
        Raises :class:`DatabaseUnavailable` when the server cannot be reached or is lost."""
        with self._turn(), self._connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def snapshot(self) -> Iterator[Connection]:
        """A read-only transaction that sees one consistent state however long it runs, and
        holds no lock that would stall writers (``pll audit verify`` over a live log)."""
        with self._connect() as plain:
            if self.is_sqlite:
                # deferred: in WAL mode a reader keeps the snapshot of its first read
                conn = plain.execution_options(pll_snapshot=True)
                with conn.begin():
                    yield conn
            else:
                conn = plain.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                    yield conn

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        """A connection from the pool; a lost server raised as :class:`DatabaseUnavailable`.

        When a connection turns out dead, SQLAlchemy marks every connection of the pool made
        before it as stale (its "disconnect" handling), so the next transaction connects
        anew — through a multi-host URL, to whichever server is the primary by then — without
        a ping before every checkout (a round trip each, DESIGN §6)."""
        try:
            conn = self.engine.connect()
        except DBAPIError as exc:
            if self.is_sqlite or not connection_lost(exc):
                raise
            raise DatabaseUnavailable(str(exc.orig), maybe_done=False) from exc
        with conn:
            try:
                yield conn
            except DBAPIError as exc:
                if self.is_sqlite or not connection_lost(exc):
                    raise
                raise DatabaseUnavailable(str(exc.orig), maybe_done=True) from exc

    def _turn(self) -> AbstractContextManager[object]:
        # SQLite admits one writer; threads of this process queue on a lock instead of
        # polling SQLite's busy handler, whose sleeps make latency jump by whole seconds.
        return self._sqlite_lock if self._sqlite_lock is not None else nullcontext()

    def libpq_url(self) -> str:
        """The PostgreSQL connection string for drivers used without SQLAlchemy; several
        servers are named as libpq and asyncpg take them, ``postgresql://user@h1:p1,h2:p2/db``."""
        url = self.engine.url.set(drivername="postgresql")
        hosts = url.query.get("host")
        if not isinstance(hosts, tuple):
            return url.render_as_string(hide_password=False)
        bare = url.difference_update_query(["host"]).set(host=None, port=None)
        scheme, _, rest = bare.render_as_string(hide_password=False).partition("://")
        userinfo, at, tail = rest.rpartition("@")
        return f"{scheme}://{userinfo}{at}{','.join(hosts)}{tail}"

    def upgrade(self) -> None:
        """Bring the schema to the newest migration (``pll db upgrade``). Processes that
        start together (``pll serve`` beside ``pll events run``) take turns: on PostgreSQL a
        transaction-level lock, on SQLite the write lock of the transaction itself."""
        with self.engine.begin() as conn:
            if not self.is_sqlite:
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7002)")
            cfg = alembic_config(conn)
            from alembic import command  # noqa: PLC0415 - see alembic_config

            command.upgrade(cfg, "head")

    def dispose(self) -> None:
        self.engine.dispose()


def insert_absent(conn: Connection, table: Table, **values: Any) -> None:
    """Insert a row unless one with its primary key is there already (``ON CONFLICT DO
    NOTHING``): two processes that find a row missing and make it at once both go on, where
    a plain insert after a check fails in the one that comes second."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(table).values(**values).on_conflict_do_nothing())


def alembic_config(connection: Connection | None = None) -> Config:
    # imported here: Alembic costs every process that imports the store ~0.3 s of start-up,
    # and only the ones that migrate need it (most CLI commands do not)
    from alembic.config import Config  # noqa: PLC0415

    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("pll.store") / "migrations"))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself, so writes can ask for IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    # Reads write their audit row, so they too take the write lock up front: a deferred
    # transaction that reads and then writes fails at once with SQLITE_BUSY when another
    # writer committed in between, and busy_timeout cannot help it.
    if conn.get_execution_options().get("pll_snapshot"):
        conn.exec_driver_sql("BEGIN")
        return
    conn.exec_driver_sql("BEGIN IMMEDIATE")
