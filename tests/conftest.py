"""Shared fixtures: a real database per backend, built by the migrations, and a live server.

Every integration test runs once on SQLite and once on PostgreSQL (STYLE: one contract suite
for every backend). The schema comes from ``alembic upgrade head``, never ``create_all``;
tables are emptied between tests. With ``CI=true`` an unreachable PostgreSQL fails the run
instead of skipping it.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import uvicorn

from pll.api.app import create_app
from pll.auth.audit import AuditKey
from pll.auth.tokens import PERSONAS, issue
from pll.config import Settings
from pll.services.lists import PLLService
from pll.store.db import Database, normalise_url
from pll.store.schema import metadata

PG_ADMIN_URL = os.environ.get("PLL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
FNR = "urn:oid:2.16.578.1.12.4.1.4.1"


class Clock:
    """A clock tests can move; the services take time only from here."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **kwargs: float) -> None:
        self.offset += timedelta(**kwargs)


def _postgres_database(tmp_name: str) -> str:
    admin = sa.create_engine(normalise_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{tmp_name}"'))
            conn.execute(sa.text(f'CREATE DATABASE "{tmp_name}"'))
    except sa.exc.OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required in CI but unreachable at {PG_ADMIN_URL}: {exc}")
        pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN_URL}")
    finally:
        admin.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{tmp_name}"


def _drop_postgres_database(tmp_name: str) -> None:
    admin = sa.create_engine(normalise_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{tmp_name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Database]:
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("sqlite") / "pll.sqlite3"
        db = Database(f"sqlite:///{path}")
        db.upgrade()
        yield db
        db.dispose()
        return
    name = f"pll_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    db = Database(_postgres_database(name))
    db.upgrade()
    yield db
    db.dispose()
    _drop_postgres_database(name)


@contextmanager
def append_only_lifted(conn: sa.Connection, db: Database) -> Iterator[None]:
    """Drop the audit log's append-only triggers for the block and put them back, as someone
    with the rights to change the schema could (tests empty the log; tamper tests attack it)."""
    if db.is_sqlite:
        triggers = conn.execute(
            sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
        ).all()
        for name, _ in triggers:
            conn.execute(sa.text(f'DROP TRIGGER "{name}"'))
        yield
        for _, sql in triggers:
            conn.execute(sa.text(sql))
    else:
        # the audit trail's monthly partitions (issue 20) each have their own TRUNCATE guard
        partitions = conn.execute(
            sa.text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'audit_event'::regclass"
            )
        ).scalars()
        tables = ["audit_event", "audit_chain", *partitions]
        for table in tables:
            conn.execute(sa.text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))
        yield
        for table in tables:
            conn.execute(sa.text(f"ALTER TABLE {table} ENABLE TRIGGER USER"))


#: As ``TRUNCATE ... RESTART IDENTITY`` does: the sequences the tables own start again.
_RESTART_SEQUENCES = sa.text(
    "SELECT setval(s.seqrelid, s.seqstart, false) FROM pg_sequence s "
    "JOIN pg_depend d ON d.objid = s.seqrelid AND d.classid = 'pg_class'::regclass "
    "AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') "
    "WHERE d.refobjid::regclass::text = ANY(:tables)"
)


def empty_tables(db: Database) -> None:
    """Every table of the schema emptied (the rows of every test before), as a fresh
    database has them; the schema and the audit trail's partitions stay."""
    with db.write() as conn:
        if db.is_sqlite:
            with append_only_lifted(conn, db):
                for table in reversed(metadata.sorted_tables):
                    conn.execute(table.delete())
        elif conn.execute(sa.text("SELECT current_setting('is_superuser') = 'on'")).scalar():
            # DELETE, not TRUNCATE: TRUNCATE gives each of the ~180 tables and indexes a new
            # file and syncs them all at commit (0.2-0.7 s before every PostgreSQL test on a
            # 2-core machine); deleting the few rows a test leaves takes milliseconds. As a
            # replica no trigger fires: neither the append-only guards (nothing to lift, no
            # ALTER TABLE) nor the foreign keys' (every table is emptied together). Nobody
            # waits for this commit to be flushed: it is test housekeeping, not a change.
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
            conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
            conn.exec_driver_sql(
                "; ".join(f"DELETE FROM {t.name}" for t in reversed(metadata.sorted_tables))
            )
            conn.execute(_RESTART_SEQUENCES, {"tables": [t.name for t in metadata.sorted_tables]})
        else:  # a role that may not act as a replica (PLL_TEST_POSTGRES_URL)
            names = ", ".join(t.name for t in metadata.sorted_tables)
            with append_only_lifted(conn, db):
                conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(scope="session")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pll-data")


