"""SFM Basis: ``Patient/$getMedication`` and ``Patient/$sendMedication``, the list as an SFM
document Bundle and the doctor's complete list sent back the same way
(:class:`~pll.services.sfm.SfmService`)."""

from __future__ import annotations

from starlette.responses import Response

from pll.api.fhir.common import FhirRoute
from pll.api.http import Ctx, fhir_response
from pll.services.sfm import SfmService

OPERATIONS = {
    "getMedication": (
        "POST Patient/$getMedication (SFM Basis): Parameters patient (a Patient with a "
        "fødselsnummer or D-nummer), historyTimestamp, SamtykkeKjernejournal (the access "
        "basis); returns the list as an SFM document Bundle in the parameter 'medication'"
    ),
    "sendMedication": (
        "POST Patient/$sendMedication (SFM Basis): Parameters 'medication' with the doctor's "
        "complete list as a document Bundle whose Composition.relatesTo names the client's "
        "latest $getMedication (under 4 hours old); every statement and head of chain of that "
        "read must be in it. Returns recallCount, prescriptionCount, "
        "prescriptionOperationResult and PllResult"
    ),
}


def get_medication(ctx: Ctx) -> Response:
    """``POST Patient/$getMedication``: the list as an SFM Basis document."""
    sfm = SfmService(ctx.service)  # the primary's (services.sfm.get_medication)
    return fhir_response(sfm.get_medication(ctx.access, ctx.json()))


def send_medication(ctx: Ctx) -> Response:
    """``POST Patient/$sendMedication``: the doctor's complete list, as SFM Basis sends it."""
    answer, result = SfmService(ctx.service).send_medication(ctx.access, ctx.json(), ctx.reason())
    headers = {}
    if result is not None:
        headers["X-PLL-Findings"] = str(len(result.findings))
        if result.list_version is not None:
            headers["X-PLL-List-Version"] = str(result.list_version)
    return fhir_response(answer, headers=headers)


ROUTES = [
    FhirRoute(
        "/fhir/Patient/$getMedication",
        "POST",
        get_medication,
        "Patient",
        None,
        "getMedication",
        reads=True,
    ),
    FhirRoute(
        "/fhir/Patient/$sendMedication",
        "POST",
        send_medication,
        "Patient",
        None,
        "sendMedication",
    ),
]
