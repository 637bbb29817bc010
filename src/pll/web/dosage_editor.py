"""The dosage editor: from what a doctor fills in to FHIR ``Dosage``, and back.

The editor (``templates/doctor/_dosage.html``, on "Nytt legemiddel", "Endre dose" and the
pharmacy's proposals) has one mode per way a GP doses, chosen with the radio ``dose-mode``:

=========== ================ =====================================================================
mode        shown as         fields
=========== ================ =====================================================================
``fixed``   Faste tider      an amount per time of day: ``dose-MORN``, ``dose-NOON``, ``dose-EVE``,
                             ``dose-HS`` ("1 tablett morgen og kveld")
``prn``     Ved behov        ``dose-prn`` per dose, ``dose-max`` per døgn, ``dose-for`` (against)
``week``    Ukentlig         ``dose-week`` per day and the weekdays ``dose-week-mon`` …
                             ``dose-week-sun`` ("2 tabletter 1 gang i uken (mandag)")
``interval`` Med intervall   ``dose-int`` per time, times ``dose-int-MORN`` … (none: once a day)
                             and ``dose-int-every`` days ("1 tablett annenhver dag")
``taper``   Nedtrapping      steps 1 … :data:`MAX_STEPS`, each an amount per time of day
                             ``dose-step1-MORN`` … for ``dose-step1-length`` ``dose-step1-unit``
                             (d or wk); "deretter" the next; the last step may go on
``text``    Fritekst         ``dose-text``
=========== ================ =====================================================================

plus ``dose-unit``, one of the units the drug's form takes (:func:`units_of`).
:func:`dosage` builds the FHIR elements; their text is written by the same
:func:`pll.domain.dosage.dosage_text` the API uses, so the live preview, the saved entry and
an entry sent over the API never disagree. :func:`editor_values` goes the other way, so a dose
change opens in the entry's own mode with its values.

**Nothing typed is silently dropped.** Only the chosen mode's fields count, and a value in
another mode's field is refused (``InvalidInput`` at that field, naming what would be lost)
rather than ignored: the doctor clears it or chooses that mode. What the page filled in
itself — the entry's current dose, carried in hidden ``was-<field>`` fields — is the dose
being replaced, not something typed, and does not count. Every refusal's expression is the
name of the field it is about, so a page can show the message beside that field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any

from pll.domain.dosage import dosage_text
from pll.domain.errors import InvalidInput
from pll.domain.forms import units_for

#: Fixed times of day the editor offers, in the order the list writes them.
TIMES = {"MORN": "Morgen", "NOON": "Midt på dagen", "EVE": "Kveld", "HS": "Ved sengetid"}
#: FHIR day codes and their names, in the order of the week.
DAYS = {
    "mon": "mandag",
    "tue": "tirsdag",
    "wed": "onsdag",
    "thu": "torsdag",
    "fri": "fredag",
    "sat": "lørdag",
    "sun": "søndag",
}
#: Every dose unit the editor knows; a drug of unknown form may be dosed in any of them.
#: The form kinds' units (pll.domain.forms) are all here, so a known form's units are too.
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
    "påføring",
    "pose",
    "brusetablett",
    "tyggetablett",
    "sugetablett",
)
MODES = {
    "fixed": "Faste tider",
    "prn": "Ved behov",
    "week": "Ukentlig",
    "interval": "Med intervall",
    "taper": "Nedtrapping",
    "text": "Fritekst",
}
#: Steps a tapering dose can have in the editor (a longer one is given as text).
MAX_STEPS = 6
#: Step lengths: UCUM code -> (singular, plural) as the form's select and the FHIR unit say.
STEP_UNITS = {"d": ("dag", "dager"), "wk": ("uke", "uker")}
#: Longest interval in days, and longest step in its unit.
MAX_EVERY = 99
MAX_LENGTH = 999

Field = Callable[[str], str]
UCUM = "http://unitsofmeasure.org"
AMOUNT = re.compile(r"[0-9]{1,5}(?:[.,][0-9]{1,3})?")
_WHOLE = re.compile(r"[0-9]{1,4}")
WAS = "was-"
#: The tick boxes (their value says only that they are ticked).
_TICKED = frozenset({f"dose-week-{d}" for d in DAYS} | {f"dose-int-{t}" for t in TIMES})


def units_of(form: str | None) -> tuple[str, ...]:
    """The units the editor offers for a drug of FEST form ``form``, the usual one first;
    every unit it knows when the form is unknown (``None``, or a form PLL cannot sort)."""
    return units_for(form) or UNITS


def _fields_of(mode: str) -> list[tuple[str, str]]:
    """The fields of ``mode`` whose value is something the doctor typed or ticked, with
    their names as the page labels them. (A select or an interval always has a value.)"""
    if mode == "fixed":
        return [(f"dose-{code}", label) for code, label in TIMES.items()]
    if mode == "prn":
        return [("dose-prn", "Mengde per dose"), ("dose-max", "Maks per døgn"), ("dose-for", "Mot")]
    if mode == "week":
        days = [(f"dose-week-{code}", name) for code, name in DAYS.items()]
        return [("dose-week", "Mengde"), *days]
    if mode == "interval":
        times = [(f"dose-int-{code}", label.lower()) for code, label in TIMES.items()]
        return [("dose-int", "Mengde"), *times]
    if mode == "taper":
        return [
            (f"dose-step{step}-{name}", f"trinn {step} {label.lower()}")
            for step in range(1, MAX_STEPS + 1)
            for name, label in (*TIMES.items(), ("length", "varighet"))
        ]
    return [("dose-text", "Dosering som tekst")]


def dosage(field: Field, form: str | None = None) -> list[dict[str, Any]]:
    """FHIR ``Dosage`` elements from the editor's fields (see the module doc), with the
    list's text written in. ``form`` is the drug's FEST form: the unit must be one it takes.

    Raises ``InvalidInput`` whose expression is the field at fault."""
    mode = field("dose-mode") or "fixed"
    if mode not in MODES:
        raise InvalidInput(f"Ukjent doseringsmåte «{mode[:20]}».", "dose-mode")
    _nothing_dropped(field, mode)
    build = {
        "fixed": _fixed,
        "prn": _as_needed,
        "week": _weekly,
        "interval": _interval,
        "taper": _tapering,
        "text": _free_text,
    }[mode]
    elements = build(field, _unit(field, form) if mode != "text" else "")
    text = dosage_text(elements)
    for element in elements:
        element["text"] = text
    return elements


def _unit(field: Field, form: str | None) -> str:
    allowed = units_of(form)
    unit = field("dose-unit") or allowed[0]
    if unit not in UNITS:
        raise InvalidInput(f"Ukjent enhet «{unit[:20]}».", "dose-unit")
    if unit not in allowed:
        raise InvalidInput(
            f"{form} doseres i {' eller '.join(allowed)}, ikke i «{unit}»."
            + (" Velg en av dem." if len(allowed) > 1 else ""),
            "dose-unit",
        )
    return unit


def _nothing_dropped(field: Field, mode: str) -> None:
    """Refuse values typed in another mode's fields: saving would silently drop them."""
    for other, name in MODES.items():
        if other == mode:
            continue
        typed = [
            (key, label, field(key))
            for key, label in _fields_of(other)
            if field(key) and field(key) != field(WAS + key)
        ]
        if typed:
            shown = ", ".join(
                label if key in _TICKED else f"{label}: {value[:40]}"
                for key, label, value in typed[:6]
            )
            raise InvalidInput(
                f"Du har valgt «{MODES[mode]}», men har også fylt inn «{name}» ({shown}). "
                f"Det ville ikke blitt lagret. Tøm {'feltet' if len(typed) == 1 else 'de feltene'}"
                f", eller velg «{name}».",
                typed[0][0],
            )


