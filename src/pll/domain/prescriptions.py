"""What an e-prescription says of itself: how long it is valid, how much it gives, whether
it has expired. No I/O: the FEST validity and today's date are given.

FHIR elements (MedicationRequest, R4):

- ``dispenseRequest.validityPeriod`` is the *prescription's* validity: from the issue date to
  the last day it can be dispensed. The e-resept default is one year from issue, shorter where
  the drug's FEST prescription validity says so; a prescriber may give an earlier end, never a
  later one.
- ``dispenseRequest.quantity`` is what one dispensing hands out (packages, or an amount with a
  unit); ``numberOfRepeatsAllowed`` is the reit, the dispensings after the first.
- The *treatment's* start and stop are the entry's (``MedicationStatement.effectivePeriod``),
  not the prescription's: a prescription may expire while the treatment goes on.

Expiry depends on the day it is asked: it is computed when read, never stored.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pll.domain.dosage.words import unit_key
from pll.domain.errors import InvalidInput
from pll.domain.forms import quantity_units_for
from pll.domain.model import Prescription

#: Prescriptions expire by the Norwegian calendar.
OSLO = ZoneInfo("Europe/Oslo")
#: The e-resept default validity, and the longest a prescription may be valid.
DEFAULT_VALIDITY = "P1Y"
#: Reit (repeats after the first dispensing). Weekly dispensing through a year of validity
#: is 51 repeats; more than this is a typing error, not a prescription.
MAX_REPEATS = 99
#: Packages per dispensing, and an amount with a unit per dispensing (ml, tablets, doses).
MAX_PACKAGES = 99
MAX_AMOUNT = 10_000
#: The unit of a quantity given in packages.
PACKAGE = "pakning"

_WHERE = "MedicationRequest.dispenseRequest"
_DURATION = re.compile(r"P(?:(\d{1,3})Y)?(?:(\d{1,3})M)?(?:(\d{1,3})W)?(?:(\d{1,4})D)?")


def local_day(now: datetime) -> date:
    """The Norwegian calendar day at ``now`` (an aware instant)."""
    return now.astimezone(OSLO).date()


def add_duration(start: date, duration: str) -> date:
    """``start`` plus an ISO 8601 duration of whole years, months, weeks and days (P1Y,
    P3M, P10D); a month or year past the end of a shorter month ends on its last day."""
    found = _DURATION.fullmatch(duration.strip().upper())
    if found is None or duration.strip().upper() == "P":
        raise ValueError(f"{duration!r} is not an ISO 8601 duration such as P1Y or P10D")
    years, months, weeks, days = (int(g) if g else 0 for g in found.groups())
    month_index = start.month - 1 + months + 12 * years
    year, month = start.year + month_index // 12, month_index % 12 + 1
    last = (date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)).day
    moved = date(year, month, min(start.day, last))
    return moved + timedelta(weeks=weeks, days=days)


def maximum_end(issued: date, fest_validity: str | None) -> date:
    """The last day a prescription issued on ``issued`` may be valid: one year, or the
    drug's FEST prescription validity when that is shorter."""
    longest = add_duration(issued, DEFAULT_VALIDITY)
    if fest_validity:
        try:
            return min(longest, add_duration(issued, fest_validity))
        except ValueError:
            # a catalogue value PLL cannot read never lengthens a prescription
            return longest
    return longest


