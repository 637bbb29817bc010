"""e-multidose (:class:`~pll.services.multidose.MultidoseService`): the patient's
registration with a responsible doctor and multidose pharmacy, paper multidose, and the
pharmacy's side of the list: the packing basis, packing reports, proposals and the doctor's
decisions on them."""

from __future__ import annotations

from starlette.responses import Response

from pll.api.fhir.common import FhirRoute, optional_body
from pll.api.http import Ctx, fhir_response
from pll.services.multidose import MultidoseService

OPERATIONS = {
    "multidose": (
        "GET Patient/{id}/$multidose: the e-multidose registration (responsible doctor, "
        "multidose pharmacy) and paper multidose"
    ),
    "multidose-register": (
        "POST Patient/{id}/$multidose-register (M27) with Parameters pharmacy (a reference "
        "with the pharmacy's organisation number and name), pharmacyHer, reason, careUnit "
        "(the orgnr of the nursing home or home care that receives the bags): the calling "
        "doctor becomes the responsible multidose doctor; one pharmacy per patient"
    ),
    "multidose-end": (
        "POST Patient/{id}/$multidose-end with an optional reason: only the registered "
        "responsible doctor ends the registration"
    ),
    "paper-multidose": (
        "POST Patient/{id}/$paper-multidose with optional pharmacy and note: records paper "
        "multidose, shown as a risk on the list"
    ),
    "paper-multidose-end": "POST Patient/{id}/$paper-multidose-end: paper multidose has ended",
    "packing-basis": (
        "GET List/{id}/$packing-basis (M25.1): the list the multidose pharmacy packs from, "
        "whether it may be packed now (not while paused), each medicine marked packed or not"
    ),
    "packing-report": (
        "POST List/{id}/$packing-report (M25.3) with period, listVersion and one item per "
        "entry packed (entry, firstDose, lastDose, dispense): responsible pharmacy only; "
        "refused while the PLL is paused"
    ),
    "propose": (
        "POST List/{id}/$propose (M25.2) with items (action new|change|remove, entry "
        "MedicationStatement/<id>/_history/<v>, statement, reason): responsible pharmacy only"
    ),
    "proposals": "GET List/{id}/$proposals?status=pending|accepted|rejected: the proposals",
    "decide": (
        "POST List/{id}/$decide with decision (item, outcome accept|reject, reason): the "
        "responsible doctor; accepted items are one change of the list under their name"
    ),
}


def multidose_read(ctx: Ctx) -> Response:
    """``GET Patient/{id}/$multidose``: the e-multidose registration and paper multidose."""
    ctx.query(set())
    return fhir_response(MultidoseService(ctx.service).state(ctx.access, ctx.path["id"]))


def multidose_register(ctx: Ctx) -> Response:
    """``POST Patient/{id}/$multidose-register`` (M27): the caller becomes the responsible
    multidose doctor, with the named pharmacy."""
    answer = MultidoseService(ctx.service).register(
        ctx.access, ctx.path["id"], ctx.json(), ctx.reason()
    )
    return fhir_response(answer)


def multidose_end(ctx: Ctx) -> Response:
    answer = MultidoseService(ctx.service).end(
        ctx.access, ctx.path["id"], optional_body(ctx), ctx.reason()
    )
    return fhir_response(answer)


def paper_multidose(ctx: Ctx) -> Response:
    answer = MultidoseService(ctx.service).paper(ctx.access, ctx.path["id"], optional_body(ctx))
    return fhir_response(answer)


def paper_multidose_end(ctx: Ctx) -> Response:
    answer = MultidoseService(ctx.service).paper_end(
        ctx.access, ctx.path["id"], optional_body(ctx), ctx.reason()
    )
    return fhir_response(answer)


def packing_basis(ctx: Ctx) -> Response:
    """``GET List/{id}/$packing-basis`` (M25.1): what the multidose pharmacy packs from."""
    ctx.query(set())
    return fhir_response(MultidoseService(ctx.service).packing_basis(ctx.access, ctx.path["id"]))


def packing_report(ctx: Ctx) -> Response:
    """``POST List/{id}/$packing-report`` (M25.3): what the pharmacy packed, for which period."""
    answer = MultidoseService(ctx.service).packing_report(ctx.access, ctx.path["id"], ctx.json())
    return fhir_response(answer)


def propose(ctx: Ctx) -> Response:
    """``POST List/{id}/$propose`` (M25.2): the multidose pharmacy's proposal."""
    return fhir_response(
        MultidoseService(ctx.service).propose(ctx.access, ctx.path["id"], ctx.json())
    )


def proposals(ctx: Ctx) -> Response:
    params = ctx.query({"status"})
    return fhir_response(
        MultidoseService(ctx.service).proposals(ctx.access, ctx.path["id"], params.get("status"))
    )


def decide(ctx: Ctx) -> Response:
    """``POST List/{id}/$decide``: the responsible doctor accepts or rejects proposed items."""
    answer, result = MultidoseService(ctx.service).decide(
        ctx.access, ctx.path["id"], ctx.json(), ctx.reason()
    )
    headers = {"X-PLL-Findings": str(len(result.findings) if result else 0)}
    if result is not None and result.list_version is not None:
        headers["X-PLL-List-Version"] = str(result.list_version)
    return fhir_response(answer, headers=headers)


def _routes() -> list[FhirRoute]:
    patient, lst = "/fhir/Patient/{id}", "/fhir/List/{id}"
    return [
        FhirRoute(f"{patient}/$multidose", "GET", multidose_read, "Patient", None, "multidose"),
        FhirRoute(
            f"{patient}/$multidose-register",
            "POST",
            multidose_register,
            "Patient",
            None,
            "multidose-register",
        ),
        FhirRoute(
            f"{patient}/$multidose-end", "POST", multidose_end, "Patient", None, "multidose-end"
        ),
        FhirRoute(
            f"{patient}/$paper-multidose",
            "POST",
            paper_multidose,
            "Patient",
            None,
            "paper-multidose",
        ),
        FhirRoute(
            f"{patient}/$paper-multidose-end",
            "POST",
            paper_multidose_end,
            "Patient",
            None,
            "paper-multidose-end",
        ),
        FhirRoute(f"{lst}/$packing-basis", "GET", packing_basis, "List", None, "packing-basis"),
        FhirRoute(f"{lst}/$packing-report", "POST", packing_report, "List", None, "packing-report"),
        FhirRoute(f"{lst}/$propose", "POST", propose, "List", None, "propose"),
        FhirRoute(f"{lst}/$proposals", "GET", proposals, "List", None, "proposals"),
        FhirRoute(f"{lst}/$decide", "POST", decide, "List", None, "decide"),
    ]


ROUTES = _routes()
