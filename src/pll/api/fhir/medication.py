"""``Medication``: drug lookup in the FEST catalogue in use, by name, code or substance, and
read by id (:class:`~pll.services.catalogue.Catalogue`)."""

from __future__ import annotations

from starlette.responses import Response

from pll.api.fhir.common import FhirRoute, SearchParam, searchable
from pll.api.http import Ctx, fhir_response
from pll.fhir import bundles
from pll.services.catalogue import Catalogue

SEARCH_PARAMS: dict[str, list[SearchParam]] = {
    "Medication": [
        ("name", "string", "a word of the name starts with this (case and accents ignored)"),
        ("code", "token", "ATC code at any level, a package's Varenr or a FEST id"),
        ("substance", "string", "an active substance: name prefix or FEST id"),
        ("_count", "number", "how many, 1-500 (default 50)"),
    ],
}


def medication_search(ctx: Ctx) -> Response:
    params = ctx.query(searchable(SEARCH_PARAMS["Medication"]))
    count, _ = ctx.paging(params)
    items = Catalogue(ctx.service.db).search(
        name=params.get("name"),
        code=params.get("code"),
        substance=params.get("substance"),
        count=count,
    )
    return fhir_response(
        bundles.search_bundle(ctx.base, items, len(items), str(ctx.request.url), None)
    )


def medication_read(ctx: Ctx) -> Response:
    return fhir_response(Catalogue(ctx.service.db).read(ctx.path["id"]))


ROUTES = [
    FhirRoute("/fhir/Medication", "GET", medication_search, "Medication", "search-type"),
    FhirRoute("/fhir/Medication/{id}", "GET", medication_read, "Medication", "read"),
]
