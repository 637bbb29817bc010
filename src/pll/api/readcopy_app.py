"""The read copy's own small server (``pll readcopy serve``): list reads from the copy.

Health personnel read a patient's list by fødselsnummer, authenticated and stating a basis as
on PLL itself; the access decision and the audit record are PLL's (blocks hold here too, and
the patient sees the read in their access log). Only the list content comes from the copy.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import Response
from starlette.routing import Route

from pll.api.http import Ctx, endpoint, fhir_response
from pll.api.limits import BodyLimit
from pll.auth.access import Verb
from pll.config import Settings
from pll.domain.errors import InvalidInput, NotFound
from pll.domain.prescriptions import local_day
from pll.events.readcopy import ReadCopy
from pll.fhir.expiry import marked_document
from pll.services.lists import PLLService


def create_readcopy_app(settings: Settings, service: PLLService, copy: ReadCopy) -> Starlette:
    def list_read(ctx: Ctx) -> Response:
        params = ctx.query({"patient.identifier"})
        system, _, value = params.get("patient.identifier", "").rpartition("|")
        if not value:
            raise InvalidInput(
                "Read by patient.identifier=<system>|<fødselsnummer>.", "patient.identifier"
            )
        patient_id = service.patient_by_identifier(ctx.access, Verb.READ, system or None, value)
        copied = copy.document(patient_id) if patient_id is not None else None
        if patient_id is None or copied is None:
            raise NotFound("The read copy has no list for this patient.", "patient.identifier")
        if copied.expires_at is not None and copied.expires_at <= service.clock():
            # a discontinued entry is past its 90 days (rule 3): PLL makes the version that
            # drops it, and the copy takes it before answering
            service.expire(copied.list_id)
            copy.refresh(copied.list_id)
            copied = copy.document(patient_id)
        with service.guard(ctx.access), service.db.write() as conn:
            service.trail.admit(
                conn, ctx.access, Verb.READ, patient_id, "read-copy", "List", copied.list_id
            )
        # a copy stored before prescriptions said when they expire has no markers
        return fhir_response(marked_document(copied.document, local_day(service.clock())))

    def status(ctx: Ctx) -> Response:
        lag = copy.lag()
        return fhir_response(
            {"behind": lag.behind, "oldestSeconds": lag.oldest_seconds, "lists": lag.lists}
        )

    app = Starlette(
        routes=[
            Route("/fhir/List", endpoint(list_read), methods=["GET"]),
            Route("/status", endpoint(status), methods=["GET"]),
        ],
        middleware=[Middleware(BodyLimit, max_body=settings.max_body)],
    )
    app.state.service = service
    app.state.reads = None
    app.state.authenticator = settings.authenticator()
    app.state.data_dir = settings.data_dir
    app.state.public_url = settings.public_url.rstrip("/") if settings.public_url else None
    return app
