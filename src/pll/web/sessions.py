"""The web login's session (docs/web.md, "Logging in"): who is logged in, verified again on
every request as an API token is; a login begun afresh (no fixation) and ended on the server;
the page state a login remembers between requests.

The session cookie holds only an opaque handle (:data:`LOGIN_ID`); the token and the page
state are kept server-side (:class:`pll.services.logins.WebLogins`).
"""

from __future__ import annotations

import logging

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from pll.auth.tokens import Authenticator, Caller
from pll.domain.errors import Unauthenticated
from pll.services.logins import WebLogins
from pll.store.db import DatabaseUnavailable

log = logging.getLogger("pll.web")

#: Session keys: the login's handle, and the page that asked for a login
LOGIN_ID = "login_id"
AFTER_LOGIN = "after_login"


def current_caller(request: Request) -> Caller | None:
    """The logged-in caller, verified again on every request like an API token. Blocking
    (it reads the login): call it in a worker thread."""
    handle = request.session.get(LOGIN_ID)
    if not isinstance(handle, str):
        return None
    logins: WebLogins = request.app.state.logins
    login = logins.load(handle)
    authenticator: Authenticator = request.app.state.authenticator
    try:
        if login is None:
            raise Unauthenticated("The login has ended.")
        caller = authenticator.authenticate(f"Bearer {login.token}", None, request.method, "")
    except Unauthenticated:
        request.session.pop(LOGIN_ID, None)
        return None
    request.state.memory = login.state
    request.state.remembered = orjson.dumps(login.state)
    return caller


def keep_memory(request: Request) -> None:
    """Save the page state if the request changed it (blocking)."""
    memory = getattr(request.state, "memory", None)
    handle = request.session.get(LOGIN_ID)
    if memory is None or not isinstance(handle, str):
        return
    if orjson.dumps(memory) != getattr(request.state, "remembered", b"{}"):
        request.app.state.logins.keep(handle, memory)


async def caller_of(request: Request) -> Caller | None:
    """:func:`current_caller`, looked up once more on a connection made now when the
    database connection was lost (a restart, a failover): the lookup only reads, whatever
    the request's method."""
    try:
        return await run_in_threadpool(current_caller, request)
    except DatabaseUnavailable as exc:
        log.warning("database unavailable looking up the login (%s); trying once more", exc)
        return await run_in_threadpool(current_caller, request)


def begin_login(request: Request, token: str, kind: str, expires_at: float | None) -> str:
    """Start a login with ``token`` (blocking: call it in a worker thread). The session
    starts afresh (a new handle, a new anti-forgery token: no fixation); returns the page
    that asked for the login when it is a path on this site, else ``/``."""
    logins: WebLogins = request.app.state.logins
    after = request.session.pop(AFTER_LOGIN, None)
    old = request.session.get(LOGIN_ID)
    if isinstance(old, str):
        logins.end(old)
    request.session.clear()
    request.session[LOGIN_ID] = logins.start(token, kind, expires_at)
    request.session["login"] = kind
    if (
        isinstance(after, str)
        and after.startswith("/")
        and not after.startswith("//")
        and "\\" not in after
    ):
        return after
    return "/"


def end_login(request: Request) -> None:
    """Log out: the login ends on the server, and the session is emptied (blocking)."""
    handle = request.session.get(LOGIN_ID)
    if isinstance(handle, str):
        request.app.state.logins.end(handle)
    request.session.clear()
