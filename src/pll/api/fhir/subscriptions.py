"""``Subscription``: rest-hook subscriptions to a patient's list or cases; create, read,
search the caller's own, and delete (ended, kept with status ``off``)
(:class:`~pll.services.subscriptions.Subscriptions`)."""

from __future__ import annotations

from starlette.responses import Response

from pll.api.fhir.common import FhirRoute
from pll.api.http import Ctx, fhir_response
from pll.fhir import bundles
from pll.services.subscriptions import Subscriptions


def subscription_create(ctx: Ctx) -> Response:
    created = Subscriptions(ctx.service).create(ctx.access, ctx.json())
    return fhir_response(created, 201, location=f"{ctx.base}/Subscription/{created['id']}")


def subscription_read(ctx: Ctx) -> Response:
    return fhir_response(Subscriptions(ctx.service).read(ctx.access, ctx.path["id"]))


def subscription_search(ctx: Ctx) -> Response:
    ctx.query(set())
    items = Subscriptions(ctx.service).search(ctx.access)
    return fhir_response(
        bundles.search_bundle(ctx.base, items, len(items), str(ctx.request.url), None)
    )


def subscription_delete(ctx: Ctx) -> Response:
    """End a subscription: kept with status ``off``, no longer delivered to."""
    return fhir_response(Subscriptions(ctx.service).end(ctx.access, ctx.path["id"]))


ROUTES = [
    FhirRoute("/fhir/Subscription", "POST", subscription_create, "Subscription", "create"),
    FhirRoute("/fhir/Subscription", "GET", subscription_search, "Subscription", "search-type"),
    FhirRoute("/fhir/Subscription/{id}", "GET", subscription_read, "Subscription", "read"),
    FhirRoute("/fhir/Subscription/{id}", "DELETE", subscription_delete, "Subscription", "delete"),
]
