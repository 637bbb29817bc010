"""``Provenance``: who changed a List, entry or prescription, when and why; read by id, and
searched by ``target`` in pages."""

from __future__ import annotations

from starlette.responses import Response

from pll.api.fhir.common import PAGING, FhirRoute, SearchParam, searchable
from pll.api.http import Ctx, fhir_response
from pll.domain.errors import InvalidInput
from pll.fhir import bundles

SEARCH_PARAMS: dict[str, list[SearchParam]] = {
    "Provenance": [
        ("target", "reference", "changes that wrote a List, entry or prescription (or a version)"),
        *PAGING,
        ("_upto", "number", "the newest list version the pages cover (set by next links)"),
    ],
}


def provenance_search(ctx: Ctx) -> Response:
    params = ctx.query(searchable(SEARCH_PARAMS["Provenance"]))
    if "target" not in params:
        raise InvalidInput(
            "Search Provenance by target=List/<id> or MedicationStatement/<id>.", "target"
        )
    count, offset = ctx.paging(params)
    total, items, upto = ctx.service.provenance(
        ctx.access, params["target"], count, offset, ctx.upto(params)
    )
    self_url, next_url = ctx.page_urls(count, offset, total, _upto=upto)
    return fhir_response(bundles.search_bundle(ctx.base, items, total, self_url, next_url))


def provenance_read(ctx: Ctx) -> Response:
    return fhir_response(ctx.service.read_provenance(ctx.access, ctx.path["id"]))


ROUTES = [
    FhirRoute("/fhir/Provenance", "GET", provenance_search, "Provenance", "search-type"),
    FhirRoute("/fhir/Provenance/{id}", "GET", provenance_read, "Provenance", "read"),
]
