"""Decision support without writing: ``GET List/{id}/$check`` on the list as it is, and
``POST List/$check`` on a change given as a transaction Bundle. Both answer with the
findings as an OperationOutcome."""

from __future__ import annotations

from starlette.responses import Response

from pll.api.fhir.common import FhirRoute
from pll.api.http import Ctx, fhir_response
from pll.fhir import findings
from pll.services import transaction

OPERATIONS = {
    "check": "GET List/{id}/$check: decision support on the whole list as it is",
    "check-change": (
        "POST List/$check with a transaction Bundle: decision support on that change, "
        "without writing it"
    ),
}


def list_check(ctx: Ctx) -> Response:
    """``GET List/{id}/$check``: every finding on the list as it is."""
    ctx.query(set())
    _, found = ctx.service.check_list(ctx.access, ctx.path["id"])
    return fhir_response(findings.outcome(found))


def list_check_change(ctx: Ctx) -> Response:
    """``POST List/$check`` with a transaction Bundle: what the change would bring, without
    writing it."""
    patient_id, found = transaction.check(ctx.service, ctx.access, ctx.json())
    if patient_id is not None:
        ctx.service.log_check(ctx.access, patient_id, None)
    return fhir_response(findings.outcome(found))


ROUTES = [
    FhirRoute("/fhir/List/{id}/$check", "GET", list_check, "List", None, "check"),
    FhirRoute(
        "/fhir/List/$check", "POST", list_check_change, "List", None, "check-change", reads=True
    ),
]
