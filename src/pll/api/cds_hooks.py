"""CDS Hooks (https://cds-hooks.hl7.org/2.0/): PLL's decision support inside a journal system,
before it sends a change. One service answers ``order-select`` and ``order-sign``: the draft
orders (``context.draftOrders``, MedicationRequests) are checked against the patient's list
and drug reactions, and each finding comes back as a card.

The caller authenticates and states its basis as for the FHIR API; ``context.patientId`` is
PLL's Patient id.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse, Response

from pll.api.http import Ctx, check_id
from pll.domain.errors import InvalidInput
from pll.fhir.findings import cards
from pll.services.transaction import within_limit

SERVICE_ID = "pll-medication-check"
HOOKS = ("order-select", "order-sign")


async def discovery(_: Any) -> Response:
    """``GET /cds-services``: what this server offers (CDS Hooks §Discovery)."""
    return JSONResponse(
        {
            "services": [
                {
                    "hook": hook,
                    "id": SERVICE_ID,
                    "title": "PLL legemiddelkontroll",
                    "description": (
                        "Interaksjoner (FEST), dobbeltforskrivning, CAVE og legemidler som ikke "
                        "lenger er i FEST, for utkast til forskrivninger mot pasientens PLL."
                    ),
                }
                for hook in HOOKS
            ]
        }
    )


def _drafts(context: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    bundle = context.get("draftOrders") or {}
    entries = bundle.get("entry") if isinstance(bundle, dict) else None
    if not isinstance(entries, list) or not entries:
        raise InvalidInput("context.draftOrders must be a Bundle of MedicationRequests.")
    within_limit(entries, "context.draftOrders.entry")
    drafts: list[tuple[str, dict[str, Any]]] = []
    for i, item in enumerate(entries):
        resource = item.get("resource") if isinstance(item, dict) else None
        if not isinstance(resource, dict) or resource.get("resourceType") != "MedicationRequest":
            raise InvalidInput(
                "Each draft order is a MedicationRequest.",
                f"context.draftOrders.entry[{i}].resource",
            )
        concept = resource.get("medicationCodeableConcept")
        if not isinstance(concept, dict):
            raise InvalidInput(
                "A draft order names its medicine in medicationCodeableConcept.",
                f"context.draftOrders.entry[{i}].resource.medicationCodeableConcept",
            )
        draft_id = str(resource.get("id") or f"draft-{i}")
        if any(draft_id == seen for seen, _ in drafts):
            raise InvalidInput(
                f"Draft order id {draft_id[:64]!r} is given twice.",
                f"context.draftOrders.entry[{i}].resource.id",
            )
        drafts.append((draft_id, {"medicationCodeableConcept": concept}))
    return drafts


def service(ctx: Ctx) -> Response:
    """``POST /cds-services/pll-medication-check``: cards for the draft orders."""
    request = ctx.json()
    if not isinstance(request, dict) or request.get("hook") not in HOOKS:
        raise InvalidInput(f"hook must be one of {', '.join(HOOKS)}.", "hook")
    context = request.get("context")
    if not isinstance(context, dict) or not isinstance(context.get("patientId"), str):
        raise InvalidInput("context.patientId (PLL's Patient id) is required.", "context")
    patient_id = check_id(context["patientId"].removeprefix("Patient/"), "context.patientId")
    found = ctx.service.check_drafts(ctx.access, patient_id, _drafts(context))
    return JSONResponse({"cards": cards(found, "PLL")})
