"""A pharmacy's ``MedicationDispense`` (https://hl7.org/fhir/R4/medicationdispense.html) as PLL
keeps it: what was handed out, how much, when, on which prescription, by which pharmacy."""

from __future__ import annotations

import re
from typing import Any

from pll.domain.errors import InvalidInput
from pll.domain.model import Author
from pll.fhir import systems

_RX = re.compile(r"MedicationRequest/(?P<id>[A-Za-z0-9\-.]{1,64})")
_WHERE = "MedicationDispense"


def dispense_content(
    resource: dict[str, Any], patient_id: str, pharmacy: Author
) -> tuple[dict[str, Any], str]:
    """The content of a validated dispensing for ``patient_id`` and the id of the
    prescription it was made on. The server names the patient and the pharmacy (from the
    caller's token); what the pharmacy said is kept as it said it."""
    content = {k: v for k, v in resource.items() if k not in ("id", "meta", "text")}
    if content.get("status") != "completed":
        raise InvalidInput(
            "Register a dispensing when it is handed out: status 'completed'.", f"{_WHERE}.status"
        )
    refs = content.get("authorizingPrescription") or []
    if len(refs) != 1:
        raise InvalidInput(
            "A dispensing is made on one prescription: authorizingPrescription names exactly "
            "one MedicationRequest.",
            f"{_WHERE}.authorizingPrescription",
        )
    found = _RX.fullmatch(str(refs[0].get("reference") or ""))
    if found is None:
        raise InvalidInput(
            "Expected a reference to MedicationRequest/<id>.",
            f"{_WHERE}.authorizingPrescription[0].reference",
        )
    concept = content.get("medicationCodeableConcept")
    if content.get("medicationReference") is not None or not concept:
        raise InvalidInput(
            "Say what was handed out as medicationCodeableConcept (the package's FEST Varenr, "
            "or ATC and a text).",
            f"{_WHERE}.medicationCodeableConcept",
        )
    if not (content.get("quantity") or {}).get("value"):
        raise InvalidInput("Say how much was handed out: quantity.", f"{_WHERE}.quantity")
    if not content.get("whenHandedOver"):
        raise InvalidInput(
            "Say when it was handed out: whenHandedOver.", f"{_WHERE}.whenHandedOver"
        )
    content["subject"] = {"reference": f"Patient/{patient_id}"}
    actor: dict[str, Any] = {"display": pharmacy.org_name or pharmacy.name}
    if pharmacy.org_id:
        actor["identifier"] = {"system": systems.ORGNR, "value": pharmacy.org_id}
    content["performer"] = [{"actor": actor}]
    return content, found["id"]
