"""The rules of dispensing on a prescription, without any I/O.

A pharmacy hands out (M10) what a prescription allows: ``dispenseRequest.quantity`` each time,
the first time and ``numberOfRepeatsAllowed`` times more (FHIR R4: repeats are "in addition
to the original dispense"). The list shows, for each prescription, its last dispensing and
what remains of what it allows.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pll.domain.errors import Conflict, InvalidInput
from pll.domain.model import (
    Author,
    Dispensed,
    ListVersion,
    MedicationList,
    Prescription,
    Touched,
)
from pll.domain.prescriptions import end_of, is_expired, local_day

#: Clocks of pharmacy systems drift: a handover this far ahead of PLL's clock is accepted.
CLOCK_SKEW = timedelta(minutes=5)
#: Sums of decimal quantities are compared with this much slack.
_EPSILON = 1e-9


def moment(text: str) -> datetime | None:
    """A FHIR ``dateTime`` (also a partial one: 2025, 2025-03, a date) as an aware instant;
    ``None`` when it is not one. A time without zone is taken as UTC."""
    value = text.strip()
    if len(value) == 4 and value.isdigit():
        value += "-01-01"
    elif len(value) == 7 and value[4] == "-":
        value += "-01"
    try:
        found = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return found if found.tzinfo is not None else found.replace(tzinfo=UTC)


def unit_of(quantity: dict[str, Any]) -> str | None:
    unit = quantity.get("code") or quantity.get("unit")
    return str(unit).strip().lower() if unit else None


def allowed(rx_content: dict[str, Any]) -> tuple[float, str | None] | None:
    """How much the prescription allows in all, and in which unit; ``None`` when it does
    not say (no ``dispenseRequest.quantity``)."""
    request = rx_content.get("dispenseRequest") or {}
    quantity = request.get("quantity") or {}
    value = quantity.get("value")
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    repeats = request.get("numberOfRepeatsAllowed") or 0
    return float(value) * (1 + int(repeats)), unit_of(quantity)


def _amount(content: dict[str, Any]) -> float:
    value = (content.get("quantity") or {}).get("value")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def check_dispense(
    rx: Prescription,
    quantity: dict[str, Any],
    handed_over: datetime,
    now: datetime,
    before: list[dict[str, Any]],
) -> None:
    """May this prescription be dispensed this much now? ``before`` are its earlier
    dispensings. Refused: a prescription not in use (recalled, renewed, done), a handover in
    the future, a unit other than the prescription's, more than remains, an expired one."""
    if rx.status != "active":
        # on hold is the doctor's pause of the medicine: nothing is handed out then either
        raise Conflict(
            f"MedicationRequest/{rx.id} is {rx.status}: only an active prescription can be "
            "dispensed.",
            "MedicationDispense.authorizingPrescription",
        )
    if is_expired(rx.content, local_day(now), rx.recorded):
        raise Conflict(
            f"MedicationRequest/{rx.id} expired on {end_of(rx.content, rx.recorded)}: it can "
            "no longer be dispensed.",
            "MedicationDispense.authorizingPrescription",
        )
    value = quantity.get("value")
    if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
        raise InvalidInput(
            "Say how much was handed out: quantity.value above zero.",
            "MedicationDispense.quantity.value",
        )
    if handed_over > now + CLOCK_SKEW:
        raise InvalidInput(
            "whenHandedOver lies in the future; register a dispensing when it is handed out.",
            "MedicationDispense.whenHandedOver",
        )
    limit = allowed(rx.content)
    if limit is None:
        return
    total, unit = limit
    if unit is not None and unit_of(quantity) != unit:
        raise InvalidInput(
            f"MedicationRequest/{rx.id} is prescribed in {unit!r}; give the quantity handed "
            "out in the same unit.",
            "MedicationDispense.quantity",
        )
    already = sum(_amount(d) for d in before)
    if already + float(value) > total + _EPSILON:
        unit_text = f" {unit}" if unit else ""
        raise Conflict(
            f"MedicationRequest/{rx.id} allows {total:g}{unit_text} in all; {already:g} has "
            f"been dispensed, so {max(total - already, 0):g} remains, not {float(value):g}.",
            "MedicationDispense.quantity.value",
        )


def summarise(
    rx_content: dict[str, Any], dispensings: list[tuple[str, dict[str, Any]]]
) -> Dispensed | None:
    """The last dispensing of a prescription, what all its dispensings came to, and what
    remains (when the prescription says how much it allows and every dispensing is in its
    unit); ``None`` before the first handover."""
    done = []
    for dispense_id, content in dispensings:
        when = moment(str(content.get("whenHandedOver") or ""))
        if when is not None:
            done.append((when, dispense_id, content))
    if not done:
        return None
    done.sort(key=lambda d: (d[0], d[1]))
    _, last_id, last = done[-1]
    total = sum(_amount(content) for _, _, content in done)
    limit = allowed(rx_content)
    remaining = None
    unit = unit_of(last.get("quantity") or {})
    if limit is not None:
        if all(unit_of(c.get("quantity") or {}) == limit[1] for _, _, c in done):
            remaining = max(limit[0] - total, 0.0)
        unit = limit[1]
    return Dispensed(
        last=last_id,
        handed_over=str(last["whenHandedOver"]),
        quantity=_amount(last),
        total=total,
        count=len(done),
        unit=unit,
        remaining=remaining,
    )


def record_dispense(
    lst: MedicationList,
    rx_id: str,
    dispense_id: str,
    content: dict[str, Any],
    before: list[tuple[str, dict[str, Any]]],
    author: Author,
    now: datetime,
) -> ListVersion:
    """A dispensing on one of the list's prescriptions: checked, and the list version that
    shows the prescription's new last dispensing and what remains. The version moves so
    readers and copies learn of it (rule 1); the baton stays with the doctors."""
    rx = lst.prescriptions.get(rx_id)
    if rx is None:
        raise InvalidInput(
            f"MedicationRequest/{rx_id} is not a prescription of this patient.",
            "MedicationDispense.authorizingPrescription",
        )
    handed = moment(str(content.get("whenHandedOver") or ""))
    if handed is None:
        raise InvalidInput(
            "Say when it was handed out: whenHandedOver.", "MedicationDispense.whenHandedOver"
        )
    check_dispense(rx, content.get("quantity") or {}, handed, now, [c for _, c in before])
    summary = summarise(rx.content, [*before, (dispense_id, content)])
    if summary is not None:
        lst.dispensed = {**lst.dispensed, rx_id: summary}
    lst.version += 1
    lst.updated = now
    touched = (Touched("List", lst.id, lst.version, "update"),)
    what = f"Utlevert på MedicationRequest/{rx_id} (MedicationDispense/{dispense_id})"
    return ListVersion(lst.version, now, author, "dispense", what, touched)
