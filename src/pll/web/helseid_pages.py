"""The two pages of a HelseID login (:mod:`pll.web.oidc` does the protocol):
``GET /logg-inn/helseid`` starts a login and sends the browser to HelseID, and the redirect URI
``GET /logg-inn/helseid/svar`` takes HelseID's answer and starts the session. Every failure
is a page in Norwegian with a way back to the login.
"""

from __future__ import annotations

import html

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from pll.web.oidc import CALLBACK_PATH, LOGIN_PATH, LoginFailed, OidcClient, Pending
from pll.web.sessions import begin_login

#: Session key of the pending login (the login itself is begun by :func:`.sessions.begin_login`,
#: which keeps the token on the server and starts the session afresh).
SESSION_PENDING = "oidc"


def _client(request: Request) -> OidcClient | None:
    client = getattr(request.app.state, "oidc", None)
    return client if isinstance(client, OidcClient) else None


def _page(status: int, title: str, message: str) -> HTMLResponse:
    body = f"""<!doctype html>
<html lang="nb">
<head><meta charset="utf-8"><title>{html.escape(title)} – PLL</title></head>
<body>
<main>
<h1>{html.escape(title)}</h1>
<p>{html.escape(message)}</p>
<p><a href="/logg-inn">Tilbake til innlogging</a></p>
</main>
</body>
</html>
"""
    return HTMLResponse(body, status, headers={"Cache-Control": "no-store"})


def _not_configured() -> HTMLResponse:
    return _page(
        404,
        "HelseID-innlogging er ikke satt opp",
        "Denne PLL-serveren er ikke satt opp for innlogging med HelseID.",
    )


def _failed(exc: LoginFailed) -> HTMLResponse:
    return _page(exc.status, "Innloggingen mislyktes", exc.message)


async def login(request: Request) -> Response:
    """``GET /logg-inn/helseid``: start a login and send the browser to HelseID."""
    client = _client(request)
    if client is None:
        return _not_configured()
    try:
        url, pending = await run_in_threadpool(client.begin)
    except LoginFailed as exc:
        return _failed(exc)
    request.session[SESSION_PENDING] = pending.to_session()
    return RedirectResponse(url, 303, headers={"Cache-Control": "no-store"})


async def callback(request: Request) -> Response:
    """``GET /logg-inn/helseid/svar``: HelseID's answer. The pending login is taken out of
    the session first, so an answer is used at most once whatever happens."""
    client = _client(request)
    if client is None:
        return _not_configured()
    stored = request.session.pop(SESSION_PENDING, None)
    try:
        pending = Pending.from_session(stored)
        result = await run_in_threadpool(client.complete, dict(request.query_params), pending)
    except LoginFailed as exc:
        return _failed(exc)
    # the session starts afresh: a new handle and a new anti-forgery token
    target = await run_in_threadpool(
        begin_login, request, result.access_token, "helseid", result.expires_at
    )
    return RedirectResponse(target, 303, headers={"Cache-Control": "no-store"})


ROUTES: list[Route] = [
    Route(LOGIN_PATH, login, methods=["GET"], name="helseid_login"),
    Route(CALLBACK_PATH, callback, methods=["GET"], name="helseid_callback"),
]
