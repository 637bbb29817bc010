"""The administration schedule as FHIR R4 (issue 17): the answer of
``GET List/{id}/$administration-schedule`` and the reading of its date parameters.

The shape (documented for care systems in ``docs/administration.md``, "The daily schedule"):

- a ``Bundle`` of type ``collection``: a set of resources made for this answer, not a search
  (nothing to page, no ``search.mode``); each entry's ``fullUrl`` is a ``urn:uuid`` derived
  from the list and the item, so the same planned dose has the same one in every answer;
- first the ``List`` at the version the schedule was made from (a printed chart names it;
  a paused list carries its ``pll-paused`` extension there);
- then an ``OperationOutcome`` when something is not planned that a nurse must know of: the
  whole list paused (``warning``: no doses are planned) and each entry paused (``information``,
  ``expression`` naming it). R4's ``Bundle`` has no ``extension``, so the notice is an entry;
- then, day by day, one ``MedicationRequest`` with ``intent`` ``instance-order`` per item:
  a planned dose (``dosageInstruction[0].timing.event`` = the local planned time), an
  as-needed dosage of that day (``asNeededBoolean``, ``maxDosePerPeriod`` per døgn, the
  remaining maximum in the extension) and a ``må vurderes`` item (the dosage text as written,
  no timing, no amount). The ``pll-planned-administration`` extension says which (``kind``),
  the day, the round (``slot``), the ``source`` (multidose bag or separate package) and, for
  as-needed, what was given and what remains.

Each item names the entry version it was planned from in ``supportingInformation``
(``MedicationStatement/<id>/_history/<version>``: R4 lets that element reference any
resource, where ``basedOn`` takes only requests) and the entry's prescriptions in
``basedOn``. A planned dose's ``identifier`` (:attr:`PlannedDose.key`) is what a
``MedicationAdministration`` names as its planned slot.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pll.domain.administration import OSLO, AsNeeded, Assess, PlannedDose, Schedule
from pll.domain.administration.keys import check_day
from pll.domain.errors import InvalidInput
from pll.domain.model import Entry, MedicationList
from pll.fhir import systems
from pll.fhir.outcome import issue, outcome
from pll.fhir.resources import instant

#: On each MedicationRequest of a schedule: kind, day, round, source and as-needed amounts.
EXT_PLANNED = f"{systems.PLL_BASE}/StructureDefinition/pll-planned-administration"
#: The rounds of the chart (morgen … natt), the codes of :class:`pll.domain.administration.Slot`.
SLOT_SYSTEM = f"{systems.PLL_BASE}/CodeSystem/administration-slot"
#: A planned dose's stable identifier (:attr:`PlannedDose.key`).
PLANNED_DOSE = f"{systems.PLL_BASE}/NamingSystem/planned-dose"
#: ``Bundle.entry.fullUrl`` s: uuid5 of the list id and the item's key in this namespace.
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, f"{systems.PLL_BASE}/administration-schedule")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_UCUM = "http://unitsofmeasure.org"

#: The query parameters the operation takes.
PARAMETERS = {"date", "start", "end"}


def schedule_range(params: Mapping[str, str], today: date) -> tuple[date, date]:
    """The first and last day asked for: ``date`` alone, or ``start`` with an optional
    ``end`` (default: ``start``); nothing at all is ``today``. A day is ``YYYY-MM-DD``.
    Refused with ``InvalidInput`` at the parameter: a bad day, ``date`` with ``start`` or
    ``end``, ``end`` without ``start``. The range's length is the domain's rule."""
    if "date" in params:
        extra = next((p for p in ("start", "end") if p in params), None)
        if extra is not None:
            raise InvalidInput(
                "Ask for one day with date=YYYY-MM-DD or a range with start= and end=, not both.",
                extra,
            )
        day = _day(params, "date")
        return day, day
    if "end" in params and "start" not in params:
        raise InvalidInput("A range needs start=YYYY-MM-DD as well as end.", "start")
    if "start" not in params:
        return today, today
    first = _day(params, "start")
    return first, _day(params, "end") if "end" in params else first


def _day(params: Mapping[str, str], name: str) -> date:
    raw = params[name]
    if _DAY.fullmatch(raw):
        # the pattern admits 2026-02-30: such a day is refused below, like any other
        with contextlib.suppress(ValueError):
            return check_day(date.fromisoformat(raw), name)
    raise InvalidInput(f"Parameter '{name}' must be a date as YYYY-MM-DD, not {raw[:40]!r}.", name)


def schedule_bundle(
    lst: MedicationList,
    list_resource: dict[str, Any],
    result: Schedule,
    now: datetime,
) -> dict[str, Any]:
    """The schedule ``result`` of ``lst`` as a ``collection`` Bundle (see the module)."""
    entries: list[dict[str, Any]] = [_entry(f"{lst.id}/List/{lst.version}", list_resource)]
    notice = _notice(lst, result)
    if notice is not None:
        entries.append(_entry(f"{lst.id}/notice/{result.first}/{result.last}", notice))
    for day in result.days:
        for dose in day.doses:
            entries.append(_entry(f"{lst.id}/{dose.key}", _planned(lst, dose)))
        for item in day.as_needed:
            key = f"{lst.id}/{item.entry_id}/{item.day}/as-needed"
            entries.append(_entry(key, _as_needed(lst, item)))
        for assess in day.assess:
            key = f"{lst.id}/{assess.entry_id}/{assess.day}/assess"
            entries.append(_entry(key, _assess(lst, assess)))
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": instant(now),
        "entry": entries,
    }


def _entry(key: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": f"urn:uuid:{uuid.uuid5(_NAMESPACE, key)}", "resource": resource}


def _notice(lst: MedicationList, result: Schedule) -> dict[str, Any] | None:
    issues = []
    if result.paused is not None:
        pause = result.paused
        since = f"{pause.at.astimezone(OSLO):%d.%m.%Y kl. %H:%M}"
        issues.append(
            issue(
                f"Legemiddellisten er pauset (Pause PLL) siden {since} av {pause.by.label()}: "
                f"{pause.reason}. Ingen doser er planlagt. "
                "(The list is paused: nothing is planned.)",
                f"List/{lst.id}",
                code="business-rule",
                severity="warning",
            )
        )
    paused = sorted({eid for day in result.days for eid in day.paused_entries})
    for eid in paused:
        entry = lst.entries[eid]
        issues.append(
            issue(
                f"{_name(entry)} er pauset: ingen doser er planlagt. "
                "(The entry is paused: nothing is planned from it.)",
                _statement(entry),
                code="informational",
                severity="information",
            )
        )
    return outcome(*issues) if issues else None


def _planned(lst: MedicationList, dose: PlannedDose) -> dict[str, Any]:
    entry = lst.entries[dose.entry_id]
    dosage: dict[str, Any] = {}
    if dose.sequence is not None:
        dosage["sequence"] = dose.sequence
    dosage["text"] = f"{_number(dose.amount)} {dose.unit} {dose.slot} kl. {dose.at:%H:%M}"
    if dose.parts:  # two dosage elements in one round: the sum, and what it is made of
        dosage["text"] += f" ({' + '.join(str(_number(p)) for p in dose.parts)})"
    dosage["timing"] = {
        "event": [dose.at.isoformat(timespec="seconds")],
        "code": {"coding": [{"system": SLOT_SYSTEM, "code": str(dose.slot)}], "text": dose.slot},
    }
    dosage["doseAndRate"] = [{"doseQuantity": _quantity(dose.amount, dose.unit)}]
    extension = _extension("planned", dose.day, slot=str(dose.slot), source=str(dose.source))
    resource = _request(lst, entry, extension, dosage)
    resource["identifier"] = [{"system": PLANNED_DOSE, "value": dose.key}]
    return resource


def _as_needed(lst: MedicationList, item: AsNeeded) -> dict[str, Any]:
    entry = lst.entries[item.entry_id]
    dosage: dict[str, Any] = {
        "text": item.text,
        "asNeededBoolean": True,
        "doseAndRate": [{"doseQuantity": _quantity(item.amount, item.unit)}],
    }
    amounts: dict[str, Any] = {}
    if item.daily_max is not None:
        unit = item.max_unit or item.unit
        dosage["maxDosePerPeriod"] = {
            "numerator": _quantity(item.daily_max, unit),
            "denominator": _period(item.period),
        }
        amounts["given"] = {"valueQuantity": _quantity(item.given, unit)}
        if item.remaining is not None:
            amounts["remaining"] = {"valueQuantity": _quantity(item.remaining, unit)}
    extension = _extension("as-needed", item.day, **amounts)
    return _request(lst, entry, extension, dosage)


def _assess(lst: MedicationList, item: Assess) -> dict[str, Any]:
    entry = lst.entries[item.entry_id]
    # the dosage as written, never an amount or a time the chart would have had to guess
    extension = _extension("assess", item.day, reason=item.reason)
    return _request(lst, entry, extension, {"text": item.text})


def _request(
    lst: MedicationList, entry: Entry, extension: dict[str, Any], dosage: dict[str, Any]
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "MedicationRequest",
        "extension": [extension],
        "status": "active",
        "intent": "instance-order",
    }
    resource |= {k: v for k, v in entry.content.items() if k.startswith("medication")}
    resource["subject"] = {"reference": f"Patient/{lst.patient_id}"}
    resource["supportingInformation"] = [{"reference": _statement(entry), "display": _name(entry)}]
    if entry.prescription_ids:
        resource["basedOn"] = [
            {"reference": f"MedicationRequest/{rx}"} for rx in entry.prescription_ids
        ]
    resource["dosageInstruction"] = [dosage]
    return resource


def _extension(kind: str, day: date, **parts: Any) -> dict[str, Any]:
    sub: list[dict[str, Any]] = [
        {"url": "kind", "valueCode": kind},
        {"url": "day", "valueDate": day.isoformat()},
    ]
    for name, value in parts.items():
        if isinstance(value, dict):
            sub.append({"url": name, **value})
        elif name == "reason":
            sub.append({"url": name, "valueString": value})
        else:
            sub.append({"url": name, "valueCode": value})
    return {"url": EXT_PLANNED, "extension": sub}


def _statement(entry: Entry) -> str:
    return f"MedicationStatement/{entry.id}/_history/{entry.version}"


def _name(entry: Entry) -> str:
    concept = entry.content.get("medicationCodeableConcept") or {}
    reference = entry.content.get("medicationReference") or {}
    return str(concept.get("text") or reference.get("display") or "Legemiddel")


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def _period(period: timedelta | None) -> dict[str, Any]:
    """A maximum's period as a UCUM duration: whole days in døgn, else hours."""
    days = period.days if period is not None and not period.seconds else None
    if period is None or days == 1:
        return {"value": 1, "unit": "døgn", "system": _UCUM, "code": "d"}
    if days is not None:
        return {"value": days, "unit": "døgn", "system": _UCUM, "code": "d"}
    hours = period.total_seconds() / 3600
    value = int(hours) if hours == int(hours) else hours
    return {"value": value, "unit": "timer", "system": _UCUM, "code": "h"}


def _quantity(value: Decimal, unit: str) -> dict[str, Any]:
    return {"value": _number(value), "unit": unit}
