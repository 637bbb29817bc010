"""From what a doctor fills in to the FHIR a journal system would send.

The dosage editor's fields become FHIR ``Dosage`` elements in :mod:`pll.web.dosage_editor`
(its names are re-exported here: ``forms.dosage``, ``forms.editor_values``, ``forms.TIMES``,
``forms.UNITS``); this module builds the resources around them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from pll.domain import treatment
from pll.domain.errors import InvalidInput
from pll.domain.forms import QUANTITY_UNITS
from pll.domain.prescriptions import (
    MAX_AMOUNT,
    MAX_PACKAGES,
    MAX_REPEATS,
    PACKAGE,
    maximum_end,
    rx_units,
)
from pll.fhir import systems
from pll.web.dosage_editor import (
    TIMES,
    UNITS,
    Field,
    amount_of,
    comma,
    dosage,
    editor_values,
    quantity,
    units_of,
)

__all__ = [
    "DISCONTINUE_REASONS",
    "RECALL_REASONS",
    "TIMES",
    "TREATMENTS",
    "UNITS",
    "dosage",
    "editor_values",
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
    stop: str | None = None,
) -> dict[str, Any]:
    """A new entry (MedicationStatement) for a drug from FEST; the treatment from ``start``
    until ``stop`` when it has a planned end (``effectivePeriod``)."""
    if treatment not in TREATMENTS:
        raise InvalidInput("Velg behandlingstype: fast, kur eller behov.", "treatment")
    resource: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "status": "active",
        "category": {"coding": [{"system": systems.TREATMENT_TYPE, "code": treatment}]},
        "medicationCodeableConcept": copy.deepcopy(medication),
        "subject": {"reference": f"Patient/{patient_id}"},
        "effectivePeriod": {"start": start, **({"end": stop} if stop else {})},
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
    authored: str | None,
    prior: str | None = None,
    rx: RxFields | None = None,
) -> dict[str, Any]:
    """An e-prescription (MedicationRequest); ``prior`` makes it a renewal of that one, ``rx``
    says how much it gives (``dispenseRequest.quantity``, ``numberOfRepeatsAllowed``) and,
    when the doctor gave one, its validity end (``dispenseRequest.validityPeriod.end``; PLL
    states the default when it is left out). Without ``authored`` PLL dates it the day it
    is issued."""
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": copy.deepcopy(medication),
        "subject": {"reference": f"Patient/{patient_id}"},
        "dosageInstruction": dosages,
    }
    if authored:
        resource["authoredOn"] = authored
    if prior:
        resource["priorPrescription"] = {"reference": f"MedicationRequest/{prior}"}
    if rx is not None:
        request: dict[str, Any] = {
            "quantity": quantity(rx.quantity, rx.unit),
            "numberOfRepeatsAllowed": rx.repeats,
        }
        if rx.valid_until is not None:
            request["validityPeriod"] = {"end": rx.valid_until.isoformat()}
        resource["dispenseRequest"] = request
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


def without_meta(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource as a client sends it back in an update: without server bookkeeping."""
    return {k: copy.deepcopy(v) for k, v in resource.items() if k != "meta"}


# -- the prescription's fields: quantity, reit, validity, the treatment's start and stop ----

#: What the quantity of one dispensing is counted in: packages, or an amount of a unit;
#: all of them, for a drug whose form PLL cannot sort (the domain's table).
RX_UNITS = (PACKAGE, *QUANTITY_UNITS)
#: A GP's usual prescription: one package, no reit (the repeats a doctor adds on purpose).
RX_DEFAULTS = {"rx-quantity": "1", "rx-unit": PACKAGE, "rx-repeats": "0"}


@dataclass(frozen=True)
class RxFields:
    """The prescription part of the prescribing and renewal forms, checked.

    ``quantity``/``unit`` and ``repeats`` go to the MedicationRequest's ``dispenseRequest``
    (``quantity``, ``numberOfRepeatsAllowed``), ``valid_until`` to its
    ``dispenseRequest.validityPeriod.end``; ``start`` and ``stop`` are the *treatment's* and
    go to the entry's ``MedicationStatement.effectivePeriod``."""

    quantity: Decimal
    unit: str
    repeats: int
    #: ``None`` when left empty (a new medicine then starts today)
    start: date | None
    stop: date | None
    valid_until: date | None


def _day(raw: str, name: str, what: str) -> date | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(f"{what}: «{raw[:20]}» er ikke en dato (dd.mm.åååå).", name) from None