def _amount(raw: str, name: str, label: str) -> Decimal | None:
    """An amount as a doctor writes it (:func:`amount_of`), or ``None`` when left empty."""
    raw = raw.strip()
    return amount_of(raw, name, label) if raw else None


#: The largest amount a form takes: five digits (:data:`AMOUNT`).
MOST = Decimal(99999)
#: What a doctor may have meant as a number, to say what is wrong with it.
_NUMBERISH = re.compile(r"[+-]?[0-9]{1,15}(?:[.,][0-9]{1,15})?")


def amount_of(raw: str, name: str, label: str, most: Decimal = MOST, unit: str = "") -> Decimal:
    """An amount as a doctor writes it: above zero, at most ``most`` (in ``unit``), a comma
    or point and up to three decimals (no exponents, no 0,0000001). A refusal says which
    of these the number broke: a number below or at zero, or too large, is still a number."""
    shown = f"«{raw[:20]}»"
    if not _NUMBERISH.fullmatch(raw):
        raise InvalidInput(
            f"{label}: {shown} er ikke en mengde (et tall med høyst tre desimaler).", name
        )
    value = Decimal(raw.replace(",", "."))
    if value <= 0:
        raise InvalidInput(f"{label}: mengden må være over 0; du skrev {shown}.", name)
    if value > most:
        most_said = " ".join(x for x in (comma(most), unit) if x)
        raise InvalidInput(f"{label}: {shown} er for mye; høyst {most_said}.", name)
    if not AMOUNT.fullmatch(raw.lstrip("+")):
        raise InvalidInput(f"{label}: {shown} har for mange desimaler; høyst tre.", name)
    return value


