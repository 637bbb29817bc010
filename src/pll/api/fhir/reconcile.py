"""``List/{id}/$compare`` and ``List/{id}/$reconcile``: the differences between the list and
another source, and taking the accepted ones as one change that confirms the list
(:class:`~pll.services.reconcile.Reconciliation`)."""

from __future__ import annotations

from starlette.responses import Response

from pll.api.fhir.common import FhirRoute, if_match, written_list
from pll.api.http import Ctx, fhir_response
from pll.fhir import reconcile as reconcile_fhir
from pll.services.reconcile import Reconciliation

OPERATIONS = {
    "compare": (
        "POST List/{id}/$compare with Parameters source (dispensing | patient | discharge | "
        "other) and, but for dispensing, resource (a Bundle or List of MedicationStatement): "
        "the differences between the list and that source, each with an id"
    ),
    "reconcile": (
        "POST List/{id}/$reconcile with If-Match (the list version compared), the same source, "
        "accept (difference ids) and reason: takes the accepted differences and confirms the "
        "list, as one change"
    ),
}


def list_compare(ctx: Ctx) -> Response:
    """``POST List/{id}/$compare``: the differences between the list and another source (the
    dispensing history, or a list given as a Bundle or List of MedicationStatement)."""
    source = reconcile_fhir.compare_request(ctx.json())
    found = Reconciliation(ctx.service).compare(ctx.access, ctx.path["id"], source)
    answer = reconcile_fhir.comparison_answer(
        found.list_id, found.list_version, found.origin, list(found.differences)
    )
    return fhir_response(answer, headers={"X-PLL-List-Version": str(found.list_version)})


def list_reconcile(ctx: Ctx) -> Response:
    """``POST List/{id}/$reconcile`` with ``If-Match``: take the accepted differences and
    confirm the list, as one change; answers with the List as ``$confirm`` does."""
    source, accepted, reason = reconcile_fhir.reconcile_request(ctx.json())
    done = Reconciliation(ctx.service).resolve(
        ctx.access, ctx.path["id"], source, accepted, if_match(ctx), reason or ctx.reason()
    )
    stored = written_list(done.result)
    headers = {
        "X-PLL-List-Version": str(stored.version),
        "X-PLL-Findings": str(len(done.result.findings)),
    }
    return fhir_response(
        stored.text, version=stored.version, updated=stored.updated, headers=headers
    )


ROUTES = [
    FhirRoute(
        "/fhir/List/{id}/$compare", "POST", list_compare, "List", None, "compare", reads=True
    ),
    FhirRoute("/fhir/List/{id}/$reconcile", "POST", list_reconcile, "List", None, "reconcile"),
]
