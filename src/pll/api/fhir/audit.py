"""``AuditEvent``: the patient's access log, searched by patient
(:class:`~pll.services.access.PatientAccess`)."""

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
from pll.auth.access import Verb
from pll.fhir import bundles
from pll.services.access import PatientAccess

SEARCH_PARAMS: dict[str, list[SearchParam]] = {"AuditEvent": [*BY_PATIENT, *PAGING]}


def audit_event_search(ctx: Ctx) -> Response:
    """The patient's access log: who read or changed their data, when, on what basis."""
    params = ctx.query(searchable(SEARCH_PARAMS["AuditEvent"]))
    count, offset = ctx.paging(params)
    patient_id = patient_param(ctx, params, Verb.OWN)
    total, items = (
        PatientAccess(ctx.service).access_log(ctx.access, patient_id, count, offset)
        if patient_id
        else (0, [])
    )
    self_url, next_url = ctx.page_urls(count, offset, total)
    return fhir_response(bundles.search_bundle(ctx.base, items, total, self_url, next_url))


ROUTES = [
    FhirRoute("/fhir/AuditEvent", "GET", audit_event_search, "AuditEvent", "search-type"),
]
