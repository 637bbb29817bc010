"""Norwegian (bokmål) dosage text from FHIR R4 ``Dosage`` elements.

``dosage_text`` turns the JSON array ``MedicationStatement.dosage`` into the short text a
clinician reads on the medication list, such as ``1 tablett morgen og kveld`` or
``2 tabletter ved behov, maks 6 per døgn``. ``validate_dosage`` runs the same checks without
building the text. Whatever cannot be said exactly is refused with ``InvalidInput`` rather than
rendered approximately: a dosage text that says less than its structure is a medication error.

Conventions of this project:

- **Fixed times of day**: ``timing.repeat.when`` with the codes MORN "morgen", NOON "midt på
  dagen", AFT "ettermiddag", EVE "kveld", HS "ved sengetid" and NIGHT "natt", written in that
  order (bedtime comes before the night). Other FHIR ``EventTiming`` codes are refused. A fixed
  time is daily unless ``period``/``periodUnit`` say otherwise (``1 tablett morgen annenhver
  dag``); ``frequency``, if given, must equal the number of ``when`` codes.
- **Intervals** without ``when``: ``periodUnit`` h gives ``hver time``/``hver 8. time`` (only
  frequency 1); d gives ``daglig``/``3 ganger daglig``, ``annenhver dag``, ``hver 3. dag``; wk
  gives ``1 gang i uken``/``2 ganger i uken``, ``annenhver uke``, ``hver 3. uke``; mo likewise
  with ``i måneden``/``måned``. A frequency above 1 with a longer period is written
  ``2 ganger hver 3. dag``. Periods must be whole numbers; s, min and a are refused.
- **Weekdays**: ``dayOfWeek`` (mon … sun) names the days of a weekly dose, written after the
  interval in the order of the week: ``2 tabletter 1 gang i uken (mandag)``,
  ``1 tablett 2 ganger i uken (mandag og torsdag)``, ``1 tablett annenhver uke (fredag)``. It
  needs ``periodUnit`` wk and no ``when``; ``frequency``, if given, must equal the number of
  days (each day once a week).
- **As needed**: ``asNeededBoolean: true`` adds ``ved behov``; ``asNeededCodeableConcept`` adds
  ``ved behov mot <text>`` (its ``text``, else the first coding ``display``).
  ``maxDosePerPeriod`` (only with as-needed) adds ``, maks 6 per døgn``; the numerator's unit is
  written only when it differs from the dose unit (``maks 4 g per døgn``); a denominator above 1
  gives ``per 2 døgn``. A maximum in the dose's unit below one dose is a contradiction and is
  refused (one dose is taken within any period, however long).
- **Dose**: ``doseAndRate[0].doseQuantity`` with a value above zero and a unit (``unit``, else
  ``code`` when the system is UCUM or absent). Dose-form nouns (tablett, kapsel, dose, dråpe,
  ...) take the plural when the value is above 1; measure units (mg, g, µg, ml, IE, ...) and
  unknown units are written as given. Numbers use a decimal comma and no trailing zeros
  (``0,5 tablett``, ``1,5 tabletter``, ``2 tabletter`` for 2.0).
- **Several elements**: every element needs a ``sequence``. Elements with the same sequence
  are taken in the same period and are joined with ``og``: equal doses at fixed times are
  merged (``1 tablett morgen og kveld``), different doses are listed per time
  (``2 tabletter morgen og 1 tablett kveld``), and other elements follow. Increasing sequences
  are steps joined with ``, deretter``; each step except the last needs
  ``timing.repeat.boundsDuration`` (h, d, wk or mo), written ``i 3 dager``, ``i 1 uke``.
  Elements of one step must share the same bounds, so steps follow one another and never
  overlap (``boundsPeriod``, which could, is refused).
- **Free text**: an element with ``text`` and no ``timing``, ``doseAndRate``, ``asNeeded[x]``
  or ``maxDosePerPeriod`` is returned unchanged; it must then be the only element. When an
  element has structure, its ``text`` is ignored: the server writes the text from the structure.
- ``id``, ``extension``, ``additionalInstruction``, ``patientInstruction``, ``site``, ``route``
  and ``method`` are not part of the dosage text and are ignored. ``modifierExtension``
  (which would change the meaning) and the FHIR elements this text cannot express (for example
  ``doseRange``, ``timing.repeat.frequencyMax``, ``maxDosePerAdministration``) are refused.

Every error names its location as ``<expression>[i].<path>``, for example
``dosage[1].timing.repeat.period``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from pll.domain.errors import InvalidInput

UCUM_SYSTEM = "http://unitsofmeasure.org"

# code -> (position in the day, Norwegian text)
_WHEN: dict[str, tuple[int, str]] = {
    "MORN": (0, "morgen"),
    "NOON": (1, "midt på dagen"),
    "AFT": (2, "ettermiddag"),
    "EVE": (3, "kveld"),
    "HS": (4, "ved sengetid"),
    "NIGHT": (5, "natt"),
}
# The rest of FHIR R4 EventTiming, so that a valid but unsupported code gets a precise message.
_OTHER_EVENT_TIMING = frozenset(
    {
        "MORN.early", "MORN.late", "AFT.early", "AFT.late", "EVE.early", "EVE.late", "PHS",
        "WAKE", "C", "CM", "CD", "CV", "AC", "ACM", "ACD", "ACV", "PC", "PCM", "PCD", "PCV",
    }
)  # fmt: skip

_NOUNS = (
    ("tablett", "tabletter"),
    ("kapsel", "kapsler"),
    ("dose", "doser"),
    ("dråpe", "dråper"),
    ("stikkpille", "stikkpiller"),
    ("brusetablett", "brusetabletter"),
    ("tyggetablett", "tyggetabletter"),
    ("sugetablett", "sugetabletter"),
    ("sprøyte", "sprøyter"),
    ("pose", "poser"),
    ("påføring", "påføringer"),
    ("ampulle", "ampuller"),
    ("inhalasjon", "inhalasjoner"),
    ("pust", "pust"),
    ("plaster", "plaster"),
    ("spiseskje", "spiseskjeer"),
    ("teskje", "teskjeer"),
    ("måleskje", "måleskjeer"),
)
# Either form may arrive ("2 tablett" from one system, "1 tabletter" from another).
_NOUN_FORMS: dict[str, tuple[str, str]] = {form: pair for pair in _NOUNS for form in pair}

# UCUM code -> (singular, plural); "døgn" is the word for a 24-hour day in a maximum dose.
_TIME_UNITS: dict[str, tuple[str, str]] = {
    "h": ("time", "timer"),
    "d": ("dag", "dager"),
    "wk": ("uke", "uker"),
    "mo": ("måned", "måneder"),
}
_TIME_UNIT_ALIASES: dict[str, str] = {
    alias: code
    for code, words in _TIME_UNITS.items()
    for alias in (code, *words, *(("døgn",) if code == "d" else ()))
}
_UNSUPPORTED_PERIOD_UNITS = frozenset({"s", "min", "a"})
# FHIR R4 days-of-week code -> Norwegian name, in the order of the week
_DAYS: dict[str, str] = {
    "mon": "mandag",
    "tue": "tirsdag",
    "wed": "onsdag",
    "thu": "torsdag",
    "fri": "fredag",
    "sat": "lørdag",
    "sun": "søndag",
}

_IGNORED = frozenset({"id", "extension"})
_DOSAGE_KEYS = frozenset(
    {
        "sequence", "text", "timing", "asNeededBoolean", "asNeededCodeableConcept",
        "doseAndRate", "maxDosePerPeriod", "additionalInstruction", "patientInstruction",
        "site", "route", "method",
    }
) | _IGNORED  # fmt: skip
_DOSAGE_UNSUPPORTED = frozenset(
    {"modifierExtension", "maxDosePerAdministration", "maxDosePerLifetime"}
)
_TIMING_KEYS = frozenset({"repeat"}) | _IGNORED
_TIMING_UNSUPPORTED = frozenset({"event", "code", "modifierExtension"})
_REPEAT_KEYS = (
    frozenset({"when", "frequency", "period", "periodUnit", "boundsDuration", "dayOfWeek"})
    | _IGNORED
)
_REPEAT_UNSUPPORTED = frozenset(
    {
        "boundsRange", "boundsPeriod", "count", "countMax", "duration", "durationMax",
        "durationUnit", "frequencyMax", "periodMax", "timeOfDay", "offset",
    }
)  # fmt: skip
_DOSE_AND_RATE_KEYS = frozenset({"type", "doseQuantity"}) | _IGNORED
_DOSE_AND_RATE_UNSUPPORTED = frozenset({"doseRange", "rateRatio", "rateRange", "rateQuantity"})

_HOW_TO_FALL_BACK = "give the whole dosage as text only"


def validate_dosage(dosages: Sequence[Mapping[str, Any]], expression: str = "dosage") -> None:
    """Check that ``dosages`` (FHIR R4 ``Dosage`` elements as JSON) can be written as text.

    Raises ``InvalidInput`` for anything that is wrong or that ``dosage_text`` cannot express
    exactly; the error's expression is ``<expression>[i].<path>``. Accepts nothing that
    ``dosage_text`` would refuse.
    """
    _plan(dosages, expression)


def dosage_text(dosages: Sequence[Mapping[str, Any]], expression: str = "dosage") -> str:
    """Return the Norwegian dosage text for ``dosages``, following the module's conventions.

    The same input always gives the same text. Raises ``InvalidInput`` exactly when
    ``validate_dosage`` does.
    """
    plan = _plan(dosages, expression)
    if isinstance(plan, str):
        return plan
    return ", deretter ".join(_render_step(step) for step in plan)


@dataclass(frozen=True)
class _Element:
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


@dataclass
class _Cluster:
    """Fixed-time doses of one step that share interval, as-needed and maximum."""

    suffix: str
    first_index: int
    doses: dict[str, str] = field(default_factory=dict)  # when code -> dose


@dataclass
class _Step:
    bounds: str
    clusters: dict[str, _Cluster] = field(default_factory=dict)
    others: list[_Element] = field(default_factory=list)


def _plan(dosages: Sequence[Mapping[str, Any]], expression: str) -> str | list[_Step]:
    if isinstance(dosages, str | bytes | Mapping) or not isinstance(dosages, Sequence):
        raise InvalidInput("The dosage must be a JSON array of Dosage elements.", expression)
    if not dosages:
        raise InvalidInput("The dosage array is empty: there is no dosage to write.", expression)
    elements = [_parse_element(raw, i, f"{expression}[{i}]") for i, raw in enumerate(dosages)]
    if len(elements) == 1 and elements[0].free_text is not None:
        return elements[0].free_text
    for element in elements:
        where = f"{expression}[{element.index}]"
        if element.free_text is not None:
            raise InvalidInput(
                "A dosage element given only as text must be the only element; describe the "
                "whole dosage in that text, or give this element timing and dose.",
                where,
            )
        if len(elements) > 1 and element.sequence is None:
            raise InvalidInput(
                "With more than one dosage element, each needs a sequence: the same number "
                "for doses taken in the same period, increasing numbers for steps that follow "
                "one another.",
                f"{where}.sequence",
            )
    return _steps(elements, expression)


def _steps(elements: list[_Element], expression: str) -> list[_Step]:
    by_sequence: dict[int, list[_Element]] = {}
    for element in elements:
        by_sequence.setdefault(element.sequence or 0, []).append(element)
    steps: list[_Step] = []
    ordered = sorted(by_sequence.items())
    for position, (sequence, members) in enumerate(ordered):
        step = _Step(bounds=members[0].bounds)
        for element in members:
            where = f"{expression}[{element.index}]"
            if element.bounds != step.bounds:
                raise InvalidInput(
                    f"Dosage elements with the same sequence ({sequence}) are taken in the "
                    "same period and must have the same timing.repeat.boundsDuration.",
                    f"{where}.timing.repeat.boundsDuration",
                )
            _add_to_step(step, element, sequence, where)
        if not step.bounds and position < len(ordered) - 1:
            raise InvalidInput(
                f"The dosage with sequence {sequence} is followed by sequence "
                f"{ordered[position + 1][0]} but has no timing.repeat.boundsDuration, so it "
                "never ends; say how long it lasts.",
                f"{expression}[{members[0].index}].timing.repeat.boundsDuration",
            )
        steps.append(step)
    return steps


def _add_to_step(step: _Step, element: _Element, sequence: int, where: str) -> None:
    if not element.times:
        step.others.append(element)
        return
    cluster = step.clusters.setdefault(
        element.suffix, _Cluster(suffix=element.suffix, first_index=element.index)
    )
    for code in element.times:
        if code in cluster.doses:
            raise InvalidInput(
                f"The time of day {code} ({_WHEN[code][1]}) is given in more than one dosage "
                f"element with sequence {sequence}; give each time once, with its dose.",
                f"{where}.timing.repeat.when",
            )
        cluster.doses[code] = element.dose


def _render_step(step: _Step) -> str:
    items: list[tuple[tuple[int, int, int], str]] = []
    for cluster in step.clusters.values():
        codes = sorted(cluster.doses, key=lambda code: _WHEN[code][0])
        doses = {cluster.doses[code] for code in codes}
        if len(doses) == 1:
            text = f"{doses.pop()} {_join(_WHEN[code][1] for code in codes)}"
        else:
            text = _join(f"{cluster.doses[code]} {_WHEN[code][1]}" for code in codes)
        items.append(((0, _WHEN[codes[0]][0], cluster.first_index), text + cluster.suffix))
    for element in step.others:
        items.append(((1, 0, element.index), f"{element.dose}{element.suffix}"))
    return _join(text for _, text in sorted(items)) + step.bounds


def _join(parts: Iterable[str]) -> str:
    words = list(parts)
    if len(words) == 1:
        return words[0]
    return f"{', '.join(words[:-1])} og {words[-1]}"


# --- one Dosage element ---------------------------------------------------------------------


def _parse_element(raw: Any, index: int, where: str) -> _Element:
    _check_keys(raw, where, "Dosage", _DOSAGE_KEYS, _DOSAGE_UNSUPPORTED)
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
        return _Element(index=index, sequence=sequence, free_text=text)
    dose, dose_unit, dose_value = _dose(raw, where)
    times, interval, bounds = _timing(raw.get("timing"), f"{where}.timing", bool(as_needed))
    return _Element(
        index=index,
        sequence=sequence,
        dose=dose,
        times=times,
        interval=interval,
        as_needed=as_needed,
        max_dose=_max_dose(raw, where, (dose_value, dose_unit), bool(as_needed)),
        bounds=bounds,
    )


def _check_keys(
    raw: Any, where: str, kind: str, known: frozenset[str], unsupported: frozenset[str]
) -> None:
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"The {kind} must be a JSON object.", where)
    for key in raw:
        if key in unsupported:
            raise InvalidInput(
                f"{kind}.{key} cannot be written as dosage text; {_HOW_TO_FALL_BACK} or leave "
                f"{key} out.",
                f"{where}.{key}",
            )
        if key not in known:
            raise InvalidInput(f"{kind} has no element {key!r}.", f"{where}.{key}")


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
    _check_keys(
        dose_and_rate[0],
        first,
        "Dosage.doseAndRate",
        _DOSE_AND_RATE_KEYS,
        _DOSE_AND_RATE_UNSUPPORTED,
    )
    if "doseQuantity" not in dose_and_rate[0]:
        raise InvalidInput("The dose is missing: give doseQuantity.", f"{first}.doseQuantity")
    value, unit = _quantity(dose_and_rate[0]["doseQuantity"], f"{first}.doseQuantity", "dose")
    if unit is None:
        raise InvalidInput(
            "The dose has no unit: give doseQuantity.unit (for example 'tablett' or 'mg') so "
            "that the text says what to take.",
            f"{first}.doseQuantity.unit",
        )
    return _amount(value, unit), unit, value


def _quantity(raw: Any, where: str, what: str) -> tuple[Decimal, str | None]:
    """A positive value and its unit text (``unit``, else a UCUM ``code``), if any."""
    if not isinstance(raw, Mapping):
        raise InvalidInput(f"The {what} must be a Quantity (a JSON object).", where)
    if "comparator" in raw:
        raise InvalidInput(
            f"The {what} cannot have a comparator; give the exact amount.", f"{where}.comparator"
        )
    value = _number(raw.get("value"), f"{where}.value", what)
    if value <= 0:
        raise InvalidInput(
            f"The {what} must be greater than zero; got {_format_number(value)}.",
            f"{where}.value",
        )
    for key in ("unit", "code", "system"):
        if key in raw and not isinstance(raw[key], str):
            raise InvalidInput(f"The {what}'s {key} must be a string.", f"{where}.{key}")
    unit = raw.get("unit", "").strip()
    if unit:
        return value, unit
    code = raw.get("code", "").strip()
    # Codes from other systems (such as the e-prescription unit code list) are numbers that
    # mean nothing to a reader, so only a UCUM code can stand in for the missing unit text.
    if code and raw.get("system", UCUM_SYSTEM) == UCUM_SYSTEM:
        return value, code
    return value, None


def _number(raw: Any, where: str, what: str) -> Decimal:
    if raw is None:
        raise InvalidInput(f"The {what} has no value.", where)
    if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal):
        raise InvalidInput(f"The {what}'s value must be a number.", where)
    if isinstance(raw, float) and not math.isfinite(raw):
        raise InvalidInput(f"The {what}'s value must be a finite number.", where)
    if isinstance(raw, Decimal) and not raw.is_finite():
        raise InvalidInput(f"The {what}'s value must be a finite number.", where)
    # repr() of a float is its shortest round-trip form, so 0.1 stays 0.1 and not 0.1000…0555.
    return Decimal(repr(raw)) if isinstance(raw, float) else Decimal(raw)


def _format_number(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text.replace(".", ",")


def _amount(value: Decimal, unit: str) -> str:
    forms = _NOUN_FORMS.get(unit.lower())
    if forms is not None:
        unit = forms[1] if value > 1 else forms[0]
    return f"{_format_number(value)} {unit}"


def _unit_key(unit: str) -> str:
    forms = _NOUN_FORMS.get(unit.lower())
    return forms[0] if forms else unit.lower()


# --- timing ---------------------------------------------------------------------------------


def _timing(raw: Any, where: str, as_needed: bool) -> tuple[tuple[str, ...], str, str]:
    """The element's times of day, interval phrase and bounds phrase."""
    if raw is None:
        if not as_needed:
            raise InvalidInput(
                "The dosage says how much but not when: give timing.repeat with when or "
                "frequency/period/periodUnit, or mark it as needed.",
                where,
            )
        return (), "", ""
    _check_keys(raw, where, "Timing", _TIMING_KEYS, _TIMING_UNSUPPORTED)
    repeat = raw.get("repeat")
    where = f"{where}.repeat"
    if repeat is None:
        raise InvalidInput("The timing has no repeat: say when the dose is taken.", where)
    _check_keys(repeat, where, "Timing.repeat", _REPEAT_KEYS, _REPEAT_UNSUPPORTED)
    times = _when(repeat.get("when"), f"{where}.when")
    interval = _interval(repeat, where, times)
    if not times and not interval and not as_needed:
        raise InvalidInput(
            "The dosage says how much but not when: give when or frequency/period/periodUnit, "
            "or mark it as needed.",
            where,
        )
    bounds = ""
    if "boundsDuration" in repeat:
        bounds = _bounds(repeat["boundsDuration"], f"{where}.boundsDuration")
    return times, interval, bounds


