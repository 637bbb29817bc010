"""From what a doctor fills in to the FHIR a journal system would send.

The dosage editor's fields become FHIR ``Dosage`` elements in :mod:`pll.web.dosage_editor`
(its names are re-exported here: ``forms.dosage``, ``forms.editor_values``, ``forms.TIMES``,
``forms.UNITS``); this module builds the resources around them.
"""

from __future__ import annotations

import copy
from typing import Any

from pll.domain.errors import InvalidInput
from pll.fhir import systems
from pll.fhir.medication import FEST
from pll.web.dosage_editor import TIMES, UNITS, dosage, editor_values, units_of

__all__ = [
    "DISCONTINUE_REASONS",
    "RECALL_REASONS",
    "TIMES",
    "TREATMENTS",
    "UNITS",
    "dosage",
    "editor_values",
    "fest_code",
    "form_of",
    "medication_concept",
    "prescription",
    "statement",
    "units_of",
    "without_meta",
]

TREATMENTS = {"1": "Fast", "2": "Kur", "3": "Behov"}
#: Reasons a GP gives for discontinuing, as the SFM picklist names the common ones.
DISCONTINUE_REASONS = (
    "Behandlingen er avsluttet",
    "Bivirkning",
    "Manglende effekt",
    "Byttet til annet legemiddel",
    "Pasienten bruker det ikke",
    "Registrert feil",
)
RECALL_REASONS = ("Feil i resepten", "Ny resept med endret dosering", "Behandlingen er avsluttet")


def statement(
    patient_id: str,
    medication: dict[str, Any],
    dosages: list[dict[str, Any]],
    treatment: str,
    indication: str,
    start: str,
    prescription_id: str | None,
) -> dict[str, Any]:
    """A new entry (MedicationStatement) for a drug from FEST."""
    if treatment not in TREATMENTS:
        raise InvalidInput("Velg behandlingstype: fast, kur eller behov.", "treatment")
    resource: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "status": "active",
        "category": {"coding": [{"system": systems.TREATMENT_TYPE, "code": treatment}]},
        "medicationCodeableConcept": copy.deepcopy(medication),
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectivePeriod": {"start": start},
        "dosage": dosages,
    }
    if indication:
        resource["reasonCode"] = [{"text": indication[:200]}]
    if prescription_id:
        resource["basedOn"] = [{"reference": f"MedicationRequest/{prescription_id}"}]
    return resource


def prescription(
    patient_id: str,
    medication: dict[str, Any],
    dosages: list[dict[str, Any]],
    authored: str,
    prior: str | None = None,
) -> dict[str, Any]:
    """An e-prescription (MedicationRequest); ``prior`` makes it a renewal of that one."""
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": copy.deepcopy(medication),
        "subject": {"reference": f"Patient/{patient_id}"},
        "authoredOn": authored,
        "dosageInstruction": dosages,
    }
    if prior:
        resource["priorPrescription"] = {"reference": f"MedicationRequest/{prior}"}
    return resource


def medication_concept(medication: dict[str, Any]) -> dict[str, Any]:
    """The ``medicationCodeableConcept`` for a FEST Medication: its codes and its name."""
    code = medication.get("code") or {}
    concept: dict[str, Any] = {"coding": copy.deepcopy(code.get("coding", []))}
    concept["text"] = code.get("text") or next(
        (c.get("display") for c in concept["coding"] if c.get("display")), ""
    )
    return concept


def form_of(medication: dict[str, Any]) -> str | None:
    """The FEST pharmaceutical form of a catalogue ``Medication`` ("Tablett", "Krem"), if any."""
    text = (medication.get("form") or {}).get("text")
    return text if isinstance(text, str) and text else None


def fest_code(concept: dict[str, Any]) -> str | None:
    """The FEST code an entry's ``medicationCodeableConcept`` carries (none for a medicine
    named by text only)."""
    return next(
        (
            c["code"]
            for c in concept.get("coding") or []
            if isinstance(c, dict) and c.get("system") == FEST and isinstance(c.get("code"), str)
        ),
        None,
    )


def without_meta(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource as a client sends it back in an update: without server bookkeeping."""
    return {k: copy.deepcopy(v) for k, v in resource.items() if k != "meta"}