def rx_units_for(form: str | None) -> tuple[str, ...]:
    """The quantity units the prescribing and renewal forms offer, and the only ones they
    accept, for a drug of this FEST form: the domain's (:func:`rx_units`), else every unit."""
    return rx_units(form) or RX_UNITS


def rx_fields(field: Field, today: date, form: str | None = None) -> RxFields:
    """The prescription fields (``rx-quantity``, ``rx-unit``, ``rx-repeats``,
    ``rx-valid-until``, ``rx-start``, ``rx-stop``) checked, each refusal in Norwegian and
    named by its field: a quantity of zero, below or absurdly far above what one dispensing
    gives, a reit outside 0–99, a validity past what an e-resept allows, a stop before the
    start, dates far from today."""
    unit = field("rx-unit") or PACKAGE
    offered = rx_units_for(form)
    if unit not in offered and rx_units(form) is None:
        raise InvalidInput(f"Ukjent enhet «{unit[:20]}».", "rx-unit")
    if unit not in offered:
        raise InvalidInput(
            f"Legemiddelet er {form} og foreskrives i {', '.join(offered)}, ikke i «{unit[:20]}».",
            "rx-unit",
        )
    raw = field("rx-quantity").strip() or RX_DEFAULTS["rx-quantity"]
    most = MAX_PACKAGES if unit == PACKAGE else MAX_AMOUNT
    shown = "pakninger" if unit == PACKAGE else unit
    quantity = amount_of(raw, "rx-quantity", "Mengde", Decimal(most), shown)
    if unit == PACKAGE and quantity != quantity.to_integral_value():
        raise InvalidInput("Mengde: antall pakninger er et helt tall.", "rx-quantity")
    raw = field("rx-repeats").strip() or RX_DEFAULTS["rx-repeats"]
    if not raw.isdigit() or int(raw) > MAX_REPEATS:
        raise InvalidInput(
            f"Reit: skriv hvor mange ganger til den kan hentes, fra 0 til {MAX_REPEATS}.",
            "rx-repeats",
        )
    start = _day(field("rx-start"), "rx-start", "Start")
    stop = _day(field("rx-stop"), "rx-stop", "Stopp")
    try:
        treatment.check_period(start, None, today)
    except InvalidInput as exc:
        raise InvalidInput(exc.norwegian or exc.message, "rx-start") from None
    if stop is not None and stop < (start or today):
        raise InvalidInput("Stopp: datoen kan ikke være før start.", "rx-stop")
    try:
        treatment.check_period(None, stop, today)
    except InvalidInput as exc:
        raise InvalidInput(exc.norwegian or exc.message, "rx-stop") from None
    valid_until = _day(field("rx-valid-until"), "rx-valid-until", "Gyldig til")
    longest = maximum_end(today, None)
    if valid_until is not None and not today <= valid_until <= longest:
        raise InvalidInput(
            f"Gyldig til: en e-resept skrevet i dag kan gjelde fra i dag til "
            f"{longest.strftime('%d.%m.%Y')}.",
            "rx-valid-until",
        )
    return RxFields(quantity, unit, int(raw), start, stop, valid_until)


def rx_values(rx: dict[str, Any] | None, entry: dict[str, Any] | None) -> dict[str, str]:
    """The prescription fields' starting values: the prescription's quantity and reit, the
    entry's start and stop (a renewal starts from what is), else the defaults."""
    values = dict(RX_DEFAULTS)
    request = (rx or {}).get("dispenseRequest") or {}
    quantity = request.get("quantity") or {}
    if quantity.get("value") is not None and quantity.get("unit") in RX_UNITS:
        values["rx-quantity"] = comma(quantity["value"])
        values["rx-unit"] = quantity["unit"]
    if isinstance(request.get("numberOfRepeatsAllowed"), int):
        values["rx-repeats"] = str(request["numberOfRepeatsAllowed"])
    if entry is None:
        return values
    period = entry.get("effectivePeriod") or {}
    # an entry without a start keeps none unless the doctor gives one
    values["rx-start"] = str(period.get("start") or "")[:10]
    if period.get("end"):
        values["rx-stop"] = str(period["end"])[:10]
    return values


def treatment_period(period: dict[str, Any], rx: RxFields) -> dict[str, Any]:
    """An entry's ``effectivePeriod`` with the start and stop a renewal form gave; what the
    doctor left as it was (a start with a time, say) stays exactly as it was."""
    out = {k: v for k, v in period.items() if k not in ("start", "end")}
    for key, day in (("start", rx.start), ("end", rx.stop)):
        was = period.get(key)
        if day is None:
            if was:
                out[key] = was
            continue
        out[key] = was if was and str(was)[:10] == day.isoformat() else day.isoformat()
    return out
