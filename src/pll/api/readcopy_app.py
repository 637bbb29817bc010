"""The read copy's own small server (``pll readcopy run --port``): list reads from the copy.

Health personnel read a patient's list by fødselsnummer, authenticated and stating a basis as
on PLL itself, and patients (or their proxies) read their own. Access is decided with PLL's
policy on the copy's own facts, and the audit record is written to the copy and forwarded to
PLL's trail later (:mod:`pll.services.readcopy_reads`): blocks hold here too, the patient sees
the read in their access log, and nothing here needs PLL's database, DPoP proofs included
(the copy keeps the ones it accepted). So lists stay readable while the store is down.
"""

from __future__ import annotations

from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.routing import Route

from pll.api.http import Ctx, endpoint, fhir_response
from pll.api.limits import BodyLimit
from pll.config import Settings
from pll.domain.errors import InvalidInput
from pll.events.readcopy import ReadCopy
from pll.events.readcopy_audit import CopyAudit
from pll.services.lists import PLLService
from pll.services.readcopy_reads import ReadCopyReads
from pll.store.db import DatabaseUnavailable


def create_readcopy_app(settings: Settings, service: PLLService, copy: ReadCopy) -> Starlette:
    """The copy's server. ``service`` is PLL's, on the store: the copy uses its audit key
    and clock, and asks it to drop expired entries from a list when it can."""
    reads = ReadCopyReads(copy, service.trail.key, service.clock, service.expire)
    audit = CopyAudit(copy.copy, service.db, service.clock)

    def list_read(ctx: Ctx) -> Response:
        params = ctx.query({"patient.identifier"})
        system, _, value = params.get("patient.identifier", "").rpartition("|")
        if not value:
            raise InvalidInput(
                "Read by patient.identifier=<system>|<fødselsnummer>.", "patient.identifier"
            )
        return fhir_response(reads.read_list(ctx.access, system or None, value))

    def status(ctx: Ctx) -> Response:
        """How far behind the copy is (``null`` while PLL's database cannot say), how
        many lists it holds, and its audit records not yet forwarded."""
        waiting, oldest = audit.waiting()
        shown: dict[str, object] = {"auditWaiting": waiting, "auditOldestSeconds": oldest}
        try:
            lag = copy.lag()
        except (SQLAlchemyError, DatabaseUnavailable):
            # the store is away: what the copy knows of itself is still worth saying
            shown |= {"storeReachable": False, "behind": None, "oldestSeconds": None}
            shown["lists"] = copy.lists()
        else:
            shown |= {"storeReachable": True, "behind": lag.behind}
            shown |= {"oldestSeconds": lag.oldest_seconds, "lists": lag.lists}
        return fhir_response(shown)

    app = Starlette(
        routes=[
            Route("/fhir/List", endpoint(list_read), methods=["GET"]),
            Route("/status", endpoint(status), methods=["GET"]),
        ],
        middleware=[Middleware(BodyLimit, max_body=settings.max_body)],
    )
    app.state.service = service
    app.state.reads = None
    # DPoP proofs are remembered in the copy's database: the store may be away
    app.state.authenticator = settings.authenticator(replay_url=copy.copy.url)
    app.state.data_dir = settings.data_dir
    app.state.public_url = settings.public_url.rstrip("/") if settings.public_url else None
    return app
