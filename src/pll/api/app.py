"""The ASGI application: FHIR routes, ``/fhir/metadata`` and ``/healthz``."""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version
from typing import Any, cast

import anyio.to_thread
import orjson
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route

from pll.api import cds_hooks, metrics, rollout_routes, smart, stats_routes
from pll.api.fhir.capability import capability_statement
from pll.api.fhir.routes import ROUTES
from pll.api.http import (
    FHIR_JSON,
    AsyncHandler,
    Handler,
    async_endpoint,
    database_unavailable,
    endpoint,
    fhir_response,
)
from pll.api.limits import BodyLimit
from pll.auth.tokens import jwks_path
from pll.config import Settings
from pll.events.worker import background
from pll.fhir.outcome import issue, outcome
from pll.services.launches import Launches
from pll.services.lists import PLLService
from pll.services.reads import ListReads
from pll.services.rollout_reports import RolloutReports
from pll.services.stats import Statistics
from pll.store.db import Database, DatabaseUnavailable
from pll.store.replicas import ReplicaSet
from pll.web.app import web_app

log = logging.getLogger("pll.api")


def _software_version() -> str:
    try:
        return version("pll")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"


async def metadata(request: Request) -> Response:
    base = str(request.base_url).rstrip("/") + "/fhir"
    return Response(
        orjson.dumps(capability_statement(base, _software_version())), media_type=FHIR_JSON
    )


def healthz(request: Request) -> Response:
    """200 once the database answers; load balancers and tests wait on this. A plain
    function, so Starlette runs its blocking query in a thread, off the event loop."""
    db: Database = request.app.state.service.db
    with db.read() as conn:
        conn.execute(text("SELECT 1"))
    return Response(b'{"status":"ok"}', media_type="application/json")


async def dev_jwks(request: Request) -> Response:
    """The development issuer's public keys (``pll token``), as a JWKS (RFC 7517 §5)."""
    path = jwks_path(request.app.state.data_dir)
    return Response(path.read_bytes(), media_type="application/jwk-set+json")


async def http_error(request: Request, exc: Exception) -> Response:
    """Unknown paths and methods answer in FHIR too."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = {
        404: f"No such endpoint: {request.url.path}. See /fhir/metadata for what is served.",
        405: f"{request.method} is not supported on {request.url.path}.",
    }.get(status, "Request failed.")
    code = {404: "not-found", 405: "not-supported"}.get(status, "processing")
    return fhir_response(outcome(issue(message, code=code)), status)


def _wrap(handler: Handler | AsyncHandler) -> Callable[[Request], Any]:
    if inspect.iscoroutinefunction(handler):
        return async_endpoint(handler)
    return endpoint(cast("Handler", handler))


def create_app(settings: Settings | None = None, service: PLLService | None = None) -> Starlette:
    """Build the application; ``service`` may be given by tests that share a database."""
    settings = settings or Settings.from_env()
    if service is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        service = PLLService(Database(settings.database_url), settings.audit_key())
        service.case_rules = settings.case_rules
    replicas = (
        ReplicaSet(service.db.libpq_url(), settings.read_database_urls, settings.read_max_lag)
        if settings.read_database_urls
        else None
    )
    routes: list[BaseRoute] = [Route(r.path, _wrap(r.handler), methods=[r.method]) for r in ROUTES]
    routes += [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/fhir/metadata", metadata, methods=["GET"]),
        metrics.instrument(service, settings.metrics_token, _software_version(), replicas),
    ]
    routes += [
        Route("/cds-services", cds_hooks.discovery, methods=["GET"]),
        Route(
            f"/cds-services/{cds_hooks.SERVICE_ID}", endpoint(cds_hooks.service), methods=["POST"]
        ),
    ]
    # a journal system registers a SMART EHR launch of the doctor pages (pll.web.launch)
    routes.append(Route(smart.REGISTER_PATH, smart.register, methods=["POST"]))
    if settings.dev_auth:
        routes.append(Route("/dev/jwks.json", dev_jwks, methods=["GET"]))
    statistics = Statistics(service.db, service.clock)
    # the public figures, and the rollout team's non-public reports (issue 19)
    rollout_reports = RolloutReports(service.db, service.clock, service.trail)
    routes += stats_routes.routes(statistics) + rollout_routes.routes(rollout_reports)
    reads = ListReads(service, settings.group_commit, replicas)

    # the sealer, the statistics consumer and the dispatcher, when this process runs them
    # (PLL_BACKGROUND=inline; else `pll worker` does, pll.events.worker)
    work = background(service, settings) if settings.inline else None
    stop_work = threading.Event()

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = settings.threads
        threads = work.start(stop_work) if work is not None else []
        reads.start()
        yield
        stop_work.set()
        for thread in threads:
            await anyio.to_thread.run_sync(thread.join, 15)
        await reads.close()

    authenticator = settings.authenticator()
    api_routes = list(routes)

    async def api_error(request: Request) -> Response:
        # A path of the API's that no API route took: 405 when the path is served with
        # another method, else 404 — in FHIR, as the API answers everything.
        served = any(r.matches(request.scope)[0] is Match.PARTIAL for r in api_routes)
        return await http_error(request, HTTPException(405 if served else 404))

    # the web UI takes every path the API does not serve (it is matched last)
    routes.append(Mount("", app=web_app(settings, service, authenticator, api_error)))
    app = Starlette(
        routes=routes,
        # a lost database is 503, not 500, on the routes outside the API's endpoint()
        exception_handlers={HTTPException: http_error, DatabaseUnavailable: database_unavailable},
        lifespan=lifespan,
        # outermost but for Starlette's own error handler: it sees the API and the web UI
        middleware=[
            Middleware(metrics.RequestMetrics, templates=metrics.route_templates(routes)),
            Middleware(BodyLimit, max_body=settings.max_body),
        ],
    )
    app.state.service = service
    app.state.statistics = statistics
    app.state.reads = reads
    app.state.authenticator = authenticator
    app.state.data_dir = settings.data_dir
    app.state.public_url = settings.public_url.rstrip("/") if settings.public_url else None
    app.state.launches = Launches(service.db, service, service.clock)
    return app
