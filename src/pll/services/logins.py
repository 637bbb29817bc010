"""Logins of the web UI, kept on the server.

A HelseID access token with its HPR details is 2–3 KB; in a cookie-held session it would
push the cookie past what browsers keep (about 4 KB), and the browser would hold a bearer
token besides. What the pages remember between requests (the access basis a health worker
stated for each patient, the patients opened, messages to show once) is patient data and
stays on the server too. So the signed session cookie carries only a random handle; the
database keeps its SHA-256, so a copy of the table opens no session. Every request still
verifies the token itself, as the API does.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from pll.store import web_logins as store
from pll.store.db import Database

#: A login lasts a working day at most; the token inside may end it sooner.
LONGEST = timedelta(hours=8)
#: The most a login's page state may hold (it is small: bases, recent patients, notices).
STATE_LIMIT = 64 * 1024


def _now() -> datetime:
    return datetime.now(UTC)


def _key(handle: str) -> str:
    return hashlib.sha256(handle.encode()).hexdigest()


@dataclass(frozen=True)
class Login:
    token: str
    #: what the pages remember for this login
    state: dict[str, Any]


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
            store.add(conn, _key(handle), token, kind, now, until)
        return handle

    def load(self, handle: str) -> Login | None:
        """The login behind ``handle``, while it lasts."""
        if len(handle) > 64:
            return None
        with self.db.read() as conn:
            row = store.load(conn, _key(handle), self.clock())
        if row is None:
            return None
        state = orjson.loads(row.state) if row.state else {}
        return Login(str(row.token), state if isinstance(state, dict) else {})

    def token(self, handle: str) -> str | None:
        login = self.load(handle)
        return login.token if login is not None else None

    def keep(self, handle: str, state: dict[str, Any]) -> None:
        """Remember ``state`` for the login (what does not fit is dropped, oldest first)."""
        text = orjson.dumps(state)
        while len(text) > STATE_LIMIT and state.get("notices"):
            state["notices"] = state["notices"][1:]
            text = orjson.dumps(state)
        with self.db.write() as conn:
            store.keep_state(conn, _key(handle), text.decode())

    def end(self, handle: str) -> None:
        with self.db.write() as conn:
            store.remove(conn, _key(handle))
