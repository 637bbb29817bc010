"""``MedicationDispense``: a pharmacy registers what it handed out on a prescription (M10);
read by id, searched by patient (:class:`~pll.services.dispensing.DispensingService`)."""

from __future__ import annotations

from starlette.responses import Response

from pll.api.fhir.common import (
    BY_PATIENT,
    PAGING,
    FhirRoute,
    SearchParam,
    patient_param,
    searchable,
)
from pll.api.http import Ctx, fhir_response
from pll.fhir import bundles
from pll.fhir.validate import validate
from pll.services.dispensing import DispensingService

SEARCH_PARAMS: dict[str, list[SearchParam]] = {
    "MedicationDispense": [*BY_PATIENT, *PAGING],
}


def dispense_create(ctx: Ctx) -> Response:
    resource = validate(ctx.json(), "MedicationDispense")
    stored, version = DispensingService(ctx.service).dispense(ctx.access, resource)
    return fhir_response(
        stored,
        201,
        version=1,
        location=f"{ctx.base}/MedicationDispense/{stored['id']}/_history/1",
        headers={"X-PLL-List-Version": str(version)},
    )


def dispense_read(ctx: Ctx) -> Response:
    return fhir_response(DispensingService(ctx.service).read(ctx.access, ctx.path["id"]), version=1)


def dispense_search(ctx: Ctx) -> Response:
    params = ctx.query(searchable(SEARCH_PARAMS["MedicationDispense"]))
    count, offset = ctx.paging(params)
    patient_id = patient_param(ctx, params)
    total, items = (
        DispensingService(ctx.service).search(ctx.access, patient_id, count, offset)
        if patient_id
        else (0, [])
    )
    self_url, next_url = ctx.page_urls(count, offset, total)
    return fhir_response(bundles.search_bundle(ctx.base, items, total, self_url, next_url))


ROUTES = [
    FhirRoute("/fhir/MedicationDispense", "POST", dispense_create, "MedicationDispense", "create"),
    FhirRoute(
        "/fhir/MedicationDispense", "GET", dispense_search, "MedicationDispense", "search-type"
    ),
    FhirRoute("/fhir/MedicationDispense/{id}", "GET", dispense_read, "MedicationDispense", "read"),
]
