"""``POST /fhir``: a transaction Bundle, written as one change
(:func:`pll.services.transaction.run`)."""

from __future__ import annotations

from starlette.responses import Response

from pll.api.fhir.common import FhirRoute
from pll.api.http import Ctx, fhir_response
from pll.services import transaction


def transaction_post(ctx: Ctx) -> Response:
    return fhir_response(transaction.run(ctx.service, ctx.access, ctx.json(), ctx.reason()))


ROUTES = [
    FhirRoute("/fhir", "POST", transaction_post, None, "transaction"),
]
