"""``Medication``: drug lookup in the FEST catalogue in use, by name (ranked as the
prescribing page ranks), code or substance, paged; and read by id
(:class:`~pll.services.catalogue.Catalogue`)."""

from __future__ import annotations

from starlette.responses import Response

from pll.api.fhir.common import PAGING, FhirRoute, SearchParam, searchable
from pll.api.http import Ctx, fhir_response
from pll.fhir import bundles, outcome
from pll.services.catalogue import MATCHES, Catalogue

SEARCH_PARAMS: dict[str, list[SearchParam]] = {
    "Medication": [
        (
            "name",
            "string",
            "each word typed begins a word of the name (case and accents ignored; % and _ "
            "are characters, not wildcards). Best first, as the prescribing page ranks: the "
            "name as typed, then names that begin with it, then names whose first word begins "
            "with the first word typed, then the typed words anywhere in the name; within "
            "each, names holding more of the typed words whole first (a strength typed ranks "
            "that strength before others that begin with it: 100 before 1000); then brands, "
            "generics and packages, by name. Without name, results are by name. "
            f"At most {MATCHES} drugs are read per parameter; past that the Bundle has no "
            "total and an OperationOutcome entry says to type more",
        ),
        ("code", "token", "ATC code at any level, a package's Varenr or a FEST id"),
        ("substance", "string", "an active substance: name prefix or FEST id"),
        *PAGING,
    ],
}


def medication_search(ctx: Ctx) -> Response:
    params = ctx.query(searchable(SEARCH_PARAMS["Medication"]))
    count, offset = ctx.paging(params)
    found = Catalogue(ctx.service.db).search_page(
        name=params.get("name"),
        code=params.get("code"),
        substance=params.get("substance"),
        count=count,
        offset=offset,
    )
    self_url, next_url = ctx.page_urls(count, offset, found.total)
    note = None
    if found.more:
        note = outcome.outcome(
            outcome.issue(
                f"More than {MATCHES} drugs match {found.more}; only the first {MATCHES} "
                f"read are counted and ranked. Type more of the {found.more}.",
                found.more,
                code="too-costly",
                severity="warning",
            )
        )
    return fhir_response(
        bundles.search_bundle(
            ctx.base,
            found.resources,
            None if found.more else found.total,
            self_url,
            next_url,
            note,
        )
    )


def medication_read(ctx: Ctx) -> Response:
    return fhir_response(Catalogue(ctx.service.db).read(ctx.path["id"]))


ROUTES = [
    FhirRoute("/fhir/Medication", "GET", medication_search, "Medication", "search-type"),
    FhirRoute("/fhir/Medication/{id}", "GET", medication_read, "Medication", "read"),
]