def _when(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("when must be a non-empty array of time-of-day codes.", where)
    seen: list[str] = []
    for k, code in enumerate(raw):
        if not isinstance(code, str):
            raise InvalidInput("A when code must be a string.", f"{where}[{k}]")
        if code in seen:
            raise InvalidInput(f"The when code {code} is given twice.", f"{where}[{k}]")
        if code in _OTHER_EVENT_TIMING:
            raise InvalidInput(
                f"The when code {code} cannot be written as dosage text; use MORN, NOON, AFT, "
                f"EVE, HS or NIGHT, or {_HOW_TO_FALL_BACK}.",
                f"{where}[{k}]",
            )
        if code not in _WHEN:
            raise InvalidInput(
                f"Unknown when code {code!r}; use MORN, NOON, AFT, EVE, HS or NIGHT.",
                f"{where}[{k}]",
            )
        seen.append(code)
    return tuple(sorted(seen, key=lambda code: _WHEN[code][0]))


def _interval(repeat: Mapping[str, Any], where: str, times: tuple[str, ...]) -> str:
    """The interval phrase with a leading space, or "" (daily at fixed times, or no interval)."""
    frequency = _frequency(repeat.get("frequency"), f"{where}.frequency")
    period = _period(repeat.get("period"), f"{where}.period")
    unit = _period_unit(repeat.get("periodUnit"), f"{where}.periodUnit")
    if period is None and unit is not None:
        raise InvalidInput("periodUnit is given without period.", f"{where}.period")
    if period is not None and unit is None:
        raise InvalidInput("period is given without periodUnit.", f"{where}.periodUnit")
    days = _days(repeat.get("dayOfWeek"), f"{where}.dayOfWeek")
    if days:
        return _weekly(days, frequency, period, unit, where, times)
    if times:
        if frequency is not None and frequency != len(times):
            raise InvalidInput(
                f"With when, frequency counts the times of day: it must be {len(times)} or be "
                "left out.",
                f"{where}.frequency",
            )
        if period is None or unit is None or (unit == "d" and period == 1):
            return ""
        if unit == "h":
            raise InvalidInput(
                "Fixed times of day (when) cannot repeat every few hours; use periodUnit d, wk "
                "or mo, or drop when.",
                f"{where}.periodUnit",
            )
        return f" {_every(1, period, unit)}"
    if period is None or unit is None:
        if frequency is not None:
            raise InvalidInput(
                "frequency needs period and periodUnit (for example 3 per 1 d).", f"{where}.period"
            )
        return ""
    if unit == "h" and frequency not in (None, 1):
        raise InvalidInput(
            "With periodUnit h, frequency must be 1: write every N hours as period N.",
            f"{where}.frequency",
        )
    return f" {_every(frequency or 1, period, unit)}"


def _days(raw: Any, where: str) -> tuple[str, ...]:
    """The days of ``dayOfWeek`` in the order of the week (none when it is absent)."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        raise InvalidInput("dayOfWeek must be a non-empty array of day codes (mon … sun).", where)
    seen: list[str] = []
    for k, code in enumerate(raw):
        if not isinstance(code, str) or code not in _DAYS:
            raise InvalidInput(
                f"Unknown dayOfWeek code {code!r}; use mon, tue, wed, thu, fri, sat or sun.",
                f"{where}[{k}]",
            )
        if code in seen:
            raise InvalidInput(f"The day {code} is given twice.", f"{where}[{k}]")
        seen.append(code)
    order = list(_DAYS)
    return tuple(sorted(seen, key=order.index))


def _weekly(
    days: tuple[str, ...],
    frequency: int | None,
    period: int | None,
    unit: str | None,
    where: str,
    times: tuple[str, ...],
) -> str:
    """The interval phrase of a dose taken on named weekdays: `` 1 gang i uken (mandag)``."""
    if times:
        # "morgen" and "mandag" together would need a count per day and per time; the text
        # could not say how many doses a week without guessing
        raise InvalidInput(
            "dayOfWeek cannot be combined with when; give the weekdays with frequency/period/"
            f"periodUnit wk, or {_HOW_TO_FALL_BACK}.",
            f"{where}.dayOfWeek",
        )
    if period is None or unit != "wk":
        raise InvalidInput(
            "dayOfWeek needs a weekly interval: period 1 (or more) with periodUnit wk.",
            f"{where}.periodUnit" if period is not None else f"{where}.period",
        )
    if frequency is not None and frequency != len(days):
        raise InvalidInput(
            f"With dayOfWeek, frequency counts the days: it must be {len(days)} or be left out.",
            f"{where}.frequency",
        )
    named = _join(_DAYS[code] for code in days)
    return f" {_every(len(days), period, unit)} ({named})"


def _every(frequency: int, period: int, unit: str) -> str:
    if unit == "h":
        return "hver time" if period == 1 else f"hver {period}. time"
    times = "1 gang" if frequency == 1 else f"{frequency} ganger"
    if period == 1:
        if unit == "d":
            return "daglig" if frequency == 1 else f"{times} daglig"
        return f"{times} i {'uken' if unit == 'wk' else 'måneden'}"
    noun = _TIME_UNITS[unit][0]
    every = f"annenhver {noun}" if period == 2 else f"hver {period}. {noun}"
    return every if frequency == 1 else f"{times} {every}"


def _frequency(raw: Any, where: str) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise InvalidInput("frequency must be a whole number of at least 1.", where)
    return raw


def _period(raw: Any, where: str) -> int | None:
    if raw is None:
        return None
    value = _number(raw, where, "period")
    if value <= 0:
        raise InvalidInput(f"period must be greater than zero; got {_format_number(value)}.", where)
    if value != value.to_integral_value():
        raise InvalidInput(
            f"period must be a whole number to be written as text; got "
            f"{_format_number(value)}. Use a smaller periodUnit.",
            where,
        )
    return int(value)


def _period_unit(raw: Any, where: str) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise InvalidInput("periodUnit must be a string such as d or h.", where)
    if raw in _UNSUPPORTED_PERIOD_UNITS:
        raise InvalidInput(
            f"periodUnit {raw} cannot be written as dosage text; use h, d, wk or mo.", where
        )
    if raw not in _TIME_UNITS:
        raise InvalidInput(f"Unknown periodUnit {raw!r}; use h, d, wk or mo (UCUM).", where)
    return raw


def _time_unit(raw: Mapping[str, Any], where: str, what: str) -> str:
    """The UCUM code h, d, wk or mo of a duration Quantity, from its code or else its unit."""
    code = raw.get("code")
    system = raw.get("system", UCUM_SYSTEM)
    if isinstance(code, str) and code.strip() and system == UCUM_SYSTEM:
        spelled, at = code.strip(), f"{where}.code"
    else:
        unit = raw.get("unit")
        spelled, at = (unit.strip() if isinstance(unit, str) else ""), f"{where}.unit"
    resolved = _TIME_UNIT_ALIASES.get(spelled.lower())
    if resolved is None:
        raise InvalidInput(
            f"The {what} needs a time unit: UCUM code h, d, wk or mo, or the unit time, dag, "
            f"døgn, uke or måned; got {spelled!r}.",
            at,
        )
    return resolved


def _bounds(raw: Any, where: str) -> str:
    value, _ = _quantity(raw, where, "boundsDuration")
    unit = _time_unit(raw, where, "boundsDuration")
    singular, plural = _TIME_UNITS[unit]
    return f" i {_format_number(value)} {plural if value > 1 else singular}"


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
    numerator, unit = _quantity(ratio.get("numerator"), f"{where}.numerator", "maximum dose")
    denominator: Any = ratio.get("denominator")
    length, _ = _quantity(denominator, f"{where}.denominator", "maximum dose period")
    period_unit = _time_unit(denominator, f"{where}.denominator", "maximum dose period")
    singular, plural = ("døgn", "døgn") if period_unit == "d" else _TIME_UNITS[period_unit]
    per = singular if length == 1 else f"{_format_number(length)} {plural}"
    dose_value, dose_unit = dose
    amount = _format_number(numerator)
    if unit is not None and _unit_key(unit) != _unit_key(dose_unit):
        amount = _amount(numerator, unit)
    elif dose_value > numerator:
        # One dose is taken within any period, however long, so a maximum below one dose
        # contradicts the dose (seen: 4 per dose with at most 2 a day). In Norwegian: the
        # dosage editor shows it to the doctor beside the field.
        raise InvalidInput(
            f"Én dose ({_amount(dose_value, dose_unit)}) er mer enn maksimum "
            f"{_amount(numerator, dose_unit)} per {per}: maksimum kan ikke være under én "
            "dose. Senk dosen eller øk maksimum.",
            where,
        )
    return f", maks {amount} per {per}"


# --- for the dose checks (pll.domain.dose_checks) -------------------------------------------


def amount_text(value: Decimal, unit: str) -> str:
    """An amount as the dosage text writes it: ``2 tabletter``, ``0,5 tablett``, ``10 ml``."""
    return _amount(value, unit)


def unit_key(unit: str) -> str:
    """What a dose unit is, to compare units: the singular noun for the dose-form nouns
    (``tabletter`` and ``Tablett`` are ``tablett``), other units in lower case."""
    return _unit_key(unit)


def time_unit(spelled: str) -> str | None:
    """The UCUM code (h, d, wk, mo) of a time unit given as a code or a Norwegian word
    (``døgn``, ``Døgn``, ``uker``), ``None`` when it is none of these."""
    return _TIME_UNIT_ALIASES.get(spelled.strip().lower())