def validity_end(issued: date, fest_validity: str | None, given: date | None) -> date:
    """The prescription's validity end: what the prescriber gave, or the longest allowed.
    Refused: an end before the issue date or past the maximum."""
    longest = maximum_end(issued, fest_validity)
    where = f"{_WHERE}.validityPeriod.end"
    if given is None:
        return longest
    if given < issued:
        raise InvalidInput(
            f"The prescription's validity ends ({given.isoformat()}) before it was issued "
            f"({issued.isoformat()}).",
            where,
            norwegian=(
                f"Gyldig til: datoen kan ikke være før resepten er skrevet ({issued:%d.%m.%Y})."
            ),
        )
    if given > longest:
        raise InvalidInput(
            f"A prescription issued {issued.isoformat()} can be valid until "
            f"{longest.isoformat()} at the latest"
            + (f" (FEST: {fest_validity})" if fest_validity else " (one year)")
            + f", not {given.isoformat()}.",
            where,
            norwegian=(
                f"Gyldig til: en e-resept skrevet {issued:%d.%m.%Y} kan gjelde til "
                f"{longest:%d.%m.%Y} på det lengste"
                + (" (reseptgyldighet i FEST)" if fest_validity else " (ett år)")
                + "."
            ),
        )
    return given


def _day(value: Any) -> date | None:
    """The calendar day of a FHIR date or dateTime (its first ten characters)."""
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def end_of(content: dict[str, Any], recorded: datetime | None = None) -> date | None:
    """A prescription's validity end as stored. One written before PLL stated it (no
    ``validityPeriod``) is valid one year from ``authoredOn``; one with neither (the old
    REST API and imports stored such) one year from ``recorded``, when PLL first recorded
    it (its first version's time), so that no prescription is valid for ever. ``None`` only
    when none of these is known."""
    period = (content.get("dispenseRequest") or {}).get("validityPeriod") or {}
    stated = _day(period.get("end"))
    if stated is not None:
        return stated
    authored = _day(content.get("authoredOn"))
    if authored is None and recorded is not None:
        authored = local_day(recorded)
    return add_duration(authored, DEFAULT_VALIDITY) if authored is not None else None


def is_expired(content: dict[str, Any], today: date, recorded: datetime | None = None) -> bool:
    """Past its last valid day (see :func:`end_of`): a prescription valid until 19.07.2024
    is expired on 20.07."""
    end = end_of(content, recorded)
    return end is not None and end < today


def expires_at(content: dict[str, Any], recorded: datetime | None = None) -> datetime | None:
    """The instant the prescription expires: the start of the day after its end, in Oslo."""
    end = end_of(content, recorded)
    if end is None:
        return None
    return datetime.combine(end + timedelta(days=1), time(), OSLO).astimezone(UTC)


def _count(value: Any, where: str, what: str, most: int, *, least: int) -> None:
    if value is None:
        return
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise InvalidInput(f"{what} must be a number.", where)
    if value < least or value > most:
        raise InvalidInput(f"{what} must be from {least} to {most}, not {value:g}.", where)


def rx_units(form: str | None) -> tuple[str, ...] | None:
    """The units a prescription's quantity may be in for a drug of this FEST form: packages,
    then what the form is dispensed in (:func:`pll.domain.forms.quantity_units_for`);
    ``None`` (any unit) when PLL cannot sort the form."""
    taken = quantity_units_for(form)
    return (PACKAGE, *taken) if taken is not None else None


def check_dispense_request(content: dict[str, Any], form: str | None = None) -> None:
    """How much a prescription gives must be possible: a quantity above zero and not past
    :data:`MAX_PACKAGES` packages or :data:`MAX_AMOUNT` of a unit, reit from 0 to
    :data:`MAX_REPEATS`; its unit packages or one the drug's FEST ``form`` takes
    (:func:`rx_units`; any unit when the form is unknown or unsorted)."""
    request = content.get("dispenseRequest") or {}
    repeats = request.get("numberOfRepeatsAllowed")
    _count(repeats, f"{_WHERE}.numberOfRepeatsAllowed", "Reit", MAX_REPEATS, least=0)
    if isinstance(repeats, float) and not repeats.is_integer():
        raise InvalidInput("Reit is a whole number.", f"{_WHERE}.numberOfRepeatsAllowed")
    quantity = request.get("quantity")
    if quantity is None:
        return
    value = quantity.get("value")
    where = f"{_WHERE}.quantity.value"
    if value is None:
        raise InvalidInput("A quantity needs a value.", where)
    packages = str(quantity.get("unit") or "").lower() == PACKAGE
    most = MAX_PACKAGES if packages else MAX_AMOUNT
    what = "The number of packages" if packages else "The quantity"
    _count(value, where, what, most, least=0)
    if value == 0:
        raise InvalidInput(f"{what} must be above 0.", where)
    taken = rx_units(form)
    unit = str(quantity.get("unit") or "")
    if unit and taken is not None and unit_key(unit) not in map(unit_key, taken):
        units = ", ".join(taken)
        raise InvalidInput(
            f"The quantity's unit {unit[:20]!r} does not fit the drug's form ({form}): give "
            f"it in {units}.",
            f"{_WHERE}.quantity.unit",
            norwegian=f"Legemiddelet er {form} og foreskrives i {units}, ikke i «{unit[:20]}».",
        )


