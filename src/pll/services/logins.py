"""Logins of the web UI, kept on the server.

A HelseID access token with its HPR details is 2–3 KB; in a cookie-held session it would
push the cookie past what browsers keep (about 4 KB), and the browser would hold a bearer
token besides. So the token stays in the database and the signed session cookie carries only
a random handle. Every request still verifies the token itself, as the API does.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from pll.store import web_logins as store
from pll.store.db import Database

#: A login lasts a working day at most; the token inside may end it sooner.
LONGEST = timedelta(hours=8)


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class WebLogins:
    db: Database
    clock: Callable[[], datetime] = field(default=_now)

    def start(self, token: str, kind: str, expires_at: float | None) -> str:
        """Keep ``token`` until it expires (at most :data:`LONGEST`); returns the handle."""
        now = self.clock()
        until = now + LONGEST
        if expires_at is not None:
            until = min(until, datetime.fromtimestamp(expires_at, UTC))
        handle = secrets.token_urlsafe(32)
        with self.db.write() as conn:
            store.add(conn, handle, token, kind, now, until)
        return handle

    def token(self, handle: str) -> str | None:
        """The token behind ``handle``, while the login lasts."""
        if len(handle) > 64:
            return None
        with self.db.read() as conn:
            return store.token(conn, handle, self.clock())

    def end(self, handle: str) -> None:
        with self.db.write() as conn:
            store.remove(conn, handle)
