"""Helpers for the tests of a migration that drops a copy (0027, 0028): what a table's columns
are, and a version row taken away for a while, to show the upgrade refuses without it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa


def columns(conn: sa.Connection, table: str) -> set[str]:
    return {c["name"] for c in sa.inspect(conn).get_columns(table)}


@contextmanager
def version_row_missing(
    engine: sa.Engine, table: str, key: str, rid: str, version: int
) -> Iterator[None]:
    """``table``'s row ``key = rid`` at ``version`` deleted while the block runs, then put back
    exactly as it was."""
    where = f"FROM {table} WHERE {key} = :id AND version = :v"
    params = {"id": rid, "v": version}
    with engine.begin() as conn:
        kept = conn.execute(sa.text(f"SELECT * {where}"), params).one()._asdict()
        conn.execute(sa.text(f"DELETE {where}"), params)
    try:
        yield
    finally:
        names = ", ".join(kept)
        values = ", ".join(f":{k}" for k in kept)
        with engine.begin() as conn:
            conn.execute(sa.text(f"INSERT INTO {table} ({names}) VALUES ({values})"), kept)
