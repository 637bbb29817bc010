"""One FHIR ``Dosage`` element read into the parts of its text: dose, as-needed, maximum per
period and timing, with the contradiction of a maximum below one dose refused (the
conventions are in :mod:`pll.domain.dosage`; FHIR R4 ``Dosage``:
https://hl7.org/fhir/R4/dosage.html)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pll.domain.dosage.timing import time_unit, timing
from pll.domain.dosage.values import IGNORED, check_keys, quantity
from pll.domain.dosage.words import TIME_UNITS, format_number, unit_key, written_amount
from pll.domain.errors import InvalidInput

_DOSAGE_KEYS = frozenset(
    {
        "sequence", "text", "timing", "asNeededBoolean", "asNeededCodeableConcept",
        "doseAndRate", "maxDosePerPeriod", "additionalInstruction", "patientInstruction",
        "site", "route", "method",
    }
) | IGNORED  # fmt: skip
_DOSAGE_UNSUPPORTED = frozenset(
    {"modifierExtension", "maxDosePerAdministration", "maxDosePerLifetime"}
)
_DOSE_AND_RATE_KEYS = frozenset({"type", "doseQuantity"}) | IGNORED
_DOSE_AND_RATE_UNSUPPORTED = frozenset({"doseRange", "rateRatio", "rateRange", "rateQuantity"})


@dataclass(frozen=True)
class Element:
    index: int
    sequence: int | None
    free_text: str | None = None
    dose: str = ""
    times: tuple[str, ...] = ()
    interval: str = ""
    as_needed: str = ""
    max_dose: str = ""
    bounds: str = ""

    @property
    def suffix(self) -> str:
        return f"{self.interval}{self.as_needed}{self.max_dose}"


def parse_element(raw: Any, index: int, where: str) -> Element:
    check_keys(raw, where, "Dosage", _DOSAGE_KEYS, _DOSAGE_UNSUPPORTED)
    sequence = raw.get("sequence")
    if sequence is not None and (isinstance(sequence, bool) or not isinstance(sequence, int)):
        raise InvalidInput("The sequence must be a whole number.", f"{where}.sequence")
    text = raw.get("text")
    if text is not None and not isinstance(text, str):
        raise InvalidInput("The dosage text must be a string.", f"{where}.text")
    as_needed = _as_needed(raw, where)
    structured = bool(as_needed) or any(
        key in raw
        for key in ("timing", "doseAndRate", "asNeededCodeableConcept", "maxDosePerPeriod")
    )
    if not structured:
        if text is None or not text.strip():
            raise InvalidInput(
                "The dosage element says nothing: give it a dose and timing, or a text.", where
            )
        return Element(index=index, sequence=sequence, free_text=text)
    dose, dose_unit, dose_value = _dose(raw, where)
    times, interval, bounds = timing(raw.get("timing"), f"{where}.timing", bool(as_needed))
    return Element(
        index=index,
        sequence=sequence,
        dose=dose,
        times=times,
        interval=interval,
        as_needed=as_needed,
        max_dose=_max_dose(raw, where, (dose_value, dose_unit), bool(as_needed)),
        bounds=bounds,
    )


def _as_needed(raw: Mapping[str, Any], where: str) -> str:
    flag = raw.get("asNeededBoolean")
    concept = raw.get("asNeededCodeableConcept")
    if flag is not None and not isinstance(flag, bool):
        raise InvalidInput("asNeededBoolean must be true or false.", f"{where}.asNeededBoolean")
    if concept is None:
        return " ved behov" if flag else ""
    if flag is not None:
        raise InvalidInput(
            "Give either asNeededBoolean or asNeededCodeableConcept, not both.",
            f"{where}.asNeededCodeableConcept",
        )
    reason = _concept_text(concept)
    if reason is None:
        raise InvalidInput(
            "asNeededCodeableConcept needs a text or a coding with a display, saying what the "
            "medicine is needed against.",
            f"{where}.asNeededCodeableConcept",
        )
    return f" ved behov mot {reason}"


def _concept_text(concept: Any) -> str | None:
    if not isinstance(concept, Mapping):
        return None
    text = concept.get("text")
    if isinstance(text, str) and text.strip():
        return text.strip()
    codings = concept.get("coding")
    if isinstance(codings, list):
        for coding in codings:
            display = coding.get("display") if isinstance(coding, Mapping) else None
            if isinstance(display, str) and display.strip():
                return display.strip()
    return None


def _dose(raw: Mapping[str, Any], where: str) -> tuple[str, str, Decimal]:
    """The dose as text, its unit and its amount."""
    dose_and_rate = raw.get("doseAndRate")
    if dose_and_rate is None:
        raise InvalidInput(
            "The dosage element has timing or as-needed but no dose: give "
            "doseAndRate[0].doseQuantity.",
            f"{where}.doseAndRate",
        )
    if not isinstance(dose_and_rate, list) or not dose_and_rate:
        raise InvalidInput("doseAndRate must be an array with one element.", f"{where}.doseAndRate")
    if len(dose_and_rate) > 1:
        raise InvalidInput(
            "Only one doseAndRate per dosage element can be written as text; give different "
            "doses as separate dosage elements.",
            f"{where}.doseAndRate[1]",
        )
    first = f"{where}.doseAndRate[0]"
    check_keys(
        dose_and_rate[0],
        first,
        "Dosage.doseAndRate",
        _DOSE_AND_RATE_KEYS,
        _DOSE_AND_RATE_UNSUPPORTED,
    )
    if "doseQuantity" not in dose_and_rate[0]:
        raise InvalidInput("The dose is missing: give doseQuantity.", f"{first}.doseQuantity")
    value, unit = quantity(dose_and_rate[0]["doseQuantity"], f"{first}.doseQuantity", "dose")
    if unit is None:
        raise InvalidInput(
            "The dose has no unit: give doseQuantity.unit (for example 'tablett' or 'mg') so "
            "that the text says what to take.",
            f"{first}.doseQuantity.unit",
        )
    return written_amount(value, unit), unit, value


def _max_dose(
    raw: Mapping[str, Any], where: str, dose: tuple[Decimal, str], as_needed: bool
) -> str:
    ratio = raw.get("maxDosePerPeriod")
    where = f"{where}.maxDosePerPeriod"
    if ratio is None:
        return ""
    if not as_needed:
        raise InvalidInput(
            "maxDosePerPeriod is only written for a dose taken as needed; mark the dosage as "
            "needed or leave the maximum out.",
            where,
        )
    if not isinstance(ratio, Mapping):
        raise InvalidInput("maxDosePerPeriod must be a Ratio (a JSON object).", where)
    numerator, unit = quantity(ratio.get("numerator"), f"{where}.numerator", "maximum dose")
    denominator: Any = ratio.get("denominator")
    length, _ = quantity(denominator, f"{where}.denominator", "maximum dose period")
    period_unit = time_unit(denominator, f"{where}.denominator", "maximum dose period")
    singular, plural = ("døgn", "døgn") if period_unit == "d" else TIME_UNITS[period_unit]
    per = singular if length == 1 else f"{format_number(length)} {plural}"
    dose_value, dose_unit = dose
    amount = format_number(numerator)
    if unit is not None and unit_key(unit) != unit_key(dose_unit):
        amount = written_amount(numerator, unit)
    elif dose_value > numerator:
        # One dose is taken within any period, however long, so a maximum below one dose
        # contradicts the dose (seen: 4 per dose with at most 2 a day). In Norwegian: the
        # dosage editor shows it to the doctor beside the field.
        raise InvalidInput(
            f"Én dose ({written_amount(dose_value, dose_unit)}) er mer enn maksimum "
            f"{written_amount(numerator, dose_unit)} per {per}: maksimum kan ikke være under én "
            "dose. Senk dosen eller øk maksimum.",
            where,
        )
    return f", maks {amount} per {per}"
