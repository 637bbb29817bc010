"""Giving the medicines (issue 17): the daily administration schedule of a list
(:class:`~pll.services.administration.AdministrationService`)."""

from __future__ import annotations

from starlette.responses import Response

from pll.api.fhir.common import FhirRoute
from pll.api.http import Ctx, fhir_response
from pll.domain.administration import MAX_DAYS
from pll.domain.prescriptions import local_day
from pll.fhir.administration import PARAMETERS, schedule_range
from pll.services.administration import AdministrationService

OPERATIONS = {
    "administration-schedule": (
        "GET List/{id}/$administration-schedule?date=YYYY-MM-DD (or start=&end=, at most "
        f"{MAX_DAYS} days; none: today in Norway): the planned administrations of each day "
        "as a collection Bundle — the List at its version, an OperationOutcome when the list "
        "or an entry is paused, and one MedicationRequest (intent instance-order) per planned "
        "dose, as-needed dosage and 'må vurderes' item"
    ),
}


def administration_schedule(ctx: Ctx) -> Response:
    """``GET List/{id}/$administration-schedule``: the chart of one day or up to 14."""
    params = ctx.query(PARAMETERS)
    first, last = schedule_range(params, local_day(ctx.service.clock()))
    answer = AdministrationService(ctx.service).schedule(ctx.access, ctx.path["id"], first, last)
    return fhir_response(answer)


ROUTES = [
    FhirRoute(
        "/fhir/List/{id}/$administration-schedule",
        "GET",
        administration_schedule,
        "List",
        None,
        "administration-schedule",
    ),
]
