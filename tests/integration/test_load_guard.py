"""A bulk load never runs beside PLL's servers and workers on one PostgreSQL database (issue 20,
pll.store.load_guard): `pll import` refuses while one is connected, a server refuses to start
while an import loads. Real processes, each run as an operator would run it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from pll.auth.audit import AuditKey
from pll.store.db import Database
from pll.store.load_guard import LoadRefused, loading
from tests.conftest import empty_tables

PLL = str(Path(sys.executable).parent / "pll")
KEY = AuditKey(b"load-guard-test-key-not-a-secret!")


@pytest.fixture
def db(database: Database) -> Iterator[Database]:
    if database.is_sqlite:
        pytest.skip("SQLite: a load drops no key, and SQLite has one writer")
    empty_tables(database)
    yield database
    empty_tables(database)


def _env(db: Database, tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PGAPPNAME", None)
    env.update(
        PLL_DATABASE_URL=db.url,
        PLL_DATA_DIR=str(tmp_path / "data"),
        PLL_AUDIT_KEY=KEY.secret.hex(),
        PLL_DEV_AUTH="1",
    )
    return env


def _run(db: Database, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PLL, *args],
        env=_env(db, tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _count(db: Database, sql: str) -> int:
    with db.read() as conn:
        return int(conn.execute(sa.text(sql)).scalar_one())


@pytest.mark.parametrize("command", ["worker", "serve"])
def test_an_import_is_refused_while_a_server_or_worker_runs(
    db: Database, tmp_path: Path, command: str
) -> None:
    """`pll serve` (with the `pll worker` it starts) or a `pll worker` of its own."""
    args = [command, "--port", "0"] if command == "serve" else [command]
    running = subprocess.Popen(
        [PLL, *args],
        env=_env(db, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        named = (
            "SELECT count(*) FROM pg_stat_activity "
            f"WHERE application_name LIKE 'pll-{command} pid={running.pid} %'"
        )
        deadline = time.monotonic() + 60
        while not _count(db, named):
            assert running.poll() is None, running.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.1)
        folder = tmp_path / "lists"
        folder.mkdir()
        for load in (("generate", "--patients", "3"), ("lists", str(folder))):
            refused = _run(db, tmp_path, "import", *load)
            assert refused.returncode == 1, refused.stdout
            assert f"pll-{command} pid={running.pid}" in refused.stderr
            assert "Stop every `pll serve` and `pll worker` on this database" in refused.stderr
        assert _count(db, "SELECT count(*) FROM patient") == 0
        assert _count(db, "SELECT count(*) FROM bulk_import") == 0
    finally:
        running.send_signal(signal.SIGTERM)
        running.communicate(timeout=90)
    # stopped, the same import loads
    loaded = _run(db, tmp_path, "import", "generate", "--patients", "3")
    assert loaded.returncode == 0, loaded.stderr
    assert _count(db, "SELECT count(*) FROM patient") == 3


def test_a_server_does_not_start_while_an_import_loads(db: Database, tmp_path: Path) -> None:
    with loading(db.engine):
        for args in (("serve", "--port", "0"), ("worker",)):
            refused = _run(db, tmp_path, *args)
            assert refused.returncode == 1, refused.stdout
            assert "a bulk import (pll import) is loading into this database" in refused.stderr
            assert "pll-import pid=" in refused.stderr
    started = _run(db, tmp_path, "db", "upgrade")  # and nothing else was held
    assert started.returncode == 0


def test_a_servers_connection_is_enough_to_refuse(db: Database) -> None:
    """A request worker whose `pll serve` was killed holds no lock, but its connections
    still carry the server's name: the import sees them and refuses."""
    url = db.engine.url.render_as_string(hide_password=False)
    orphan = sa.create_engine(
        url, poolclass=NullPool, connect_args={"application_name": "pll-serve pid=4242 host=h"}
    )
    try:
        refused = pytest.raises(LoadRefused, match="pll-serve pid=4242 host=h")
        with orphan.connect(), refused, loading(db.engine):
            pytest.fail("loaded beside a server")
        with loading(db.engine):  # its connection closed, the import may load
            pass
    finally:
        orphan.dispose()
