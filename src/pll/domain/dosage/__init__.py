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

The parts, by what they hold: :mod:`.words` (the Norwegian words and numbers), :mod:`.values`
(reading JSON objects, Quantities and numbers), :mod:`.timing` (``Dosage.timing``),
:mod:`.element` (one ``Dosage`` element) and :mod:`.steps` (several elements as one text).
FHIR R4 ``Dosage``: https://hl7.org/fhir/R4/dosage.html.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from pll.domain.dosage import words
from pll.domain.dosage.steps import plan_steps, render_step
from pll.domain.dosage.values import UCUM_SYSTEM

__all__ = [
    "UCUM_SYSTEM",
    "amount_text",
    "dosage_text",
    "time_unit",
    "unit_key",
    "validate_dosage",
]


def validate_dosage(dosages: Sequence[Mapping[str, Any]], expression: str = "dosage") -> None:
    """Check that ``dosages`` (FHIR R4 ``Dosage`` elements as JSON) can be written as text.

    Raises ``InvalidInput`` for anything that is wrong or that ``dosage_text`` cannot express
    exactly; the error's expression is ``<expression>[i].<path>``. Accepts nothing that
    ``dosage_text`` would refuse.
    """
    plan_steps(dosages, expression)


def dosage_text(dosages: Sequence[Mapping[str, Any]], expression: str = "dosage") -> str:
    """Return the Norwegian dosage text for ``dosages``, following the module's conventions.

    The same input always gives the same text. Raises ``InvalidInput`` exactly when
    ``validate_dosage`` does.
    """
    plan = plan_steps(dosages, expression)
    if isinstance(plan, str):
        return plan
    return ", deretter ".join(render_step(step) for step in plan)


# --- for the dose checks (pll.domain.dose_checks) -------------------------------------------


def amount_text(value: Decimal, unit: str) -> str:
    """An amount as the dosage text writes it: ``2 tabletter``, ``0,5 tablett``, ``10 ml``."""
    return words.written_amount(value, unit)


def unit_key(unit: str) -> str:
    """What a dose unit is, to compare units: the singular noun for the dose-form nouns
    (``tabletter`` and ``Tablett`` are ``tablett``), other units in lower case."""
    return words.unit_key(unit)


def time_unit(spelled: str) -> str | None:
    """The UCUM code (h, d, wk, mo) of a time unit given as a code or a Norwegian word
    (``døgn``, ``Døgn``, ``uker``), ``None`` when it is none of these."""
    return words.TIME_UNIT_ALIASES.get(spelled.strip().lower())
