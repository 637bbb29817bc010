"""Care units (:class:`~pll.services.care_units.CareUnitService`): a nursing home or
home-care unit registers the patients it gives medicines to, and ends that registration
(issue 17, docs/administration.md)."""

from __future__ import annotations

from starlette.responses import Response

from pll.api.fhir.common import FhirRoute
from pll.api.http import Ctx, fhir_response
from pll.services.care_units import CareUnitService

OPERATIONS = {
    "care-unit-register": (
        "POST Patient/{id}/$care-unit-register with Parameters organization (valueIdentifier "
        "with the care unit's organisation number), kind (valueCode sykehjem, hjemmetjeneste "
        "or omsorgsbolig) and optional name: a nurse or doctor of that unit (the "
        "organisation in their token) registers the patient with it; answers the "
        "EpisodeOfCare (201 when made, 200 when the patient was already registered there "
        "with the same kind; another kind is 409)"
    ),
    "care-unit-end": (
        "POST Patient/{id}/$care-unit-end with Parameters organization: a nurse or doctor "
        "of that unit ends the patient's registration with it; answers the finished "
        "EpisodeOfCare (409 when there is no open registration)"
    ),
}


def care_unit_register(ctx: Ctx) -> Response:
    """``POST Patient/{id}/$care-unit-register``."""
    answer = CareUnitService(ctx.service).register(ctx.access, ctx.path["id"], ctx.json())
    return fhir_response(answer.episode, 201 if answer.changed else 200)


def care_unit_end(ctx: Ctx) -> Response:
    """``POST Patient/{id}/$care-unit-end``."""
    answer = CareUnitService(ctx.service).end(ctx.access, ctx.path["id"], ctx.json())
    return fhir_response(answer.episode)


_PATIENT = "/fhir/Patient/{id}"

ROUTES = [
    FhirRoute(
        f"{_PATIENT}/$care-unit-register",
        "POST",
        care_unit_register,
        "Patient",
        None,
        "care-unit-register",
    ),
    FhirRoute(
        f"{_PATIENT}/$care-unit-end", "POST", care_unit_end, "Patient", None, "care-unit-end"
    ),
]
