"""From what a doctor fills in to the FHIR a journal system would send.

The structured dosage editor has three modes, the ones a GP uses every day: fixed times of
day (an amount per time), as needed (an amount, a maximum per day and what for) and free
text. :func:`dosage` turns them into FHIR ``Dosage`` elements; the text the list shows is
then written by the same :func:`pll.domain.dosage.dosage_text` the API uses, so the live
preview and the saved entry can never disagree.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from pll.domain.dosage import dosage_text
from pll.domain.errors import InvalidInput
from pll.fhir import systems

#: Fixed times of day the editor offers, in the order the list writes them.
TIMES = {"MORN": "Morgen", "NOON": "Midt på dagen", "EVE": "Kveld", "HS": "Ved sengetid"}
UNITS = (
    "tablett",
    "kapsel",
    "dose",
    "inhalasjon",
    "dråpe",
    "ml",
    "mg",
    "IE",
    "plaster",
    "stikkpille",
)
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

Field = Callable[[str], str]
UCUM = "http://unitsofmeasure.org"
AMOUNT = re.compile(r"[0-9]{1,5}(?:[.,][0-9]{1,3})?")


def _amount(raw: str, what: str, name: str) -> Decimal | None:
    """An amount as a doctor writes it: up to five digits, a comma or point and up to
    three decimals (no exponents, no 0,0000001), above zero. ``what`` is the field's
    label (in the message), ``name`` the form field (where the message is shown)."""
    raw = raw.strip()
    if not raw:
        return None
    if not AMOUNT.fullmatch(raw):
        raise InvalidInput(
            f"{what}: «{raw[:20]}» er ikke en mengde (et tall med høyst tre desimaler).", name
        )
    value = Decimal(raw.replace(",", "."))
    if value <= 0:
        raise InvalidInput(f"{what}: mengden må være et tall over 0.", name)
    return value


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _quantity(value: Decimal, unit: str) -> dict[str, Any]:
    return {"value": _number(value), "unit": unit}


def dosage(field: Field) -> list[dict[str, Any]]:
    """FHIR ``Dosage`` elements from the dosage editor's fields (``dose-mode``,
    ``dose-unit``, ``dose-MORN`` …, ``dose-prn``, ``dose-max``, ``dose-for``,
    ``dose-text``), with the list's text written in."""
    mode = field("dose-mode") or "fixed"
    unit = field("dose-unit") or "tablett"
    if unit not in UNITS:
        raise InvalidInput(f"Ukjent enhet «{unit[:20]}».", "dose-unit")
    build = {"fixed": _fixed, "prn": _as_needed, "text": _free_text}.get(mode)
    if build is None:
        raise InvalidInput(f"Ukjent doseringsmåte «{mode[:20]}».", "dose-mode")
    elements = build(field, unit)
    text = dosage_text(elements)
    for element in elements:
        element["text"] = text
    return elements


def _fixed(field: Field, unit: str) -> list[dict[str, Any]]:
    amounts = {
        code: a
        for code in TIMES
        if (a := _amount(field(f"dose-{code}"), TIMES[code], f"dose-{code}")) is not None
    }
    if not amounts:
        raise InvalidInput("Fyll inn mengden for minst ett tidspunkt.", "dose-MORN")
    if len(set(amounts.values())) == 1:
        dose = _quantity(next(iter(amounts.values())), unit)
        return [
            {
                "timing": {"repeat": {"when": list(amounts)}},
                "doseAndRate": [{"doseQuantity": dose}],
            }
        ]
    # different amounts at different times: one element per time, taken together
    return [
        {
            "sequence": 1,
            "timing": {"repeat": {"when": [code]}},
            "doseAndRate": [{"doseQuantity": _quantity(a, unit)}],
        }
        for code, a in amounts.items()
    ]


def _as_needed(field: Field, unit: str) -> list[dict[str, Any]]:
    amount = _amount(field("dose-prn"), "Mengde ved behov", "dose-prn")
    if amount is None:
        raise InvalidInput("Fyll inn mengden per dose.", "dose-prn")
    element: dict[str, Any] = {"doseAndRate": [{"doseQuantity": _quantity(amount, unit)}]}
    purpose = field("dose-for")[:200]
    if purpose:
        element["asNeededCodeableConcept"] = {"text": purpose}
    else:
        element["asNeededBoolean"] = True
    most = _amount(field("dose-max"), "Maks per døgn", "dose-max")
    if most is not None:
        element["maxDosePerPeriod"] = {
            "numerator": _quantity(most, unit),
            "denominator": {"value": 1, "unit": "døgn", "system": UCUM, "code": "d"},
        }
    return [element]


def _free_text(field: Field, _unit: str) -> list[dict[str, Any]]:
    text = field("dose-text")[:500]
    if not text:
        raise InvalidInput("Skriv doseringen.", "dose-text")
    return [{"text": text}]


def editor_values(dosages: list[dict[str, Any]]) -> dict[str, str]:
    """The editor's fields for an entry's dosage, so a dose change starts from what is."""
    values: dict[str, str] = {
        "dose-mode": "text",
        "dose-text": ", ".join(d.get("text", "") for d in dosages if d.get("text")),
    }
    if not dosages:
        return values | {"dose-mode": "fixed"}
    first = dosages[0]
    quantity = (first.get("doseAndRate") or [{}])[0].get("doseQuantity") or {}
    unit = quantity.get("unit", "tablett")
    if unit not in UNITS:
        return values
    when_all = [d.get("timing", {}).get("repeat", {}) for d in dosages]
    if all(set(r) == {"when"} and set(r["when"]) <= set(TIMES) for r in when_all) and not any(
        d.get("asNeededBoolean") or d.get("asNeededCodeableConcept") for d in dosages
    ):
        values = {"dose-mode": "fixed", "dose-unit": unit}
        for d, r in zip(dosages, when_all, strict=True):
            q = (d.get("doseAndRate") or [{}])[0].get("doseQuantity") or {}
            for code in r["when"]:
                values[f"dose-{code}"] = _comma(q.get("value"))
        return values
    if len(dosages) == 1 and (first.get("asNeededBoolean") or first.get("asNeededCodeableConcept")):
        most = first.get("maxDosePerPeriod", {}).get("numerator", {}).get("value")
        return {
            "dose-mode": "prn",
            "dose-unit": unit,
            "dose-prn": _comma(quantity.get("value")),
            "dose-max": _comma(most),
            "dose-for": (first.get("asNeededCodeableConcept") or {}).get("text", ""),
        }
    return values


def _comma(value: Any) -> str:
    return "" if value is None else str(value).replace(".", ",")


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


def without_meta(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource as a client sends it back in an update: without server bookkeeping."""
    return {k: copy.deepcopy(v) for k, v in resource.items() if k != "meta"}
