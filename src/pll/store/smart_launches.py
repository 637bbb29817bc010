"""SMART EHR launches registered by journal systems, until the web UI redeems them once."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from pll.store.schema import smart_launch


def add(conn: Connection, key: str, now: datetime, **values: Any) -> None:
    # launches past their time go when a new one comes: the table holds only live ones
    conn.execute(delete(smart_launch).where(smart_launch.c.expires_at <= now))
    conn.execute(insert(smart_launch).values(id=key, created_at=now, **values))


def look(conn: Connection, key: str, now: datetime) -> tuple[str, Any]:
    """The launch ``key`` as :func:`take` would find it at ``now``, left as it is:
    ``("ok", row)`` for a live, unused launch, else the outcome and ``None``."""
    row = conn.execute(select(smart_launch).where(smart_launch.c.id == key)).first()
    if row is None:
        return "unknown", None
    if row.used_at is not None:
        return "used", None
    if row.expires_at <= now:
        return "expired", None
    return "ok", row


def take(conn: Connection, key: str, now: datetime) -> tuple[str, Any]:
    """Redeem the launch ``key`` at ``now``: ``("ok", row)`` for a live, unused launch, which
    is marked used and its token dropped (two browsers racing with one launch id: one
    update wins); else ``("used", None)``, ``("expired", None)`` or ``("unknown", None)``."""
    row = conn.execute(select(smart_launch).where(smart_launch.c.id == key)).first()
    if row is None:
        return "unknown", None
    taken = conn.execute(
        update(smart_launch)
        .where(
            smart_launch.c.id == key,
            smart_launch.c.used_at.is_(None),
            smart_launch.c.expires_at > now,
        )
        # the web login keeps the token from here on; a used launch holds none
        .values(used_at=now, token="")
    )
    if taken.rowcount == 1:
        return "ok", row
    if row.used_at is None and row.expires_at <= now:
        return "expired", None
    return "used", None
