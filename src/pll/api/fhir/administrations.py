"""``MedicationAdministration``: what was given from the list, recorded by a nurse or care
worker of a unit the patient is registered with; corrected by a new version, read, searched
by patient and day (:class:`~pll.services.administrations.AdministrationService`; issue 17,
docs/administration.md "Recording what was given")."""

from __future__ import annotations

from datetime import date

import orjson
from starlette.responses import Response

from pll.api.fhir.common import (
    BY_PATIENT,
    PAGING,
    FhirRoute,
    SearchParam,
    if_match,
    patient_param,
    searchable,
    stored_response,
)
from pll.api.http import Ctx, fhir_response
from pll.domain.administration.keys import check_day
from pll.domain.errors import InvalidInput
from pll.fhir import bundles
from pll.services.administrations import AdministrationService

_R = "MedicationAdministration"

SEARCH_PARAMS: dict[str, list[SearchParam]] = {
    _R: [
        *BY_PATIENT,
        ("date", "date", "the local day (Europe/Oslo) the dose belongs to: YYYY-MM-DD"),
        *PAGING,
    ],
}


def administration_create(ctx: Ctx) -> Response:
    """``POST MedicationAdministration``: a dose given (completed) or not (not-done)."""
    stored = AdministrationService(ctx.service).record(ctx.access, ctx.json())
    rid = orjson.loads(stored.text)["id"]
    return fhir_response(
        stored.text,
        201,
        version=stored.version,
        updated=stored.updated,
        location=f"{ctx.base}/{_R}/{rid}/_history/{stored.version}",
    )


def administration_update(ctx: Ctx) -> Response:
    """``PUT MedicationAdministration/{id}`` with ``If-Match``: entered-in-error with a
    reason, or a note added (the effect of an as-needed dose)."""
    stored = AdministrationService(ctx.service).correct(
        ctx.access, ctx.path["id"], ctx.json(), if_match(ctx)
    )
    return stored_response(stored)


def administration_read(ctx: Ctx) -> Response:
    return stored_response(AdministrationService(ctx.service).read(ctx.access, ctx.path["id"]))


def administration_history(ctx: Ctx) -> Response:
    ctx.query(set())
    items = AdministrationService(ctx.service).history(ctx.access, ctx.path["id"])
    return fhir_response(
        bundles.history(ctx.base, _R, ctx.path["id"], items, len(items), str(ctx.request.url), None)
    )


def administration_search(ctx: Ctx) -> Response:
    """``GET MedicationAdministration?patient=<id>[&date=YYYY-MM-DD]``."""
    params = ctx.query(searchable(SEARCH_PARAMS[_R]))
    count, offset = ctx.paging(params)
    day = None
    if "date" in params:
        try:
            day = date.fromisoformat(params["date"])
        except ValueError:
            raise InvalidInput("date is a day: YYYY-MM-DD.", "date") from None
        check_day(day, "date")
    patient_id = patient_param(ctx, params)
    total, texts = (
        AdministrationService(ctx.service).search(ctx.access, patient_id, day, count, offset)
        if patient_id
        else (0, [])
    )
    self_url, next_url = ctx.page_urls(count, offset, total)
    return fhir_response(bundles.searchset(ctx.base, texts, total, self_url, next_url, _R))


_ONE = f"/fhir/{_R}/{{id}}"

ROUTES = [
    FhirRoute(f"/fhir/{_R}", "POST", administration_create, _R, "create"),
    FhirRoute(f"/fhir/{_R}", "GET", administration_search, _R, "search-type"),
    FhirRoute(_ONE, "GET", administration_read, _R, "read"),
    FhirRoute(_ONE, "PUT", administration_update, _R, "update"),
    FhirRoute(f"{_ONE}/_history", "GET", administration_history, _R, "history-instance"),
]
