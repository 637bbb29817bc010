"""``Consent``: the patient's blocks of named health workers; create (block), read, search
by patient, and delete (unblock) (:class:`~pll.services.access.PatientAccess`)."""

from __future__ import annotations

from starlette.responses import Response

from pll.api.fhir.common import BY_PATIENT, FhirRoute, SearchParam, patient_param, searchable
from pll.api.http import Ctx, fhir_response
from pll.auth.access import Verb
from pll.fhir import bundles
from pll.services.access import PatientAccess

SEARCH_PARAMS: dict[str, list[SearchParam]] = {"Consent": BY_PATIENT}


def consent_create(ctx: Ctx) -> Response:
    stored = PatientAccess(ctx.service).block(ctx.access, ctx.json())
    return fhir_response(
        stored, 201, version=1, location=f"{ctx.base}/Consent/{stored['id']}/_history/1"
    )


def consent_read(ctx: Ctx) -> Response:
    return fhir_response(PatientAccess(ctx.service).read_block(ctx.access, ctx.path["id"]))


def consent_delete(ctx: Ctx) -> Response:
    """Unblock: the Consent becomes ``inactive`` and stays in the patient's record."""
    return fhir_response(PatientAccess(ctx.service).unblock(ctx.access, ctx.path["id"]))


def consent_search(ctx: Ctx) -> Response:
    params = ctx.query(searchable(SEARCH_PARAMS["Consent"]))
    patient_id = patient_param(ctx, params, Verb.OWN)
    items = PatientAccess(ctx.service).blocks(ctx.access, patient_id) if patient_id else []
    return fhir_response(
        bundles.search_bundle(ctx.base, items, len(items), str(ctx.request.url), None)
    )


ROUTES = [
    FhirRoute("/fhir/Consent", "POST", consent_create, "Consent", "create"),
    FhirRoute("/fhir/Consent", "GET", consent_search, "Consent", "search-type"),
    FhirRoute("/fhir/Consent/{id}", "GET", consent_read, "Consent", "read"),
    FhirRoute("/fhir/Consent/{id}", "DELETE", consent_delete, "Consent", "delete"),
]
