"""Catalogue drugs as FHIR ``Medication`` (https://hl7.org/fhir/R4/medication.html), coded as
SFM Basis codes them: FEST (``http://ehelse.no/fhir/CodeSystem/FEST``: a package's Varenr,
else its FEST id) and ATC, with the kind of FEST entry as SFM's ``sfm-festregistrationtype``."""

from __future__ import annotations

from typing import Any

from pll.fhir import systems

FEST = "http://ehelse.no/fhir/CodeSystem/FEST"
REGISTRATION = "http://ehelse.no/fhir/CodeSystem/sfm-festregistrationtype"
EXT_REGISTRATION = f"{systems.PLL_BASE}/StructureDefinition/fest-registration-type"
_KINDS = {
    "generic": ("1", "Legemiddelvirkestoff"),
    "brand": ("2", "Legemiddelmerkevare"),
    "package": ("3", "Legemiddelpakning"),
}


def resource_id(fest_id: str) -> str:
    """FEST ids (``ID_`` + UUID) as FHIR ids, which allow no ``_``: it becomes ``.``, which
    FEST ids never contain, so the way back is exact."""
    return fest_id.replace("_", ".")


def fest_id(resource_id: str) -> str:
    return resource_id.replace(".", "_")


def medication(drug: Any, substances: list[Any]) -> dict[str, Any]:
    code, display = _KINDS[drug.kind]
    codings = [{"system": FEST, "code": drug.code, "display": drug.name}]
    if drug.atc:
        codings.append({"system": systems.ATC, "code": drug.atc})
    resource: dict[str, Any] = {
        "resourceType": "Medication",
        "id": resource_id(drug.id),
        "extension": [
            {
                "url": EXT_REGISTRATION,
                "valueCoding": {"system": REGISTRATION, "code": code, "display": display},
            }
        ],
        "code": {"coding": codings, "text": drug.name},
        "status": "active" if drug.active else "inactive",
    }
    if drug.form:
        resource["form"] = {"text": drug.form}
    if substances:
        resource["ingredient"] = [
            {
                "itemCodeableConcept": {
                    "coding": [{"system": FEST, "code": s.id, "display": s.name}],
                    "text": s.name,
                },
                "isActive": True,
            }
            for s in substances
        ]
    return resource
