"""``Patient``: register, read, and find by fødselsnummer or D-nummer."""

from __future__ import annotations

from starlette.responses import Response

from pll.api.fhir.common import FhirRoute, SearchParam, searchable
from pll.api.http import Ctx, fhir_response
from pll.domain.errors import InvalidInput
from pll.fhir import bundles
from pll.fhir.validate import validate

SEARCH_PARAMS: dict[str, list[SearchParam]] = {
    "Patient": [("identifier", "token", "fødselsnummer or D-nummer: <system>|<value>")],
}


def patient_create(ctx: Ctx) -> Response:
    resource = validate(ctx.json(), "Patient")
    patient, created = ctx.service.register_patient(ctx.access, resource)
    version = int(patient["meta"]["versionId"])
    return fhir_response(
        patient,
        201 if created else 200,
        version=version,
        location=f"{ctx.base}/Patient/{patient['id']}/_history/{version}" if created else None,
    )


def patient_read(ctx: Ctx) -> Response:
    patient = ctx.service.read_patient(ctx.access, ctx.path["id"])
    return fhir_response(patient, version=int(patient["meta"]["versionId"]))


def patient_search(ctx: Ctx) -> Response:
    params = ctx.query(searchable(SEARCH_PARAMS["Patient"]))
    if "identifier" not in params:
        raise InvalidInput(
            "Search patients by identifier=<system>|<fødselsnummer or D-nummer>.", "identifier"
        )
    system, _, value = params["identifier"].rpartition("|")
    found = ctx.service.find_patient(ctx.access, system or None, value)
    items = [found] if found else []
    return fhir_response(
        bundles.search_bundle(ctx.base, items, len(items), str(ctx.request.url), None)
    )


ROUTES = [
    FhirRoute("/fhir/Patient", "POST", patient_create, "Patient", "create"),
    FhirRoute("/fhir/Patient", "GET", patient_search, "Patient", "search-type"),
    FhirRoute("/fhir/Patient/{id}", "GET", patient_read, "Patient", "read"),
]
