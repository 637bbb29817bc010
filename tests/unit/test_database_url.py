"""PLL takes libpq's multi-host URL (issue 21) and hands every host to each driver: psycopg
through SQLAlchemy, asyncpg for the hot read. Nothing connects here."""

from __future__ import annotations

from pll.store.audited_read import asyncpg_dsn
from pll.store.db import Database, normalise_url

MULTI = (
    "postgresql://pll:s%40cret@10.0.0.1:5433,10.0.0.2:5434/pll"
    "?target_session_attrs=read-write&connect_timeout=3"
)


def test_a_multi_host_url_reaches_psycopg_with_every_host() -> None:
    db = Database(MULTI)
    _, params = db.engine.dialect.create_connect_args(db.engine.url)
    assert params["host"] == "10.0.0.1,10.0.0.2"
    assert params["port"] == "5433,5434"
    assert params["target_session_attrs"] == "read-write"
    assert params["dbname"] == "pll"
    assert params["password"] == "s@cret"
    db.dispose()


def test_a_multi_host_url_reaches_asyncpg_with_every_host() -> None:
    libpq = Database(MULTI).libpq_url()
    assert libpq.startswith("postgresql://pll:s%40cret@10.0.0.1:5433,10.0.0.2:5434/pll?")
    dsn, timeout = asyncpg_dsn(libpq)
    # asyncpg would send connect_timeout to the server as a setting, and fail
    assert "connect_timeout" not in dsn
    assert "target_session_attrs=read-write" in dsn
    assert timeout == 3.0


def test_one_host_urls_are_as_before() -> None:
    assert normalise_url("postgresql://u@h:5432/db") == "postgresql+psycopg://u@h:5432/db"
    assert normalise_url("sqlite:///x.sqlite3") == "sqlite:///x.sqlite3"
    assert Database("postgresql://u@h:5432/db").libpq_url() == "postgresql://u@h:5432/db"
    assert asyncpg_dsn("postgresql://u@h:5432/db") == ("postgresql://u@h:5432/db", None)