@dataclass
class LiveServer:
    base: str
    data_dir: Path
    db: Database
    service: PLLService
    tokens: dict[str, str] = field(default_factory=dict)

    def token(self, persona: str, pid: str | None = None) -> str:
        key = f"{persona}:{pid}"
        if key not in self.tokens:
            self.tokens[key] = issue(self.data_dir, persona, pid)
        return self.tokens[key]

    def client(
        self,
        persona: str = "gp",
        pid: str | None = None,
        basis: str | None = "HPBEHANDLINGSRELASJON",
    ) -> httpx.Client:
        """A client for ``persona``; health personnel state ``basis`` on every request
        (treatment relationship unless told otherwise; ``None`` states none)."""
        headers = {
            "Authorization": f"Bearer {self.token(persona, pid)}",
            "Content-Type": "application/fhir+json",
        }
        if basis is not None and PERSONAS[persona].hpr:
            headers["X-PLL-Access-Basis"] = basis
        return httpx.Client(base_url=self.base, headers=headers, timeout=30)

    def seal(self) -> int:
        return self.service.trail.seal()


@contextmanager
def serving(app: Any) -> Iterator[str]:
    """Run an ASGI app on a real socket in a thread; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def server_settings(data_dir: Path, database: Database, **changes: Any) -> Settings:
    """Settings for a test server: development tokens on, no background sealer or
    dispatcher (tests seal and deliver when they mean to, and snapshots stay still)."""
    base = Settings(
        data_dir=data_dir,
        database_url=database.url,
        dev_auth=True,
        seal_interval=0,
        dispatch=False,  # tests deliver events when they mean to (pll.events)
        stats_interval=0,  # ... and count them for the statistics when they mean to
    )
    return dataclasses.replace(base, **changes)


@pytest.fixture(scope="session")
def live_server(database: Database, data_dir: Path, clock: Clock) -> Iterator[LiveServer]:
    """The real ASGI app on a real socket, sharing the test's database and clock."""
    service = PLLService(database, AuditKey.load(data_dir), clock=clock)
    with serving(create_app(server_settings(data_dir, database), service)) as base:
        yield LiveServer(base, data_dir, database, service)


@pytest.fixture
def server(live_server: LiveServer, clock: Clock) -> LiveServer:
    """The live server with empty tables and the clock at now."""
    empty_tables(live_server.db)
    clock.offset = timedelta()
    return live_server


def snapshot(db: Database, *, audit: bool = True) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, to assert that a refused request changed nothing.

    ``audit=False`` leaves out the audit trail, for refusals that are logged (a refused
    access, or a relay-baton refusal that shows the current version), and the statistics'
    counts (which count relay-baton refusals). The web UI's logins are left out: a test logs
    in while it watches that nothing else changes; so are the DPoP proofs accepted, and the
    per-client counts of refusals (``client_week_count``, issue 19), which every refusal adds
    to as metrics count it.
    """
    out = {}
    with db.read() as conn:
        for table in metadata.sorted_tables:
            if not audit and table.name in ("audit_event", "stats_count"):
                continue
            if table.name in ("web_login", "dpop_proof", "client_week_count"):
                # who is logged in to the web UI is no patient data, and a request refused
                # after its DPoP proof was accepted has still used that proof up
                continue
            rows = conn.execute(sa.select(table)).all()
            out[table.name] = sorted((tuple(r) for r in rows), key=repr)
    return out
