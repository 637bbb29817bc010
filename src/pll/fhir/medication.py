"""Catalogue drugs as FHIR ``Medication`` (https://hl7.org/fhir/R4/medication.html), coded as
SFM Basis codes them: FEST (``http://ehelse.no/fhir/CodeSystem/FEST``: a package's Varenr,
else its FEST id) and ATC, with the kind of FEST entry as SFM's ``sfm-festregistrationtype``."""

from __future__ import annotations

import re
from typing import Any

from pll.fhir import systems

FEST = "http://ehelse.no/fhir/CodeSystem/FEST"
REGISTRATION = "http://ehelse.no/fhir/CodeSystem/sfm-festregistrationtype"
EXT_REGISTRATION = f"{systems.PLL_BASE}/StructureDefinition/fest-registration-type"
#: FEST's Reseptgyldighet: how long a prescription of the drug is valid (valueDuration)
EXT_VALIDITY = f"{systems.PLL_BASE}/StructureDefinition/prescription-validity"
#: a package's Pakningsinfo as a doctor reads it ("Blisterpakning, 30 stk") (valueString)
EXT_PACK = f"{systems.PLL_BASE}/StructureDefinition/fest-pack"
_DURATION = re.compile(r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?")
_UNITS = {"Y": ("år", "a"), "M": ("måneder", "mo"), "W": ("uker", "wk"), "D": ("dager", "d")}
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
    validity = _duration(drug.validity)
    if validity is not None:
        resource["extension"].append({"url": EXT_VALIDITY, "valueDuration": validity})
    if drug.pack:
        resource["extension"].append({"url": EXT_PACK, "valueString": drug.pack})
    if drug.pack_amount is not None and drug.pack_unit:
        # the amount in the package (FHIR R4 Medication.amount: numerator per 1 package)
        resource["amount"] = {
            "numerator": {"value": drug.pack_amount, "unit": drug.pack_unit},
            "denominator": {"value": 1},
        }
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


def _duration(iso: str | None) -> dict[str, Any] | None:
    """An ISO 8601 duration of one unit (FEST writes P1Y, P10D) as a FHIR Duration in UCUM;
    ``None`` for none, or for one of several units, which FEST does not write."""
    found = _DURATION.fullmatch(iso or "")
    if found is None or not iso:
        return None
    given = [(n, u) for n, u in zip(found.groups(), "YMWD", strict=True) if n]
    if len(given) != 1:
        return None
    number, unit = given[0]
    text, code = _UNITS[unit]
    return {
        "value": int(number),
        "unit": text,
        "system": "http://unitsofmeasure.org",
        "code": code,
    }
