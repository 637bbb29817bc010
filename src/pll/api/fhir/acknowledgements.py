"""Acknowledging a list's changes for a care unit
(:class:`~pll.services.acknowledgements.AcknowledgementService`, issue 17,
docs/administration.md "Acknowledging changes")."""

from __future__ import annotations

from starlette.responses import Response

from pll.api.fhir.common import FhirRoute
from pll.api.http import Ctx, fhir_response
from pll.services.acknowledgements import AcknowledgementService

OPERATIONS = {
    "acknowledge-changes": (
        "POST List/{id}/$acknowledge-changes with Parameters version (valueInteger): a nurse "
        "of a care unit the patient is registered with acknowledges, for the unit, the "
        "list's changes that touch giving up to that version; answers Parameters with the "
        "changes taken in and those still unacknowledged (written false: the version was "
        "already acknowledged, nothing written)"
    ),
}


def acknowledge_changes(ctx: Ctx) -> Response:
    """``POST List/{id}/$acknowledge-changes``."""
    answer, _ = AcknowledgementService(ctx.service).acknowledge(
        ctx.access, ctx.path["id"], ctx.json()
    )
    return fhir_response(answer)


ROUTES = [
    FhirRoute(
        "/fhir/List/{id}/$acknowledge-changes",
        "POST",
        acknowledge_changes,
        "List",
        None,
        "acknowledge-changes",
    ),
]
