"""``List``, the PLL itself: the current list (the requests PLL serves most, answered on the
event loop from the stored document), creation, versions and history, and ``$diff`` between
two versions. The operations that change the whole list are in :mod:`.list_state`.

The current-list reads may be served by a read replica (``PLL_READ_DATABASE_URL``); a client
that sends the list version it last wrote or read (``X-PLL-Min-Version``, or the list's ETag
in ``If-None-Match``) is never shown an older one (:func:`.common.min_version`)."""

from __future__ import annotations

from functools import lru_cache

from starlette.responses import Response

from pll.api.fhir.common import (
    BY_PATIENT,
    FhirRoute,
    SearchParam,
    min_version,
    patient_param,
    searchable,
    stored_response,
    version_param,
    written_list,
)
from pll.api.http import Ctx, check_id, fhir_response
from pll.domain.errors import InvalidInput, NotFound
from pll.fhir import bundles
from pll.fhir.validate import validate

SEARCH_PARAMS: dict[str, list[SearchParam]] = {
    "List": [
        *BY_PATIENT,
        ("_id", "token", "the List by id"),
        ("_include", "special", "List:item adds the entries and their prescriptions"),
    ],
}
OPERATIONS = {
    "diff": "GET List/{id}/$diff?from=V&to=W: the difference between two list versions",
}


def list_create(ctx: Ctx) -> Response:
    resource = validate(ctx.json(), "List")
    result = ctx.service.create_list(ctx.access, resource, ctx.reason())
    stored = written_list(result)
    return fhir_response(
        stored.text,
        201,
        version=stored.version,
        updated=stored.updated,
        location=f"{ctx.base}/List/{result.list_id}/_history/{stored.version}",
    )


async def list_read(ctx: Ctx) -> Response:
    current = await ctx.reads.current(
        ctx.access, list_id=ctx.path["id"], min_version=min_version(ctx)
    )
    if current is None:
        raise NotFound(f"List/{ctx.path['id']} does not exist.", "List.id")
    return fhir_response(current.body, version=current.version, updated=current.updated)


async def list_search(ctx: Ctx) -> Response:
    """``?patient=`` finds the PLL; ``&_include=List:item`` returns the whole current list
    (List, entries and their prescriptions) as stored: one keyed lookup."""
    params = ctx.query(searchable(SEARCH_PARAMS["List"]))
    include = params.get("_include")
    if include not in (None, "List:item"):
        raise InvalidInput("Only _include=List:item is supported.", "_include")
    keys = [k for k in ("_id", "patient", "subject", "patient.identifier") if k in params]
    if len(keys) != 1:
        raise InvalidInput(
            "Name the list by exactly one of _id, patient or patient.identifier.",
            keys[1] if keys else "patient",
        )
    document = bool(include)
    least = min_version(ctx)
    if "_id" in params:
        current = await ctx.reads.current(
            ctx.access,
            list_id=check_id(params["_id"], "_id"),
            document=document,
            min_version=least,
        )
    elif "patient.identifier" in params:
        system, _, value = params["patient.identifier"].rpartition("|")
        current = await ctx.reads.current(
            ctx.access, identifier=(system or None, value), document=document, min_version=least
        )
    else:
        current = await ctx.reads.current(
            ctx.access, patient_id=patient_param(ctx, params), document=document, min_version=least
        )
    if current is None:
        return fhir_response(bundles.searchset(ctx.base, [], 0, str(ctx.request.url), None, "List"))
    if include:
        # The stored document's fullUrls are relative; make them absolute for this server.
        body = current.body.replace(b'"fullUrl":"/', _full_url(ctx.base))
        return fhir_response(body, version=current.version)
    return fhir_response(
        bundles.searchset(ctx.base, [current.body.decode()], 1, str(ctx.request.url), None, "List")
    )


@lru_cache(maxsize=64)
def _full_url(base: str) -> bytes:
    return f'"fullUrl":"{base}/'.encode()


def list_history(ctx: Ctx) -> Response:
    params = ctx.query({"_count", "_offset", "_upto"})  # history takes paging only
    count, offset = ctx.paging(params)
    list_id = ctx.path["id"]
    total, items, upto = ctx.service.list_history(
        ctx.access, list_id, count, offset, ctx.upto(params)
    )
    self_url, next_url = ctx.page_urls(count, offset, total, _upto=upto)
    return fhir_response(
        bundles.history(ctx.base, "List", list_id, [s for s, _ in items], total, self_url, next_url)
    )


def list_vread(ctx: Ctx) -> Response:
    version = version_param(ctx.path["vid"])
    return stored_response(ctx.service.list_version(ctx.access, ctx.path["id"], version))


def list_diff(ctx: Ctx) -> Response:
    params = ctx.query({"from", "to"})
    if "from" not in params or "to" not in params:
        raise InvalidInput("$diff needs from=<version> and to=<version>.", "from")
    diff = ctx.service.diff(
        ctx.access,
        ctx.path["id"],
        version_param(params["from"], "from"),
        version_param(params["to"], "to"),
    )
    return fhir_response(bundles.diff_parameters(diff))


#: The current-list reads: matched before every other route, as these are the requests PLL
#: serves most.
CURRENT_READS = [
    FhirRoute("/fhir/List", "GET", list_search, "List", "search-type"),
    FhirRoute("/fhir/List/{id}", "GET", list_read, "List", "read"),
]
ROUTES = [
    FhirRoute("/fhir/List", "POST", list_create, "List", "create"),
    FhirRoute("/fhir/List/{id}/_history", "GET", list_history, "List", "history-instance"),
    FhirRoute("/fhir/List/{id}/_history/{vid}", "GET", list_vread, "List", "vread"),
    FhirRoute("/fhir/List/{id}/$diff", "GET", list_diff, "List", None, "diff"),
]
