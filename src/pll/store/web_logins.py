"""The web UI's logins: the access token and page state behind each session's handle."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from pll.store.schema import web_login


def add(
    conn: Connection, key: str, token: str, kind: str, now: datetime, expires: datetime
) -> None:
    # logins that ran out go when a new one comes: the table holds only live ones
    conn.execute(delete(web_login).where(web_login.c.expires_at <= now))
    conn.execute(
        insert(web_login).values(id=key, token=token, kind=kind, started_at=now, expires_at=expires)
    )


def load(conn: Connection, key: str, now: datetime) -> Any:
    """The live login's ``token`` and ``state`` (JSON text or None), or None."""
    return conn.execute(
        select(web_login.c.token, web_login.c.state).where(
            web_login.c.id == key, web_login.c.expires_at > now
        )
    ).first()


def keep_state(conn: Connection, key: str, state: str) -> None:
    conn.execute(update(web_login).where(web_login.c.id == key).values(state=state))


def remove(conn: Connection, key: str) -> None:
    conn.execute(delete(web_login).where(web_login.c.id == key))
