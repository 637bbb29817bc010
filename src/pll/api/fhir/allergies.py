"""``AllergyIntolerance``: the patient's drug reactions (CAVE), versioned like the list's
entries; a recorded reaction is checked against the list, and its findings are answered as
for list changes (:class:`~pll.services.allergies.Allergies`)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from pll.api.fhir.common import (
    BY_PATIENT,
    FhirRoute,
    SearchParam,
    if_match,
    patient_param,
    searchable,
    stored_response,
)
from pll.api.http import Ctx, fhir_response
from pll.fhir import bundles, findings
from pll.services.allergies import Allergies
from pll.services.base import Stored

SEARCH_PARAMS: dict[str, list[SearchParam]] = {"AllergyIntolerance": BY_PATIENT}


def _allergy_written(ctx: Ctx, stored: Stored, found: list[Any], status: int) -> Response:
    """A recorded reaction; CAVE conflicts with the list as for list changes."""
    body: str | dict[str, Any] = stored.text
    if "return=operationoutcome" in ctx.request.headers.get("prefer", "").lower():
        body = findings.outcome(found)
    rid = orjson.loads(stored.text)["id"]
    return fhir_response(
        body,
        status,
        version=stored.version,
        updated=stored.updated,
        location=f"{ctx.base}/AllergyIntolerance/{rid}/_history/{stored.version}"
        if status == 201
        else None,
        headers={"X-PLL-Findings": str(len(found))},
    )


def allergy_create(ctx: Ctx) -> Response:
    stored, found = Allergies(ctx.service).create(ctx.access, ctx.json())
    return _allergy_written(ctx, stored, found, 201)


def allergy_update(ctx: Ctx) -> Response:
    stored, found = Allergies(ctx.service).update(
        ctx.access, ctx.path["id"], ctx.json(), if_match(ctx)
    )
    return _allergy_written(ctx, stored, found, 200)


def allergy_read(ctx: Ctx) -> Response:
    return stored_response(Allergies(ctx.service).read(ctx.access, ctx.path["id"]))


def allergy_history(ctx: Ctx) -> Response:
    ctx.query(set())
    items = Allergies(ctx.service).history(ctx.access, ctx.path["id"])
    return fhir_response(
        bundles.history(
            ctx.base,
            "AllergyIntolerance",
            ctx.path["id"],
            items,
            len(items),
            str(ctx.request.url),
            None,
        )
    )


def allergy_search(ctx: Ctx) -> Response:
    params = ctx.query(searchable(SEARCH_PARAMS["AllergyIntolerance"]))
    patient_id = patient_param(ctx, params)
    items = Allergies(ctx.service).search(ctx.access, patient_id) if patient_id else []
    return fhir_response(
        bundles.search_bundle(ctx.base, items, len(items), str(ctx.request.url), None)
    )


ROUTES = [
    FhirRoute("/fhir/AllergyIntolerance", "POST", allergy_create, "AllergyIntolerance", "create"),
    FhirRoute(
        "/fhir/AllergyIntolerance", "GET", allergy_search, "AllergyIntolerance", "search-type"
    ),
    FhirRoute("/fhir/AllergyIntolerance/{id}", "GET", allergy_read, "AllergyIntolerance", "read"),
    FhirRoute(
        "/fhir/AllergyIntolerance/{id}", "PUT", allergy_update, "AllergyIntolerance", "update"
    ),
    FhirRoute(
        "/fhir/AllergyIntolerance/{id}/_history",
        "GET",
        allergy_history,
        "AllergyIntolerance",
        "history-instance",
    ),
]