def _whole(raw: str, name: str, label: str, low: int, high: int) -> int:
    if not _WHOLE.fullmatch(raw) or not low <= int(raw) <= high:
        raise InvalidInput(
            f"{label}: «{raw[:20]}» må være et helt tall fra {low} til {high}.", name
        )
    return int(raw)


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def quantity(value: Decimal, unit: str) -> dict[str, Any]:
    return {"value": _number(value), "unit": unit}


def _at_times(
    amounts: dict[str, Decimal],
    unit: str,
    sequence: int | None = None,
    more: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Elements for an amount per time of day, taken together (one ``sequence``)."""
    more = more or {}
    if len(set(amounts.values())) == 1:
        element: dict[str, Any] = {
            "timing": {"repeat": {"when": list(amounts), **more}},
            "doseAndRate": [{"doseQuantity": quantity(next(iter(amounts.values())), unit)}],
        }
        return [element | ({"sequence": sequence} if sequence is not None else {})]
    # different amounts at different times: one element per time, in the same period
    return [
        {
            "sequence": sequence or 1,
            "timing": {"repeat": {"when": [code], **more}},
            "doseAndRate": [{"doseQuantity": quantity(a, unit)}],
        }
        for code, a in amounts.items()
    ]


def _per_time(field: Field, prefix: str, where: str) -> dict[str, Decimal]:
    return {
        code: a
        for code, label in TIMES.items()
        if (a := _amount(field(f"{prefix}{code}"), f"{prefix}{code}", f"{where}{label}"))
        is not None
    }


def _fixed(field: Field, unit: str) -> list[dict[str, Any]]:
    amounts = _per_time(field, "dose-", "")
    if not amounts:
        raise InvalidInput("Fyll inn mengden for minst ett tidspunkt.", "dose-MORN")
    return _at_times(amounts, unit)


def _as_needed(field: Field, unit: str) -> list[dict[str, Any]]:
    amount = _amount(field("dose-prn"), "dose-prn", "Mengde ved behov")
    if amount is None:
        raise InvalidInput("Fyll inn mengden per dose.", "dose-prn")
    element: dict[str, Any] = {"doseAndRate": [{"doseQuantity": quantity(amount, unit)}]}
    purpose = field("dose-for")[:200]
    if purpose:
        element["asNeededCodeableConcept"] = {"text": purpose}
    else:
        element["asNeededBoolean"] = True
    most = _amount(field("dose-max"), "dose-max", "Maks per døgn")
    if most is not None:
        element["maxDosePerPeriod"] = {
            "numerator": quantity(most, unit),
            "denominator": {"value": 1, "unit": "døgn", "system": UCUM, "code": "d"},
        }
    return [element]


def _weekly(field: Field, unit: str) -> list[dict[str, Any]]:
    amount = _amount(field("dose-week"), "dose-week", "Mengde")
    if amount is None:
        raise InvalidInput("Fyll inn mengden som tas hver av dagene.", "dose-week")
    days = [code for code in DAYS if field(f"dose-week-{code}")]
    if not days:
        raise InvalidInput("Velg minst én ukedag.", "dose-week-mon")
    repeat = {"frequency": len(days), "period": 1, "periodUnit": "wk", "dayOfWeek": days}
    return [
        {"timing": {"repeat": repeat}, "doseAndRate": [{"doseQuantity": quantity(amount, unit)}]}
    ]


def _interval(field: Field, unit: str) -> list[dict[str, Any]]:
    amount = _amount(field("dose-int"), "dose-int", "Mengde")
    if amount is None:
        raise InvalidInput("Fyll inn mengden per gang.", "dose-int")
    every = _whole(field("dose-int-every") or "2", "dose-int-every", "Hver", 2, MAX_EVERY)
    times = [code for code in TIMES if field(f"dose-int-{code}")]
    # without a time of day, once on each of those days
    repeat: dict[str, Any] = {"when": times} if times else {"frequency": 1}
    repeat |= {"period": every, "periodUnit": "d"}
    return [
        {"timing": {"repeat": repeat}, "doseAndRate": [{"doseQuantity": quantity(amount, unit)}]}
    ]


def _tapering(field: Field, unit: str) -> list[dict[str, Any]]:
    steps: list[tuple[int, dict[str, Decimal], str]] = []
    for step in range(1, MAX_STEPS + 1):
        prefix = f"dose-step{step}-"
        amounts = _per_time(field, prefix, f"Trinn {step}, ")
        length = field(f"{prefix}length")
        if not amounts and not length:
            continue  # an empty row: nothing typed, nothing lost
        if not amounts:
            raise InvalidInput(
                f"Trinn {step}: fyll inn mengden for minst ett tidspunkt.", f"{prefix}MORN"
            )
        steps.append((step, amounts, length))
    if not steps:
        raise InvalidInput("Fyll inn mengden for minst ett tidspunkt i trinn 1.", "dose-step1-MORN")
    elements: list[dict[str, Any]] = []
    for position, (step, amounts, length) in enumerate(steps, start=1):
        prefix = f"dose-step{step}-"
        more: dict[str, Any] = {}
        if length:
            count = _whole(length, f"{prefix}length", f"Trinn {step}, varighet", 1, MAX_LENGTH)
            code = field(f"{prefix}unit") or "d"
            if code not in STEP_UNITS:
                raise InvalidInput(f"Ukjent tidsenhet «{code[:20]}».", f"{prefix}unit")
            singular, plural = STEP_UNITS[code]
            more["boundsDuration"] = {
                "value": count,
                "unit": plural if count > 1 else singular,
                "system": UCUM,
                "code": code,
            }
        elif position < len(steps):
            raise InvalidInput(
                f"Trinn {step}: skriv hvor lenge trinnet varer; bare det siste trinnet kan "
                "vare uten slutt.",
                f"{prefix}length",
            )
        elements += _at_times(amounts, unit, position, more)
    return elements


def _free_text(field: Field, _unit: str) -> list[dict[str, Any]]:
    text = field("dose-text")[:500]
    if not text:
        raise InvalidInput("Skriv doseringen.", "dose-text")
    return [{"text": text}]


# --- back: an entry's dosage as the editor's fields ------------------------------------------


def editor_values(dosages: list[dict[str, Any]]) -> dict[str, str]:
    """The editor's fields for an entry's dosage, so a dose change starts from what is: in
    the mode that says it exactly, else as its text (mode ``text``)."""
    if not dosages or any(not isinstance(d, dict) for d in dosages):
        return {"dose-mode": "fixed"}
    as_text = {
        "dose-mode": "text",
        "dose-text": ", ".join(d.get("text", "") for d in dosages if d.get("text")),
    }
    units = {_dose_of(d).get("unit") for d in dosages}
    unit = units.pop() if len(units) == 1 else None
    if unit not in UNITS:
        return as_text
    for read in (_read_fixed, _read_as_needed, _read_weekly, _read_interval, _read_tapering):
        values = read(dosages)
        if values is not None:
            return values | {"dose-unit": str(unit)}
    return as_text


def _dose_of(element: Any) -> dict[str, Any]:
    dose = ((element.get("doseAndRate") or [{}])[0] or {}).get("doseQuantity")
    return dose if isinstance(dose, dict) else {}


def _repeat_of(element: dict[str, Any]) -> dict[str, Any]:
    repeat = (element.get("timing") or {}).get("repeat")
    return repeat if isinstance(repeat, dict) else {}


def _plain(element: dict[str, Any]) -> bool:
    """Dose and timing only: nothing as needed and nothing the editor has no field for."""
    return set(element) <= {"sequence", "text", "timing", "doseAndRate"} and set(
        element.get("timing") or {}
    ) <= {"repeat"}


def comma(value: Any) -> str:
    return "" if value is None else str(value).replace(".", ",")


def _times_ok(when: Any) -> bool:
    return isinstance(when, list) and bool(when) and set(when) <= set(TIMES)


def _amounts(elements: Iterable[dict[str, Any]], prefix: str) -> dict[str, str] | None:
    values: dict[str, str] = {}
    for element in elements:
        for code in _repeat_of(element)["when"]:
            if f"{prefix}{code}" in values:
                return None
            values[f"{prefix}{code}"] = comma(_dose_of(element).get("value"))
    return values


def _read_fixed(dosages: list[dict[str, Any]]) -> dict[str, str] | None:
    repeats = [_repeat_of(d) for d in dosages]
    if not all(_plain(d) for d in dosages) or len({d.get("sequence") for d in dosages}) > 1:
        return None
    if not all(set(r) == {"when"} and _times_ok(r["when"]) for r in repeats):
        return None
    amounts = _amounts(dosages, "dose-")
    return None if amounts is None else {"dose-mode": "fixed", **amounts}


def _read_as_needed(dosages: list[dict[str, Any]]) -> dict[str, str] | None:
    first = dosages[0]
    if len(dosages) > 1 or not (
        first.get("asNeededBoolean") or first.get("asNeededCodeableConcept")
    ):
        return None
    if "timing" in first:
        return None  # "ved behov morgen" has no field here: keep it as its text
    most = ((first.get("maxDosePerPeriod") or {}).get("numerator") or {}).get("value")
    return {
        "dose-mode": "prn",
        "dose-prn": comma(_dose_of(first).get("value")),
        "dose-max": comma(most),
        "dose-for": str((first.get("asNeededCodeableConcept") or {}).get("text", "")),
    }


def _read_weekly(dosages: list[dict[str, Any]]) -> dict[str, str] | None:
    """Weekly on named days; also once a week with no day named (as older entries are
    kept), opened with no day ticked so that saving asks for the day — never as free text,
    which would steer the doctor round the structured checks."""
    repeat = _repeat_of(dosages[0])
    days = repeat.get("dayOfWeek")
    if days is None and repeat.get("frequency", 1) == 1:
        days = []
    if len(dosages) > 1 or not _plain(dosages[0]) or not isinstance(days, list):
        return None
    if set(repeat) - {"frequency", "period", "periodUnit", "dayOfWeek"} or not set(days) <= set(
        DAYS
    ):
        return None
    if repeat.get("periodUnit") != "wk" or repeat.get("period") != 1:
        return None
    values = {"dose-mode": "week", "dose-week": comma(_dose_of(dosages[0]).get("value"))}
    return values | {f"dose-week-{code}": "1" for code in days}


def _read_interval(dosages: list[dict[str, Any]]) -> dict[str, str] | None:
    repeat = _repeat_of(dosages[0])
    if len(dosages) > 1 or not _plain(dosages[0]) or repeat.get("periodUnit") != "d":
        return None
    if set(repeat) - {"frequency", "period", "periodUnit", "when"}:
        return None
    every, when = repeat.get("period"), repeat.get("when")
    if not isinstance(every, int) or not 2 <= every <= MAX_EVERY:
        return None
    if when is None and repeat.get("frequency", 1) != 1:
        return None
    if when is not None and not _times_ok(when):
        return None
    values = {
        "dose-mode": "interval",
        "dose-int": comma(_dose_of(dosages[0]).get("value")),
        "dose-int-every": str(every),
    }
    return values | {f"dose-int-{code}": "1" for code in when or ()}


def _read_tapering(dosages: list[dict[str, Any]]) -> dict[str, str] | None:
    steps: dict[int, list[dict[str, Any]]] = {}
    for element in dosages:
        sequence = element.get("sequence", 1)
        repeat = _repeat_of(element)
        if not _plain(element) or not isinstance(sequence, int) or isinstance(sequence, bool):
            return None
        if set(repeat) - {"when", "boundsDuration"} or not _times_ok(repeat.get("when")):
            return None
        steps.setdefault(sequence, []).append(element)
    if len(steps) > MAX_STEPS:
        return None
    values = {"dose-mode": "taper"}
    for position, (_, elements) in enumerate(sorted(steps.items()), start=1):
        amounts = _amounts(elements, f"dose-step{position}-")
        bounds = _repeat_of(elements[0]).get("boundsDuration")
        if amounts is None:
            return None
        values |= amounts
        if bounds is not None:
            code = bounds.get("code") if isinstance(bounds, dict) else None
            count = bounds.get("value") if isinstance(bounds, dict) else None
            if code not in STEP_UNITS or not isinstance(count, int):
                return None
            values |= {f"dose-step{position}-length": str(count), f"dose-step{position}-unit": code}
    return values
