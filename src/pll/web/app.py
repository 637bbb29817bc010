"""The web UI as one ASGI application, mounted beside the FHIR API.

It has its own session middleware, so API requests (which carry no cookie) pay nothing for
it. Static files are the project's own stylesheet and script, served from the package: no
CDN, nothing fetched at run time (health networks are closed).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from pll.api.limits import BodyTooLarge, disconnected
from pll.config import Settings
from pll.domain.errors import DomainError, NotFound
from pll.services.launches import Launches
from pll.services.lists import PLLService
from pll.services.logins import LONGEST, WebLogins
from pll.services.stats import Statistics
from pll.store.db import DatabaseUnavailable
from pll.web import (
    doctor,
    helseid_pages,
    kurve,
    launch,
    login,
    multidose,
    oidc,
    patient,
    reactions,
    reconcile,
    rollout,
    stats,
)
from pll.web.edge import error_page, unavailable_page
from pll.web.embedding import parse_embed_origins
from pll.web.sessions import caller_of

#: The session cookie lasts as long as a login may (pll.services.logins).
SESSION_SECONDS = int(LONGEST.total_seconds())


def session_secret(settings: Settings) -> str:
    """``PLL_WEB_SECRET``, else a random secret kept in the data folder (shared by the
    processes of one machine; several machines must be given the same ``PLL_WEB_SECRET``).

    Several workers may start at once on an empty data folder: the secret is written whole
    to a file of its own and then linked into place, which succeeds for one of them only;
    every process then reads what that one wrote."""
    given = os.environ.get("PLL_WEB_SECRET")
    if given:
        return given
    path = Path(settings.data_dir) / "web-session.key"
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".web-session.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
        # another process may be first: its secret is then the one
        with contextlib.suppress(FileExistsError):
            os.link(draft, path)
        draft.unlink()
    secret = path.read_text().strip()
    if len(secret) < 32:
        raise RuntimeError(f"{path} holds no usable secret; delete it and start again.")
    return secret


#: Paths that belong to the API: what is not found there is answered in FHIR, not as a page.
API_PREFIXES = ("/fhir", "/cds-services", "/healthz", "/dev/", "/smart/")


async def _not_found(request: Request, exc: Exception) -> Response:
    if request.url.path.startswith(API_PREFIXES):
        answer: Response = await request.app.state.api_error(request)
        return answer
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    error = (
        NotFound(f"Siden {request.url.path} finnes ikke.")
        if status == 404
        else DomainError("Forespørselen kunne ikke behandles.")
    )
    caller = await caller_of(request) if "session" in request.scope else None
    return error_page(request, error, caller)


async def _too_large(request: Request, _: Exception) -> Response:
    limit = f"{request.app.state.max_body:,}".replace(",", " ")
    error = DomainError(f"Det du sendte er større enn serveren tar imot ({limit} byte).")
    caller = await caller_of(request) if "session" in request.scope else None
    page = error_page(request, error, caller, status=413, back=_same_site(request))
    page.headers["Connection"] = "close"  # the rest of the body is left unread
    return page


def _same_site(request: Request) -> str | None:
    """The page the form was sent from, when it is one of ours (the way back to it)."""
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc != request.headers.get("host") or not referer.path.startswith("/"):
        return None
    return referer.path


async def _database_down(request: Request, exc: Exception) -> Response:
    # raised before a page's own handling, as when the login is looked up
    if not isinstance(exc, DatabaseUnavailable):  # pragma: no cover - registered for it only
        raise exc
    return unavailable_page(request, exc, None)


async def _gone(request: Request, _: Exception) -> Response:
    disconnected(request.scope)
    return Response(status_code=400)  # no one is there to read it


def web_app(
    settings: Settings,
    service: PLLService,
    authenticator: Any,
    api_error: Callable[[Request], Awaitable[Response]],
) -> Starlette:
    routes: list[BaseRoute] = [
        *login.ROUTES,
        *launch.ROUTES,
        *helseid_pages.ROUTES,
        *doctor.ROUTES,
        *reactions.ROUTES,
        *reconcile.ROUTES,
        *patient.ROUTES,
        *multidose.ROUTES,
        *stats.ROUTES,
        *rollout.ROUTES,
        *kurve.ROUTES,
        Mount("/static", StaticFiles(packages=[("pll.web", "static")]), name="static"),
    ]
    https = bool(settings.public_url and settings.public_url.startswith("https://"))
    embed_origins = parse_embed_origins(settings.embed_origins)
    # A page framed by a journal system on another site is a third-party context: the
    # browser sends the session cookie there only if it is SameSite=None (and so Secure),
    # and Chromium keeps it at all only partitioned by the top-level site (CHIPS). Over
    # plain http (development, tests on one host) the cookie stays Lax.
    embedded = bool(embed_origins) and https
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_key=session_secret(settings),
                session_cookie="pll_session",
                max_age=SESSION_SECONDS,
                # Lax, not Strict: HelseID's redirect back must bring the login state; every
                # form is protected by its anti-forgery token besides (None when embedded).
                same_site="none" if embedded else "lax",
                https_only=https,
                partitioned=embedded,
            )
        ],
        exception_handlers={
            HTTPException: _not_found,
            # a form streamed past PLL_MAX_BODY, a client gone mid-form: handled here, as the
            # web UI's own error handler would otherwise answer 500 before the API's saw them
            BodyTooLarge: _too_large,
            ClientDisconnect: _gone,
            DatabaseUnavailable: _database_down,
        },
    )
    app.state.service = service
    app.state.authenticator = authenticator
    app.state.data_dir = settings.data_dir
    app.state.dev_login = settings.dev_auth
    app.state.oidc = oidc.OidcClient.from_settings(settings)
    app.state.api_error = api_error
    app.state.max_body = settings.max_body
    app.state.logins = WebLogins(service.db, service.clock)
    app.state.statistics = Statistics(service.db, service.clock)
    app.state.embed_origins = embed_origins
    app.state.launches = Launches(service.db, service, service.clock)
    app.state.public_url = settings.public_url.rstrip("/") if settings.public_url else None
    return app
