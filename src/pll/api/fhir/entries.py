"""``MedicationStatement`` (the list's entries) and ``MedicationRequest`` (prescriptions):
the same versioned REST for both (create, read, vread, history, update under ``If-Match``,
search by patient); every write is one checked change of the list. ``LIST_RESOURCES`` are
these two types."""

from __future__ import annotations

from typing import Any

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
    version_param,
)
from pll.api.http import Ctx, Handler, fhir_response
from pll.fhir import bundles, findings
from pll.fhir.validate import validate
from pll.services.lists import ChangeResult, Written

LIST_RESOURCES = ("MedicationStatement", "MedicationRequest")
SEARCH_PARAMS: dict[str, list[SearchParam]] = {
    "MedicationStatement": [*BY_PATIENT, *PAGING],
    "MedicationRequest": [*BY_PATIENT, *PAGING],
}


def _written(ctx: Ctx, result: ChangeResult, written: Written) -> Response:
    """The accepted change. Decision-support findings (rule 6) are counted in
    ``X-PLL-Findings`` and are the body itself when the client asks for them with
    ``Prefer: return=OperationOutcome`` (https://hl7.org/fhir/R4/http.html#ops)."""
    status = 201 if written.created else 200
    headers = {"X-PLL-List-Version": str(result.list_version)} if result.list_version else {}
    headers["X-PLL-Findings"] = str(len(result.findings))
    body: dict[str, Any] = written.resource
    if "return=operationoutcome" in ctx.request.headers.get("prefer", "").lower():
        body = findings.outcome(result.findings)
    return fhir_response(
        body,
        status,
        version=written.version,
        location=f"{ctx.base}/{written.rtype}/{written.id}/_history/{written.version}"
        if written.created
        else None,
        headers=headers,
    )


def _resource_handlers(rtype: str) -> dict[str, Handler]:
    def create(ctx: Ctx) -> Response:
        resource = validate(ctx.json(), rtype)
        result = ctx.service.create_resource(ctx.access, rtype, resource, ctx.reason())
        return _written(
            ctx, result, next(w for w in result.written if w.rtype == rtype and w.created)
        )

    def update(ctx: Ctx) -> Response:
        rid = ctx.path["id"]
        resource = validate(ctx.json(), rtype)
        result = ctx.service.update_resource(
            ctx.access, rtype, rid, resource, if_match(ctx), ctx.reason()
        )
        written = next(w for w in result.written if w.rtype == rtype and w.id == rid)
        return _written(ctx, result, written)

    def read(ctx: Ctx) -> Response:
        return stored_response(ctx.service.read_resource(ctx.access, rtype, ctx.path["id"]))

    def vread(ctx: Ctx) -> Response:
        return stored_response(
            ctx.service.resource_version(
                ctx.access, rtype, ctx.path["id"], version_param(ctx.path["vid"])
            )
        )

    def history(ctx: Ctx) -> Response:
        ctx.query(set())
        items = ctx.service.resource_history(ctx.access, rtype, ctx.path["id"])
        return fhir_response(
            bundles.history(
                ctx.base, rtype, ctx.path["id"], items, len(items), str(ctx.request.url), None
            )
        )

    def search(ctx: Ctx) -> Response:
        params = ctx.query(searchable(SEARCH_PARAMS[rtype]))
        count, offset = ctx.paging(params)
        patient_id = patient_param(ctx, params)
        total, texts = (
            ctx.service.search_resources(ctx.access, rtype, patient_id, count, offset)
            if patient_id
            else (0, [])
        )
        self_url, next_url = ctx.page_urls(count, offset, total)
        return fhir_response(bundles.searchset(ctx.base, texts, total, self_url, next_url, rtype))

    handlers: dict[str, Handler] = {
        "create": create,
        "update": update,
        "read": read,
        "vread": vread,
        "history-instance": history,
        "search-type": search,
    }
    for name, fn in handlers.items():
        fn.__name__ = f"{rtype}_{name}"
    return handlers


def _routes() -> list[FhirRoute]:
    routes: list[FhirRoute] = []
    for rtype in LIST_RESOURCES:
        h = _resource_handlers(rtype)
        routes += [
            FhirRoute(f"/fhir/{rtype}", "POST", h["create"], rtype, "create"),
            FhirRoute(f"/fhir/{rtype}", "GET", h["search-type"], rtype, "search-type"),
            FhirRoute(f"/fhir/{rtype}/{{id}}", "GET", h["read"], rtype, "read"),
            FhirRoute(f"/fhir/{rtype}/{{id}}", "PUT", h["update"], rtype, "update"),
            FhirRoute(
                f"/fhir/{rtype}/{{id}}/_history",
                "GET",
                h["history-instance"],
                rtype,
                "history-instance",
            ),
            FhirRoute(f"/fhir/{rtype}/{{id}}/_history/{{vid}}", "GET", h["vread"], rtype, "vread"),
        ]
    return routes


ROUTES = _routes()
