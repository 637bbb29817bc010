"""The URLs and code systems of SFM Basis, as the test environment's response uses them.

Norwegian OIDs name the Volven code lists (``urn:oid:2.16.578.1.12.4.1.1.<list>``); each
constant says which list it is.
"""

from __future__ import annotations

from typing import Any

SD = "http://ehelse.no/fhir/StructureDefinition"
CS = "http://ehelse.no/fhir/CodeSystem"


def profile(name: str) -> dict[str, list[str]]:
    """``meta`` naming one SFM profile, such as ``sfm-MedicationStatement``."""
    return {"profile": [f"{SD}/{name}"]}


def kind(name: str) -> str:
    """The ``Reference.type`` SFM writes: the profile URL of the target."""
    return f"{SD}/{name}"


# -- extensions ------------------------------------------------------------------------------
AMENDMENT = f"{SD}/sfm-reseptamendment"
REG_INFO = f"{SD}/sfm-regInfo"
SUBSTITUTION = f"{SD}/sfm-generic-substitution"
DISCONTINUATION = f"{SD}/sfm-discontinuation"
ADMINISTRATION = f"{SD}/sfm-administration"
DELIVERY_SUMMARY = f"{SD}/sfm-deliverysummary"
USE = f"{SD}/sfm-use"
APPLICATION_AREA = f"{SD}/sfm-application-area"
PLL_INFORMATION = f"{SD}/sfm-pllInformation"
DISPENSE_INFO = f"{SD}/sfm-dispenseinfo"
MEDICATION_DETAILS = f"{SD}/sfm-medicationdetails"
PRESCRIPTION_GROUP = "http://hl7.no/fhir/StructureDefinition/no-basis-prescriptiongroup"
MIDDLE_NAME = "http://hl7.no/fhir/StructureDefinition/no-basis-middlename"

# -- code systems ----------------------------------------------------------------------------
SECTION_TYPES = f"{CS}/sfm-section-types"
MESSAGE_TYPE = f"{CS}/sfm-message-type"
REG_STATUS = f"{CS}/sfm-medicationstatement-registration-status"
PERFORMER_ROLES = f"{CS}/sfm-performer-roles"
RESULT_CODE = f"{CS}/sfm-kj-rf-error-code"
FEST_REGISTRATION = f"{CS}/sfm-festregistrationtype"
LIST_EMPTY = "http://terminology.hl7.org/CodeSystem/list-empty-reason"
#: 7408 Status i reseptformidleren: E Ekspederbar, U Under ekspedering, T Tilbakekalt
RF_STATUS = "urn:oid:2.16.578.1.12.4.1.1.7408"
#: 7500 Årsak til tilbakekalling: 1 Fornying, 2 Seponering, 3 Fornying med endring, …
RECALL_CODE = "urn:oid:2.16.578.1.12.4.1.1.7500"
#: 7494 Årsak til seponering (A Avsluttet behandling, X Annen, …)
DISCONTINUATION_REASON = "urn:oid:2.16.578.1.12.4.1.1.7494"
#: 7491 Type resept: E Eresept, U Uten resept, …
TYPE_RESEPT = "urn:oid:2.16.578.1.12.4.1.1.7491"
#: 7402 Varegruppe: L Legemiddel, A Annet (BANDA), …
ITEM_GROUP = "urn:oid:2.16.578.1.12.4.1.1.7402"
#: 7490 Rolle i multidose: M Multidoseansvarlig lege, A Ansvarlig farmasøyt
PARTY_ROLE = "urn:oid:2.16.578.1.12.4.1.1.7490"
#: 9051 the pharmacy's AKO number, as the type of an Organization identifier
AKO = "urn:oid:2.16.578.1.12.4.1.1.9051"
#: The HER-id: an organisation's address in the Norwegian health network
HER = "urn:oid:2.16.578.1.12.4.1.2"

SECTIONS = {
    "sectionMedication": ("Medication", "List of Medication statements"),
    "sectionPLLinfo": ("PllInfo", "PLL Info"),
    "sectionAllergies": ("Allergies", "Section allergies"),
    "sectionDispense": ("sectionDispense", "Section dispense"),
    "sectionOtherPrescriptions": ("Other Prescriptions", "List of non medical prescriptions"),
}
MESSAGES = {
    "M25.1": "PLL",
    "M25.2": "Multidose spørremelding fra apotek",
    "M25.3": "Multidose utleveringsmelding",
}
RECALL_RENEW = "1"
RECALL_DISCONTINUE = "2"
RECALL_RENEW_CHANGED = "3"
RECALLS = {
    RECALL_RENEW: "Fornying",
    RECALL_DISCONTINUE: "Seponering",
    RECALL_RENEW_CHANGED: "Fornying med endring",
}
PARTY_ROLES = {"M": "Multidoseansvarlig lege", "A": "Ansvarlig farmasøyt"}


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    out = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def concept(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    return {"coding": [coding(system, code, display)]}


def result_code(code: str, display: str) -> dict[str, Any]:
    return coding(RESULT_CODE, code, display)


def _dicts(value: Any) -> list[dict[str, Any]]:
    # Extension values may be of any type; a reader never assumes one.
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def sub(extension: Any, url: str) -> list[dict[str, Any]]:
    """The sub-extensions of ``extension`` with this ``url`` (SFM repeats some of them)."""
    if not isinstance(extension, dict):
        return []
    return [e for e in _dicts(extension.get("extension")) if e.get("url") == url]


def first(extension: Any, url: str) -> dict[str, Any] | None:
    found = sub(extension, url)
    return found[0] if found else None


def value(extension: Any) -> Any:
    """The ``value[x]`` of an extension, whatever its type."""
    if not isinstance(extension, dict):
        return None
    for key, item in extension.items():
        if key.startswith("value"):
            return item
    return None


def sub_value(extension: Any, url: str) -> Any:
    return value(first(extension, url))


def ext(resource: Any, url: str) -> list[dict[str, Any]]:
    """A resource's (or element's) extensions with this ``url``."""
    if not isinstance(resource, dict):
        return []
    return [e for e in _dicts(resource.get("extension")) if e.get("url") == url]


def reference(value: Any) -> str | None:
    """The ``reference`` of a Reference value, or ``None`` for anything else."""
    if isinstance(value, dict) and isinstance(value.get("reference"), str):
        return str(value["reference"])
    return None


def code_of(concept_value: Any, system: str | None = None) -> str | None:
    """The code of a CodeableConcept (in ``system`` if given); ``None`` for anything else."""
    if not isinstance(concept_value, dict):
        return None
    for c in _dicts(concept_value.get("coding")):
        if system is None or c.get("system") == system:
            code = c.get("code")
            return str(code) if code is not None else None
    return None