def issue(
    content: dict[str, Any], today: date, fest_validity: str | None, form: str | None = None
) -> dict[str, Any]:
    """A new prescription as PLL keeps it: ``authoredOn`` (today unless given) and
    ``dispenseRequest.validityPeriod`` from the issue date to its end (see
    :func:`validity_end`), with its quantity and reit checked. Refused: an issue date in the
    future, and a prescription that would be expired the day it is issued (a renewal is a
    new prescription with a fresh validity, never an old one's end)."""
    out = copy.deepcopy(content)
    issued = _day(out.get("authoredOn"))
    if out.get("authoredOn") is not None and issued is None:
        raise InvalidInput("authoredOn is not a date.", "MedicationRequest.authoredOn")
    if issued is None:
        issued = today
        out["authoredOn"] = today.isoformat()
    if issued > today:
        raise InvalidInput(
            f"A prescription cannot be issued in the future ({issued.isoformat()}).",
            "MedicationRequest.authoredOn",
        )
    check_dispense_request(out, form)
    request = out.setdefault("dispenseRequest", {})
    period = request.get("validityPeriod") or {}
    given_end = period.get("end")
    given = _day(given_end)
    if given_end is not None and given is None:
        raise InvalidInput("The validity end is not a date.", f"{_WHERE}.validityPeriod.end")
    end = validity_end(issued, fest_validity, given)
    if end < today:
        raise InvalidInput(
            f"This prescription would be expired already: valid until {end.isoformat()}, "
            f"today is {today.isoformat()}. A renewal is a new prescription issued today.",
            f"{_WHERE}.validityPeriod.end",
        )
    start = _day(period.get("start")) or issued
    if start > end:
        raise InvalidInput("The validity starts after it ends.", f"{_WHERE}.validityPeriod.start")
    request["validityPeriod"] = {"start": start.isoformat(), "end": end.isoformat()}
    return out


def next_expiry(prescriptions: Iterable[Prescription], now: datetime) -> datetime | None:
    """The earliest moment after ``now`` one of these prescriptions expires, so a document
    that shows them can be rebuilt then."""
    times = [
        t for p in prescriptions if (t := expires_at(p.content, p.recorded)) is not None and t > now
    ]
    return min(times, default=None)


def with_issue_of(stored: dict[str, Any], content: dict[str, Any]) -> dict[str, Any]:
    """An update of a prescription with what PLL stated when it was issued (``authoredOn``,
    ``dispenseRequest.validityPeriod``) where the client left it out: a client that recalls
    with its own copy need not know them. A client that gives them differently still edits
    the prescription, which is refused; a validity is never lengthened by an update."""
    out = content
    if "authoredOn" in stored and "authoredOn" not in content:
        out = {**out, "authoredOn": stored["authoredOn"]}
    period = (stored.get("dispenseRequest") or {}).get("validityPeriod")
    request = out.get("dispenseRequest")
    if period is not None and (request is None or "validityPeriod" not in request):
        out = {**out, "dispenseRequest": {**(request or {}), "validityPeriod": period}}
    return out
