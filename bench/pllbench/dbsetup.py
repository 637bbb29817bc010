"""Creating (or reusing) the benchmark database and the helper tables the drivers use.

Helper tables live next to PLL's own tables in ``pll_bench`` and all start with ``bench_``:

- ``bench_patient(n, patient_id, list_id)``: the loaded patients numbered 1..N, for choosing a
  random patient in pgbench (``WHERE n = :n``) and in wrk (a file of ids). Each load batch
  writes its rows here in its own transaction, so this table is also the record of what is
  loaded and loading resumes exactly where it stopped;
- ``bench_write_pool(n, entry_id, list_id)``: the entries the write workload changes, one per
  list, numbered 1..M and shared out between virtual users by ``n``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from pll.store.db import Database, normalise_url

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/pll_bench"

HELPER_DDL = """
CREATE TABLE IF NOT EXISTS bench_patient (
    n integer PRIMARY KEY, patient_id varchar(64) NOT NULL, list_id varchar(64) NOT NULL);
"""


def libpq_url(url: str) -> str:
    """A plain libpq URL (psycopg / pgbench), whatever SQLAlchemy driver suffix was given."""
    u = make_url(url)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


def conn_parts(url: str) -> dict[str, str]:
    u = make_url(url)
    return {
        "host": u.host or "127.0.0.1",
        "port": str(u.port or 5432),
        "user": u.username or "postgres",
        "dbname": u.database or "pll_bench",
        "password": u.password or "",
    }


def _admin_url(url: str) -> str:
    u = make_url(url)
    return u.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)


def database_exists(url: str) -> bool:
    name = conn_parts(url)["dbname"]
    with psycopg.connect(_admin_url(url), autocommit=True) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            is not None
        )


def recreate_database(url: str) -> None:
    """Drop and create the benchmark database. Refuses names not starting with ``pll_bench``."""
    name = conn_parts(url)["dbname"]
    if not name.startswith("pll_bench"):
        raise SystemExit(
            f"refusing to drop database {name!r}: only pll_bench* databases are recreated "
            "(use --reuse to load into an existing database)"
        )
    with psycopg.connect(_admin_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    """Drop a benchmark database (only ``pll_bench*`` names)."""
    name = conn_parts(url)["dbname"]
    if not name.startswith("pll_bench"):
        raise SystemExit(f"refusing to drop database {name!r}: not a pll_bench* database")
    with psycopg.connect(_admin_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_database_if_missing(url: str) -> bool:
    if database_exists(url):
        return False
    name = conn_parts(url)["dbname"]
    with psycopg.connect(_admin_url(url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return True


def create_helpers(url: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(HELPER_DDL)


def loaded_numbers(url: str) -> set[int]:
    with psycopg.connect(libpq_url(url)) as conn:
        return {r[0] for r in conn.execute("SELECT n FROM bench_patient")}


def vacuum_analyze(url: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("VACUUM (ANALYZE)")


def checkpoint(url: str) -> None:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def patient_ids(url: str, patients: int) -> list[str]:
    with psycopg.connect(libpq_url(url)) as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT patient_id FROM bench_patient WHERE n <= %s ORDER BY n", (patients,)
            )
        ]


def write_pool_rows(url: str) -> list[tuple[str, int, str]]:
    """(entry id, current version, current resource) of the write pool, in pool order."""
    with psycopg.connect(libpq_url(url)) as conn:
        return [
            (r[0], int(r[1]), r[2])
            for r in conn.execute(
                "SELECT e.id, e.version, v.resource FROM bench_write_pool w "
                "JOIN entry e ON e.id = w.entry_id "
                "JOIN entry_version v ON v.entry_id = e.id AND v.version = e.version ORDER BY w.n"
            )
        ]


def server_version(url: str) -> str:
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"


def patient_count(url: str) -> int:
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute("SELECT count(*) FROM bench_patient").fetchone()
        return int(row[0]) if row else 0


def build_write_pool(url: str, patients: int, size: int, seed: int) -> int:
    """Choose ``size`` patients at random (never patient 1, which the SQL capture uses) and one
    entry in use on each of their lists: the write workload's entries, numbered 1..size.
    Entries with a maximum per period are left out: the workload's dose 1.5 would exceed a
    maximum of 1 per day, a contradiction PLL refuses (400), not a write to measure."""
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_write_pool")
        conn.execute("SELECT setseed(%s)", (((seed % 1000) / 1000.0),))
        conn.execute(
            """
            CREATE TABLE bench_write_pool AS
            SELECT (row_number() OVER ())::integer AS n, s.entry_id, s.list_id FROM (
                SELECT p.list_id,
                       (SELECT e.id FROM entry e
                          JOIN entry_version v ON v.entry_id = e.id AND v.version = e.version
                        WHERE e.list_id = p.list_id AND e.status = 'active'
                          AND v.resource NOT LIKE '%%maxDosePerPeriod%%'
                        ORDER BY e.id LIMIT 1) AS entry_id
                FROM bench_patient p WHERE p.n > 1 AND p.n <= %s
                ORDER BY random() LIMIT %s) s
            WHERE s.entry_id IS NOT NULL
            """,
            (patients, size),
        )
        conn.execute("ALTER TABLE bench_write_pool ADD PRIMARY KEY (n)")
        conn.execute("ANALYZE bench_write_pool")
        conn.execute("ANALYZE bench_patient")
        conn.commit()
        row = conn.execute("SELECT count(*) FROM bench_write_pool").fetchone()
        return int(row[0]) if row else 0


@contextmanager
def fresh_database(backend: str, tmp: Path, pg_admin: str, tag: str) -> Iterator[Database]:
    """A new, migrated database for one bench run (``tag`` names it); a PostgreSQL one is
    created beside ``pg_admin``'s and dropped afterwards."""
    if backend == "sqlite":
        db = Database(f"sqlite:///{tmp / f'{tag}.sqlite3'}")
        db.upgrade()
        try:
            yield db
        finally:
            db.dispose()
        return
    name = f"pll_bench_{tag}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(normalise_url(pg_admin), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        db = Database(pg_admin.rsplit("/", 1)[0] + f"/{name}")
        try:
            db.upgrade()
            yield db
        finally:
            db.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
