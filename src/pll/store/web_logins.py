"""The web UI's logins: the access token behind each session's random handle."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, insert, select

from pll.store.schema import web_login


def add(
    conn: Connection, handle: str, token: str, kind: str, now: datetime, expires: datetime
) -> None:
    # logins that ran out go when a new one comes: the table holds only live ones
    conn.execute(delete(web_login).where(web_login.c.expires_at <= now))
    conn.execute(
        insert(web_login).values(
            id=handle, token=token, kind=kind, started_at=now, expires_at=expires
        )
    )


def token(conn: Connection, handle: str, now: datetime) -> str | None:
    found = conn.execute(
        select(web_login.c.token).where(web_login.c.id == handle, web_login.c.expires_at > now)
    ).scalar()
    return str(found) if found is not None else None


def remove(conn: Connection, handle: str) -> None:
    conn.execute(delete(web_login).where(web_login.c.id == handle))
